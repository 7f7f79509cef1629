"""Minima on the device: FIRE (Bitzek et al., PRL 97, 170201, 2006), batched over structures.

Each structure has its own FIRE state (time step, mixing, velocity) and stops when its largest
force is below ``fmax``; the batch finishes when all have. Fixed atoms (ASE ``FixAtoms``) never
move. With ``cell=True`` the cell relaxes too, as in ASE's ``UnitCellFilter``: the cell is
``cell0 (I + eps)``, positions are ``ref (I + eps)``, and the strain rows feel the generalised
force ``-V (sigma + P I) / n_atoms`` (sigma the virial stress, eV/Å^3, ASE sign; P the target
pressure), so at convergence the stress equals ``-P`` to ``fmax / n_atoms`` eV/Å^3 per component.
``hydrostatic=True`` keeps the cell shape (only the trace of the strain force acts).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from ase import Atoms, units
from tqdm.auto import tqdm

from .structure import from_atoms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FireSettings:
    """FIRE parameters (Bitzek 2006 / ASE defaults), times in ASE units with unit masses.

    max_step_A: largest displacement of any atom (or strain component x n_atoms^0) per step, Å."""

    dt: float = 0.1
    dt_max: float = 1.0
    max_step_A: float = 0.2
    n_min: int = 5
    f_inc: float = 1.1
    f_dec: float = 0.5
    alpha_start: float = 0.1
    f_alpha: float = 0.99

    def __post_init__(self):
        for name in ("dt", "dt_max", "max_step_A", "f_inc", "alpha_start"):
            if not getattr(self, name) > 0:
                raise ValueError(f"fire.{name} must be positive, got {getattr(self, name)}")
        if not (0 < self.f_dec < 1 and 0 < self.f_alpha <= 1):
            raise ValueError(f"fire.f_dec must be in (0, 1) and fire.f_alpha in (0, 1], got {self.f_dec}, {self.f_alpha}")


class Fire:
    """FIRE state for rows of a generalised coordinate (atoms, strain rows, NEB images ...) that
    fall into ``n_groups`` independent minimisations (``group``: (rows,) long)."""

    def __init__(self, settings: FireSettings, group: torch.Tensor, n_groups: int, like: torch.Tensor):
        self.s, self.group, self.n_groups = settings, group, n_groups
        self.v = torch.zeros_like(like)
        kw = {"dtype": like.dtype, "device": like.device}
        self.dt = torch.full((n_groups,), settings.dt, **kw)
        self.alpha = torch.full((n_groups,), settings.alpha_start, **kw)
        self.n_pos = torch.zeros(n_groups, dtype=torch.long, device=like.device)

    def _sum(self, per_row: torch.Tensor) -> torch.Tensor:
        return torch.zeros(self.n_groups, dtype=per_row.dtype, device=per_row.device).index_add(0, self.group, per_row)

    def step(self, forces: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        """Displacement (rows, 3) for these forces; groups with ``active`` False do not move."""
        s, g = self.s, self.group
        power = self._sum((forces * self.v).sum(1))
        f_norm = torch.sqrt(self._sum((forces * forces).sum(1)))
        v_norm = torch.sqrt(self._sum((self.v * self.v).sum(1)))
        uphill = power <= 0
        mix = torch.where(uphill, torch.zeros_like(self.alpha), self.alpha * v_norm / f_norm.clamp(min=1e-300))
        keep = torch.where(uphill, torch.zeros_like(self.alpha), 1.0 - self.alpha)
        self.v = keep[g, None] * self.v + mix[g, None] * forces
        grow = (~uphill) & (self.n_pos > s.n_min)
        self.dt = torch.where(uphill, self.dt * s.f_dec, torch.where(grow, torch.clamp(self.dt * s.f_inc, max=s.dt_max),
                                                                     self.dt))
        self.alpha = torch.where(uphill, torch.full_like(self.alpha, s.alpha_start),
                                 torch.where(grow, self.alpha * s.f_alpha, self.alpha))
        self.n_pos = torch.where(uphill, torch.zeros_like(self.n_pos), self.n_pos + 1)
        self.v = self.v + self.dt[g, None] * forces
        dr = self.dt[g, None] * self.v
        largest = torch.zeros(self.n_groups, dtype=dr.dtype, device=dr.device).scatter_reduce(
            0, g, torch.linalg.vector_norm(dr, dim=1), "amax")
        scale = torch.clamp(s.max_step_A / largest.clamp(min=1e-300), max=1.0)
        if active is not None:
            scale = scale * active.to(scale.dtype)
        return scale[g, None] * dr


@dataclass
class RelaxResult:
    """Relaxed copies of the input (``atoms``), their energies (eV), largest remaining
    generalised force (eV/Å), FIRE steps taken and whether each converged."""

    atoms: list[Atoms]
    energies: list[float]
    max_force: list[float]
    steps: int
    converged: list[bool]


def _fixed(frames: Sequence[Atoms]) -> np.ndarray:
    from .md.driver import fixed_mask

    return fixed_mask(frames)


def relax(model, atoms: Atoms | Sequence[Atoms], *, fmax: float = 0.01, max_steps: int = 2000, cell: bool = False,
          hydrostatic: bool = False, pressure_GPa: float = 0.0, fire: FireSettings | None = None,
          device: str | torch.device | None = None, skin: float = 0.5, progress: bool = False) -> RelaxResult:
    """Relax ``atoms`` (one or a list; each its own minimisation) to max force < ``fmax`` eV/Å.

    ``cell``: also relax the cell to the target ``pressure_GPa`` (periodic structures only).
    The neighbour list is a Verlet list with ``skin`` Å, rebuilt when an atom could have crossed it.
    """
    from .md.forcefield import VerletForceField

    frames = [atoms] if isinstance(atoms, Atoms) else list(atoms)
    if not fmax > 0:
        raise ValueError(f"fmax must be positive, got {fmax}")
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    if cell and not all(a.pbc.all() and a.cell.rank == 3 for a in frames):
        raise ValueError("cell relaxation needs periodic structures with a full cell (pbc all True)")
    fire = fire or FireSettings()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    dtype = model.dtype
    s = from_atoms(frames, model.species, device=device, dtype=dtype)
    ff = VerletForceField(model, s, skin=skin, stress=cell)
    batch, n_struct = s.batch, s.n_structures
    mobile = torch.as_tensor(~_fixed(frames), device=device)[:, None].to(dtype)
    n_per = torch.as_tensor(s.n_atoms, device=device, dtype=dtype)
    ref = s.positions.clone()
    cell0 = s.cell.clone()
    eps = torch.zeros_like(cell0)  # (B, 3, 3) strain
    p_ext = pressure_GPa * units.GPa

    def evaluate(ref, eps):
        d = torch.eye(3, dtype=dtype, device=device) + eps
        x = torch.einsum("ni,nij->nj", ref, d[batch])
        h = torch.bmm(cell0, d)
        if ff.candidates is None or float(ff.margin(x, h).min()) <= 0:
            ff.rebuild(x, h)
        out = ff.evaluate(x, h)
        g_pos = torch.einsum("nj,nij->ni", out.forces, d[batch]) * mobile  # F D^T
        if not cell:
            return out.energy, g_pos, None, x, h
        volume = torch.linalg.det(h).abs()
        g_eps = -volume[:, None, None] * (out.stress + p_ext * torch.eye(3, dtype=dtype, device=device)) / n_per[:, None, None]
        if hydrostatic:
            g_eps = torch.diagonal(g_eps, dim1=1, dim2=2).mean(1)[:, None, None] * torch.eye(3, dtype=dtype, device=device)
        return out.energy, g_pos, g_eps, x, h

    def max_force(g_pos, g_eps):
        per_atom = torch.linalg.vector_norm(g_pos, dim=1)
        worst = torch.zeros(n_struct, dtype=dtype, device=device).scatter_reduce(0, batch, per_atom, "amax")
        if g_eps is not None:
            worst = torch.maximum(worst, torch.linalg.vector_norm(g_eps, dim=2).amax(1))
        return worst

    # strain rows (3 per structure) join the atoms as extra rows of one FIRE state per structure
    rows_group = torch.cat([batch, torch.arange(n_struct, device=device).repeat_interleave(3)]) if cell else batch
    energy, g_pos, g_eps, x, h = evaluate(ref, eps)
    optimizer = Fire(fire, rows_group, n_struct, torch.cat([g_pos, g_eps.reshape(-1, 3)]) if cell else g_pos)
    worst = max_force(g_pos, g_eps)
    step = 0
    bar = tqdm(total=max_steps, desc="FIRE", disable=not progress, leave=False)
    while step < max_steps and bool((worst >= fmax).any()):
        forces = torch.cat([g_pos, g_eps.reshape(-1, 3)]) if cell else g_pos
        d = optimizer.step(forces, active=worst >= fmax)  # converged structures stay put
        ref = ref + d[: len(ref)]
        if cell:
            eps = eps + d[len(ref):].reshape(-1, 3, 3)
        energy, g_pos, g_eps, x, h = evaluate(ref, eps)
        worst = max_force(g_pos, g_eps)
        step += 1
        bar.update(1)
    bar.close()
    converged = (worst < fmax).cpu().tolist()
    if not all(converged):
        log.warning("FIRE stopped after %d steps with max force %s eV/Å (fmax %g): not converged",
                    step, [round(float(w), 5) for w in worst.cpu()], fmax)
    out_atoms, start = [], 0
    x_np, h_np = x.detach().cpu().numpy(), h.detach().cpu().numpy()
    for b, a in enumerate(frames):
        new = a.copy()
        new.calc = None
        if cell:
            new.set_cell(h_np[b], scale_atoms=False)
        new.set_positions(x_np[start:start + len(a)], apply_constraint=False)
        start += len(a)
        out_atoms.append(new)
    return RelaxResult(out_atoms, energy.detach().cpu().tolist(), worst.cpu().tolist(), step, converged)
