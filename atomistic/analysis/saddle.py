"""Saddle points: climbing-image NEB with the images batched on the device, then a min-mode
refinement with the exact Hessian, verified by exactly one imaginary mode (DESIGN §3).

NEB (Henkelman, Uberuaga & Jónsson, JCP 113, 9901, 2000; improved tangent: Henkelman & Jónsson,
JCP 113, 9978, 2000): the inner images are one batched :class:`~atomistic.potential.structure.Structures`,
so each iteration is one energy+forces call. The band force on image i is the true force
perpendicular to the tangent plus the spring force ``k (|R_i+1 - R_i| - |R_i - R_i-1|)`` along it;
after ``climb_after`` iterations the highest image climbs (no spring, parallel force inverted).
The whole band moves with FIRE as one vector. Fixed atoms (ASE ``FixAtoms``) stay fixed.

Refinement (:func:`refine_saddle`): partitioned rational function optimisation (P-RFO; Baker,
J. Comput. Chem. 7, 385, 1986) on the free atoms with the dense autograd Hessian: maximise along
the followed eigenvector (the lowest at the start, then the one that overlaps most with the
previous), minimise along all others, inside a trust radius, until the largest force is below
``fmax``; rigid-body motions are projected out as in :mod:`atomistic.analysis.vibrations`. The result is
accepted only if :func:`~atomistic.analysis.vibrations.normal_modes` finds exactly one imaginary mode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import torch
from ase import Atoms
from ase.geometry import find_mic

from atomistic.analysis.optimize import Fire, FireSettings, relax
from atomistic.analysis.vibrations import (
    Modes,
    _dof,
    complement_basis,
    count_imaginary,
    free_atoms,
    normal_modes,
    rigid_vectors,
)
from atomistic.errors import SaddleError
from atomistic.potential.forces import hessian, model_inputs, predict
from atomistic.potential.models import model_device
from atomistic.potential.neighbors import build_neighbors
from atomistic.potential.structure import from_atoms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NEBResult:
    """A converged (or not) climbing-image band.

    images               n_images ASE Atoms, endpoints included (positions in Å)
    energies             (n_images,) eV
    barrier_forward_eV   highest image minus the initial state, eV
    barrier_backward_eV  highest image minus the final state, eV
    saddle_index         index of the highest (climbing) image
    tangent              (n_atoms, 3) unit tangent of the band at the highest image
    steps, converged     FIRE iterations; whether the largest band force fell below fmax
    max_force            largest band force at the end, eV/Å
    """

    images: list[Atoms]
    energies: np.ndarray
    barrier_forward_eV: float
    barrier_backward_eV: float
    saddle_index: int
    tangent: np.ndarray
    steps: int
    converged: bool
    max_force: float

    @property
    def saddle(self) -> Atoms:
        """The highest image (the climbing image of a converged CI-NEB), a copy."""
        return self.images[self.saddle_index].copy()


def improved_tangents(x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Unit tangents (k, n, 3) of the inner images from positions (k+2, n, 3) Å and energies (k+2,) eV."""
    plus, minus = x[2:] - x[1:-1], x[1:-1] - x[:-2]
    ep, e0, em = e[2:], e[1:-1], e[:-2]
    dmax = torch.maximum((ep - e0).abs(), (em - e0).abs())[:, None, None]
    dmin = torch.minimum((ep - e0).abs(), (em - e0).abs())[:, None, None]
    mixed = torch.where((ep > em)[:, None, None], plus * dmax + minus * dmin, plus * dmin + minus * dmax)
    up = ((ep > e0) & (e0 > em))[:, None, None]
    down = ((ep < e0) & (e0 < em))[:, None, None]
    tau = torch.where(up, plus, torch.where(down, minus, mixed))
    return tau / torch.linalg.vector_norm(tau.flatten(1), dim=1).clamp(min=1e-300)[:, None, None]


