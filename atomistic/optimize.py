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

    v_pos, v_eps = torch.zeros_like(ref), torch.zeros_like(eps)
    dt = torch.full((n_struct,), fire.dt, dtype=dtype, device=device)
    alpha = torch.full((n_struct,), fire.alpha_start, dtype=dtype, device=device)
    n_pos = torch.zeros(n_struct, dtype=torch.long, device=device)
    energy, g_pos, g_eps, x, h = evaluate(ref, eps)
    worst = max_force(g_pos, g_eps)
    step = 0
    bar = tqdm(total=max_steps, desc="FIRE", disable=not progress, leave=False)
    while step < max_steps and bool((worst >= fmax).any()):
        active = (worst >= fmax).to(dtype)  # converged structures stay put
        # P = F.v per structure (positions and strain together)
        power = torch.zeros(n_struct, dtype=dtype, device=device).index_add(0, batch, (g_pos * v_pos).sum(1))
        f_norm2 = torch.zeros(n_struct, dtype=dtype, device=device).index_add(0, batch, (g_pos * g_pos).sum(1))
        v_norm2 = torch.zeros(n_struct, dtype=dtype, device=device).index_add(0, batch, (v_pos * v_pos).sum(1))
        if cell:
            power = power + (g_eps * v_eps).sum((1, 2))
            f_norm2 = f_norm2 + (g_eps * g_eps).sum((1, 2))
            v_norm2 = v_norm2 + (v_eps * v_eps).sum((1, 2))
        uphill = power <= 0
        mix = alpha * torch.sqrt(v_norm2) / torch.sqrt(f_norm2).clamp(min=1e-300)
        keep = torch.where(uphill, torch.zeros_like(alpha), 1.0 - alpha)
        mix = torch.where(uphill, torch.zeros_like(mix), mix)
        v_pos = keep[batch, None] * v_pos + mix[batch, None] * g_pos
        v_eps = keep[:, None, None] * v_eps + mix[:, None, None] * g_eps if cell else v_eps
        grow = (~uphill) & (n_pos > fire.n_min)
        dt = torch.where(uphill, dt * fire.f_dec, torch.where(grow, torch.clamp(dt * fire.f_inc, max=fire.dt_max), dt))
        alpha = torch.where(uphill, torch.full_like(alpha, fire.alpha_start), torch.where(grow, alpha * fire.f_alpha, alpha))
        n_pos = torch.where(uphill, torch.zeros_like(n_pos), n_pos + 1)
        v_pos = v_pos + dt[batch, None] * g_pos
        dr = dt[batch, None] * v_pos
        if cell:
            v_eps = v_eps + dt[:, None, None] * g_eps
            de = dt[:, None, None] * v_eps
        # no atom (and no strain component) moves more than max_step per step
        largest = torch.zeros(n_struct, dtype=dtype, device=device).scatter_reduce(
            0, batch, torch.linalg.vector_norm(dr, dim=1), "amax")
        if cell:
            largest = torch.maximum(largest, de.abs().amax((1, 2)))
        scale = torch.clamp(fire.max_step_A / largest.clamp(min=1e-300), max=1.0) * active
        ref = ref + scale[batch, None] * dr
        if cell:
            eps = eps + scale[:, None, None] * de
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
