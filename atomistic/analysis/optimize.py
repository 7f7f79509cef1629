"""Minima on the device: FIRE (Bitzek et al., PRL 97, 170201, 2006), batched over structures.

Each structure has its own FIRE state (time step, mixing, velocity) and stops when its largest
force is below ``fmax``; the batch finishes when all have. Fixed atoms (ASE ``FixAtoms``, or a
boolean mask) never move. With ``cell=True`` the cell relaxes too, as in ASE's
``UnitCellFilter``: the cell is ``cell0 D`` with ``D = I + eps``, positions are ``ref D``, and the
strain rows feel the generalised force ``-dH/d eps / n_atoms = -V D^-T (sigma + P I) / n_atoms``
(H = E + P V the enthalpy, sigma the virial stress in eV/Å^3 with ASE's sign, P the target
pressure), so at convergence the stress equals ``-P`` to ``fmax n_atoms / V`` eV/Å^3 per row.
``hydrostatic=True`` keeps the cell shape (only the trace of the strain force acts).
Neighbours come from a Verlet list (cutoff + skin) rebuilt as soon as an atom or the cell could
have moved a pair across the skin (:class:`atomistic.md.forcefield.VerletForceField`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms, units
from tqdm.auto import tqdm

from atomistic.potential.models import model_device
from atomistic.potential.structure import fixed_mask, from_atoms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FireSettings:
    """FIRE parameters (Bitzek 2006, as in ASE): ``dt``, ``dt_max`` in ASE time units with unit
    masses; ``n_min`` downhill steps before the step grows by ``f_inc``; ``f_dec`` shrinks it
    after an uphill step; mixing ``alpha_start``, decaying by ``f_alpha``.

    max_step_A: largest displacement of any row per step, Å (for the strain rows of a cell
    relaxation: the largest change of a row of the strain, dimensionless)."""

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
            raise ValueError(f"fire.f_dec must be in (0, 1) and fire.f_alpha in (0, 1], "
                             f"got {self.f_dec}, {self.f_alpha}")


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
    """Relaxed copies of the input (``atoms``, constraints kept); per structure: ``energies``
    (potential energy E, eV, also with a target pressure), ``max_force`` (largest remaining force
    on a free atom, eV/Å, or strain force with ``cell``), ``converged``; ``steps``: FIRE steps
    taken by the batch."""

    atoms: list[Atoms]
    energies: list[float]
    max_force: list[float]
    steps: int
    converged: list[bool]

    @property
    def all_converged(self) -> bool:
        return all(self.converged)


def fixed_atoms(frames: Sequence[Atoms], fixed=None) -> np.ndarray:
    """(n_atoms over all frames,) bool: atoms held by an ASE ``FixAtoms`` constraint or by the
    optional mask ``fixed`` (same shape). Other constraints are refused."""
    mask = fixed_mask(frames, what="relax")
    if fixed is not None:
        extra = np.asarray(fixed.detach().cpu() if isinstance(fixed, torch.Tensor) else fixed)
        if extra.dtype != bool or extra.shape != mask.shape:
            raise ValueError(f"fixed must be a bool mask of shape {mask.shape} (atoms over all structures), "
                             f"got dtype {extra.dtype} and shape {extra.shape}")
        mask = mask | extra
    return mask


def relax(model, atoms: Atoms | Sequence[Atoms], *, fmax: float = 0.01, max_steps: int = 2000, cell: bool = False,
          hydrostatic: bool = False, pressure_GPa: float = 0.0, fixed=None, fire: FireSettings | None = None,
          device: str | torch.device | None = None, skin: float = 0.5, progress: bool = False) -> RelaxResult:
    """Relax ``atoms`` (one or a list; each its own minimisation) to max force < ``fmax`` eV/Å.

    ``cell``: also relax the cell (periodic structures only) to the target ``pressure_GPa`` (GPa,
    positive compresses), with ``hydrostatic`` keeping its shape; ``fixed``: optional bool mask
    (atoms over all structures) of atoms that must not move, on top of ``FixAtoms``;
    ``fire``: :class:`FireSettings`; ``skin``: Verlet skin of the neighbour list, Å;
    ``progress``: a tqdm bar. A structure that does not converge in ``max_steps`` is returned
    as it is, with ``converged`` False and a warning logged.
    """
    from atomistic.md.forcefield import VerletForceField

    frames = [atoms] if isinstance(atoms, Atoms) else list(atoms)
    if not frames or not all(isinstance(a, Atoms) for a in frames):
        raise ValueError("atoms must be an ase.Atoms or a non-empty list of them")
    if not fmax > 0:
        raise ValueError(f"fmax must be positive, got {fmax}")
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    if not skin > 0:
        raise ValueError(f"skin must be positive (Å), got {skin}")
    if cell and not all(a.pbc.all() and a.cell.rank == 3 for a in frames):
        raise ValueError("cell relaxation needs periodic structures with a full cell (pbc all True)")
    if not cell and (hydrostatic or pressure_GPa != 0.0):
        raise ValueError(f"hydrostatic={hydrostatic} and pressure_GPa={pressure_GPa} need cell=True")
    fire = fire or FireSettings()
    device = model_device(model, device)
    dtype = model.dtype
    mobile = torch.as_tensor(~fixed_atoms(frames, fixed), device=device)[:, None].to(dtype)
    s = from_atoms(frames, model.species, device=device, dtype=dtype)
    ff = VerletForceField(model, s, skin=skin, stress=cell)
    batch, n_struct = s.batch, s.n_structures
    n_per = torch.as_tensor(s.n_atoms, device=device, dtype=dtype)
    eye = torch.eye(3, dtype=dtype, device=device)
    ref = s.positions.clone()
    cell0 = s.cell.clone()
    eps = torch.zeros_like(cell0)  # (B, 3, 3) strain
    p_ext = pressure_GPa * units.GPa  # eV/Å^3

    def evaluate(ref, eps):
        d = eye + eps
        x = torch.einsum("ni,nij->nj", ref, d[batch])
        h = torch.bmm(cell0, d)
        if ff.candidates is None or float(ff.margin(x, h).min()) <= 0:
            ff.rebuild(x, h)
        out = ff.evaluate(x, h)
        forces = out.forces * mobile
        g_pos = torch.einsum("nj,nij->ni", forces, d[batch])  # -dE/dref = F D^T
        if not cell:
            return out.energy, forces, g_pos, None, x, h
        volume = torch.linalg.det(h).abs()
        g_eps = -volume[:, None, None] * torch.linalg.solve(d.transpose(1, 2), out.stress + p_ext * eye)
        g_eps = g_eps / n_per[:, None, None]
        if hydrostatic:
            g_eps = torch.diagonal(g_eps, dim1=1, dim2=2).mean(1)[:, None, None] * eye
        return out.energy, forces, g_pos, g_eps, x, h

    def max_force(forces, g_eps):
        per_atom = torch.linalg.vector_norm(forces, dim=1)
        worst = torch.zeros(n_struct, dtype=dtype, device=device).scatter_reduce(0, batch, per_atom, "amax")
        if g_eps is not None:
            worst = torch.maximum(worst, torch.linalg.vector_norm(g_eps, dim=2).amax(1))
        return worst

    # strain rows (3 per structure) join the atoms as extra rows of one FIRE state per structure
    rows_group = torch.cat([batch, torch.arange(n_struct, device=device).repeat_interleave(3)]) if cell else batch
    energy, forces, g_pos, g_eps, x, h = evaluate(ref, eps)
    optimizer = Fire(fire, rows_group, n_struct, torch.cat([g_pos, g_eps.reshape(-1, 3)]) if cell else g_pos)
    worst = max_force(forces, g_eps)
    step = 0
    bar = tqdm(total=max_steps, desc="FIRE", disable=not progress, leave=False)
    while step < max_steps and bool((worst >= fmax).any()):
        generalised = torch.cat([g_pos, g_eps.reshape(-1, 3)]) if cell else g_pos
        d = optimizer.step(generalised, active=worst >= fmax)  # converged structures stay put
        ref = ref + d[: len(ref)]
        if cell:
            eps = eps + d[len(ref):].reshape(-1, 3, 3)
        energy, forces, g_pos, g_eps, x, h = evaluate(ref, eps)
        worst = max_force(forces, g_eps)
        step += 1
        bar.update(1)
        if progress:
            bar.set_postfix(max_force=f"{float(worst.max()):.2e}")
    bar.close()
    converged = (worst < fmax).cpu().tolist()
    if not all(converged):
        log.warning("FIRE: structure(s) %s not converged after max_steps=%d: max force %s eV/Å (fmax %g)",
                    [b for b, c in enumerate(converged) if not c], step,
                    [f"{float(w):.3g}" for w, c in zip(worst.cpu(), converged) if not c], fmax)
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