def _check_endpoints(initial: Atoms, final: Atoms) -> None:
    if len(initial) != len(final) or initial.get_chemical_symbols() != final.get_chemical_symbols():
        raise ValueError("initial and final structures must hold the same atoms in the same order")
    if not (np.array_equal(free_atoms(initial), free_atoms(final))):
        raise ValueError("initial and final structures must fix the same atoms (FixAtoms), got "
                         f"{len(initial) - len(free_atoms(initial))} and {len(final) - len(free_atoms(final))} fixed")
    if not (np.allclose(initial.cell.array, final.cell.array) and np.array_equal(initial.pbc, final.pbc)):
        raise ValueError("initial and final structures must share the cell and pbc")


def neb(model, initial: Atoms, final: Atoms, *, n_images: int = 7, spring_eV_A2: float = 0.1, climb: bool = True,
        climb_after: int = 20, fmax: float = 0.03, max_steps: int = 2000, relax_endpoints: bool = True,
        endpoint_fmax: float = 1e-3, fire: FireSettings | None = None, device=None) -> NEBResult:
    """Climbing-image NEB between two minima ``initial`` and ``final`` (same atoms, order,
    constraints and cell), started from their linear interpolation (minimum image if periodic).

    ``n_images`` counts the endpoints; ``spring_eV_A2`` is the spring constant (eV/Å^2); the band
    is converged when the largest band force on any atom is below ``fmax`` (eV/Å) with the
    climbing image on (switched on after ``climb_after`` iterations, or earlier once the plain
    band has converged). ``relax_endpoints`` first relaxes both ends (FIRE, ``endpoint_fmax`` eV/Å).
    """
    if n_images < 3:
        raise ValueError(f"n_images must be >= 3 (endpoints included), got {n_images}")
    for name, value in (("spring_eV_A2", spring_eV_A2), ("fmax", fmax), ("endpoint_fmax", endpoint_fmax)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if max_steps < 0 or climb_after < 0:
        raise ValueError(f"max_steps and climb_after must be >= 0, got {max_steps}, {climb_after}")
    _check_endpoints(initial, final)
    device = model_device(model, device)
    dtype = model.dtype
    if relax_endpoints:
        relaxed = relax(model, [initial, final], fmax=endpoint_fmax, device=device)
        if not all(relaxed.converged):
            log.warning("NEB: endpoint relaxation did not reach %g eV/Å (%s)", endpoint_fmax, relaxed.max_force)
        ends = relaxed.atoms
    else:
        ends = [initial.copy(), final.copy()]
    x0 = ends[0].positions
    d = ends[1].positions - x0
    if ends[0].pbc.any():
        d, _ = find_mic(d, ends[0].cell, ends[0].pbc)  # the shortest way round the cell
    path = x0[None] + np.linspace(0.0, 1.0, n_images)[:, None, None] * d[None]
    k, n = n_images - 2, len(initial)
    both = from_atoms(ends, model.species, device=device, dtype=dtype)
    both = replace(both, positions=torch.as_tensor(path[[0, -1]].reshape(-1, 3), dtype=dtype, device=device))
    e_ends = predict(model, both, build_neighbors(both, model.cutoff, model.angular_cutoff), forces=False).energy
    inner = from_atoms([ends[0]] * k, model.species, device=device, dtype=dtype)
    x = torch.as_tensor(path, dtype=dtype, device=device)  # (n_images, n, 3) Å
    mobile = torch.zeros(1, n, 1, dtype=dtype, device=device)
    mobile[0, torch.as_tensor(free_atoms(initial), device=device)] = 1.0
    optimizer = Fire(fire or FireSettings(), torch.zeros(k * n, dtype=torch.long, device=device), 1,
                     torch.zeros(k * n, 3, dtype=dtype, device=device))

    def band_forces(x, climbing):
        s = replace(inner, positions=x[1:-1].reshape(-1, 3))
        p = predict(model, s, build_neighbors(s, model.cutoff, model.angular_cutoff))
        e = torch.cat([e_ends[:1], p.energy, e_ends[1:]])
        f = p.forces.reshape(k, n, 3) * mobile
        tau = improved_tangents(x, e)
        f_par = (f * tau).sum((1, 2))[:, None, None]
        spring = spring_eV_A2 * (torch.linalg.vector_norm((x[2:] - x[1:-1]).flatten(1), dim=1)
                                 - torch.linalg.vector_norm((x[1:-1] - x[:-2]).flatten(1), dim=1))
        out = f - f_par * tau + spring[:, None, None] * tau
        top = int(torch.argmax(p.energy))
        if climbing:
            out[top] = f[top] - 2.0 * f_par[top] * tau[top]
        out = out * mobile
        return out, e, tau[top], float(torch.linalg.vector_norm(out, dim=2).max())

    step, climbing = 0, False
    f, e, tau, worst = band_forces(x, climbing)
    while True:
        if climb and not climbing and (step >= climb_after or worst < fmax):
            climbing = True
            f, e, tau, worst = band_forces(x, climbing)
        if (worst < fmax and (climbing or not climb)) or step >= max_steps:
            break
        d = optimizer.step(f.reshape(-1, 3)).reshape(k, n, 3)
        x = torch.cat([x[:1], x[1:-1] + d, x[-1:]])
        f, e, tau, worst = band_forces(x, climbing)
        step += 1
    converged = worst < fmax and (climbing or not climb)
    if not converged:
        log.warning("NEB stopped after %d steps with band force %.3g eV/Å (fmax %g)", step, worst, fmax)
    e_np = e.detach().cpu().numpy().astype(np.float64)
    images = []
    for pos in x.detach().cpu().numpy():
        a = ends[0].copy()
        a.calc = None
        a.set_positions(pos, apply_constraint=False)
        images.append(a)
    top = int(np.argmax(e_np))
    log.info("NEB: %d steps, barrier %.4f eV forward, %.4f eV backward, band force %.3g eV/Å", step,
             e_np[top] - e_np[0], e_np[top] - e_np[-1], worst)
    return NEBResult(images, e_np, float(e_np[top] - e_np[0]), float(e_np[top] - e_np[-1]), top,
                     tau.detach().cpu().numpy().astype(np.float64), step, converged, worst)


@dataclass(frozen=True)
class SaddleResult:
    """A verified first-order saddle: ``atoms`` (ASE Atoms, Å), ``energy`` (eV), ``max_force``
    on the free atoms (eV/Å), P-RFO ``steps`` and its normal ``modes`` (exactly one imaginary,
    ``modes.frequencies_cm[0]`` < 0)."""

    atoms: Atoms
    energy: float
    max_force: float
    steps: int
    modes: Modes


def _energy_forces(model, atoms: Atoms, device):
    """(energy eV, forces (n, 3) eV/Å as float64 numpy, Structures, Neighbors) of one structure."""
    s, nbrs = model_inputs(model, atoms, device=device)
    p = predict(model, s, nbrs)
    return float(p.energy[0]), p.forces.detach().cpu().numpy().astype(np.float64), s, nbrs


def _lowest_rfo_shift(b: np.ndarray, g: np.ndarray) -> float:
    """The RFO shift for minimisation: the root of ``lam = sum g_i^2 / (lam - b_i)`` below min(b, 0)."""
    if len(b) == 0:
        return 0.0
    top = b.min()
    lo = min(top, 0.0) - np.sqrt((g * g).sum()) - 1.0
    hi = top - 1e-12 * max(1.0, abs(top))
    if (g * g).sum() == 0.0:
        return min(top, 0.0) - 1e-12
    for _ in range(200):  # bisection: lam - sum g^2 / (lam - b) increases monotonically on (-inf, min b)
        mid = 0.5 * (lo + hi)
        if mid - (g * g / (mid - b)).sum() > 0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def prfo_step(eigenvalues: np.ndarray, gradient: np.ndarray, follow: int) -> np.ndarray:
    """P-RFO step in the Hessian eigenbasis: uphill along mode ``follow``, downhill along the others.

    ``eigenvalues`` (k,) and ``gradient`` (k,) are the Hessian's eigenvalues and the gradient's
    components in its eigenvectors (any consistent units); the step has the units of g / b.
    """
    b, g = np.asarray(eigenvalues, dtype=float), np.asarray(gradient, dtype=float)
    step = np.zeros_like(g)
    bt, gt = b[follow], g[follow]
    if gt != 0.0:
        lam_p = 0.5 * bt + 0.5 * np.sqrt(bt * bt + 4.0 * gt * gt)
        step[follow] = -gt / (bt - lam_p)
    rest = np.arange(len(b)) != follow
    lam_n = _lowest_rfo_shift(b[rest], g[rest])
    step[rest] = -g[rest] / (b[rest] - lam_n)
    return step


def refine_saddle(model, atoms: Atoms, *, fmax: float = 1e-3, max_steps: int = 100, trust_A: float = 0.1,
                  guess: np.ndarray | None = None, project_rigid: bool = True, imaginary_threshold_cm: float = 10.0,
                  device=None) -> SaddleResult:
    """Converge ``atoms`` (e.g. the climbing image) to a first-order saddle by P-RFO with the
    exact Hessian until the largest force on the free atoms is below ``fmax`` (eV/Å); no atom moves
    more than ``trust_A`` (Å) per step. ``guess`` (n_atoms, 3), e.g. :attr:`NEBResult.tangent`,
    picks the mode to climb at the start (largest overlap; default: the lowest mode).

    Raises :class:`SaddleError` (a ValueError) if it does not converge in ``max_steps`` or the
    converged point does not have exactly one imaginary mode (beyond ``imaginary_threshold_cm``).
    """
    for name, value in (("fmax", fmax), ("trust_A", trust_A)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    device = model_device(model, device)
    free = free_atoms(atoms)
    if len(free) == 0:
        raise ValueError("refine_saddle: every atom is fixed (FixAtoms)")
    dof = _dof(free)
    a = atoms.copy()
    a.calc = None
    previous = None
    if guess is not None:
        guess = np.asarray(guess, dtype=float)
        if guess.shape != (len(atoms), 3):
            raise ValueError(f"guess must have shape ({len(atoms)}, 3), got {guess.shape}")
        previous = guess[free].ravel()
    for step in range(max_steps + 1):
        energy, forces, s, nbrs = _energy_forces(model, a, device)
        worst = float(np.linalg.norm(forces[free], axis=1).max())
        log.debug("P-RFO step %d: energy %.6f eV, max force %.3g eV/Å", step, energy, worst)
        if worst < fmax:
            break
        if step == max_steps:
            raise SaddleError(f"refine_saddle: no convergence in max_steps={max_steps} steps "
                              f"(max force {worst:.3g} eV/Å, fmax {fmax})")
        # Cartesian rigid motions (unit masses) of the current geometry are not searched
        rigid = rigid_vectors(a, free, np.ones(len(free))) if project_rigid else np.zeros((0, len(dof)))
        basis = complement_basis(rigid, len(dof))
        h = hessian(model, s, nbrs).detach().cpu().numpy().astype(np.float64)[np.ix_(dof, dof)]
        lam, vec = np.linalg.eigh(basis.T @ h @ basis)
        vec = basis @ vec  # (3k, m) Cartesian eigenvectors
        follow = 0 if previous is None else int(np.argmax(np.abs(vec.T @ previous)))
        previous = vec[:, follow]
        dx = vec @ prfo_step(lam, vec.T @ (-forces[free].ravel()), follow)
        largest = np.linalg.norm(dx.reshape(-1, 3), axis=1).max()
        if largest > trust_A:
            dx *= trust_A / largest
        pos = a.positions.copy()
        pos[free] += dx.reshape(-1, 3)
        a.set_positions(pos, apply_constraint=False)
    modes = normal_modes(model, a, project_rigid=project_rigid, device=device)
    n_imag = count_imaginary(modes, imaginary_threshold_cm)
    if n_imag != 1:
        raise SaddleError(f"refine_saddle: the converged point has {n_imag} imaginary modes (a first-order saddle "
                          f"has exactly 1); lowest frequencies {np.round(modes.frequencies_cm[:3], 1).tolist()} cm^-1")
    log.info("saddle: %d P-RFO steps, energy %.6f eV, max force %.2g eV/Å, imaginary mode %.1f cm^-1", step,
             energy, worst, modes.frequencies_cm[0])
    return SaddleResult(a, energy, worst, step, modes)
