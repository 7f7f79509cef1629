"""Saddle points: climbing-image NEB with the images batched on the device, then a min-mode
refinement with the exact Hessian, verified by exactly one imaginary mode (DESIGN §3).

NEB (Henkelman, Uberuaga & Jónsson 2000; improved tangent, Henkelman & Jónsson 2000): the inner
images are one batched structure set, so each iteration is one energy+forces call. The band
force is the true force perpendicular to the tangent plus the spring force along it; after
``climb_after`` iterations the highest image climbs (its parallel force is inverted). The band
moves with FIRE. Fixed atoms (ASE ``FixAtoms``) stay fixed.

Refinement: Newton steps on the free atoms with the dense autograd Hessian, uphill along its
lowest eigenvector and downhill along all others (eigenvector following), inside a trust radius,
until the largest force is below ``fmax``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import torch
from ase import Atoms

from .forces import hessian, predict
from .neighbors import build_neighbors
from .optimize import Fire, FireSettings, relax
from .structure import from_atoms
from .vibrations import Modes, count_imaginary, free_atoms, normal_modes

log = logging.getLogger(__name__)


class SaddleError(ValueError):
    """A point that should be a first-order saddle is not one."""


@dataclass
class NEBResult:
    """images (ASE Atoms, endpoints included), energies (eV), barrier_forward_eV /
    barrier_backward_eV (highest image minus each end), saddle_index (highest image), steps,
    converged (largest band force below fmax) and max_force (eV/Å)."""

    images: list[Atoms]
    energies: np.ndarray
    barrier_forward_eV: float
    barrier_backward_eV: float
    saddle_index: int
    steps: int
    converged: bool
    max_force: float


def _device(model, device):
    return torch.device(device) if device is not None else next(model.parameters()).device


def improved_tangents(x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Unit tangents (k, n, 3) of the inner images from positions (k+2, n, 3) and energies (k+2,)."""
    plus, minus = x[2:] - x[1:-1], x[1:-1] - x[:-2]
    ep, e0, em = e[2:], e[1:-1], e[:-2]
    dmax = torch.maximum((ep - e0).abs(), (em - e0).abs())[:, None, None]
    dmin = torch.minimum((ep - e0).abs(), (em - e0).abs())[:, None, None]
    mixed = torch.where((ep > em)[:, None, None], plus * dmax + minus * dmin, plus * dmin + minus * dmax)
    up = ((ep > e0) & (e0 > em))[:, None, None]
    down = ((ep < e0) & (e0 < em))[:, None, None]
    tau = torch.where(up, plus, torch.where(down, minus, mixed))
    return tau / torch.linalg.vector_norm(tau.flatten(1), dim=1).clamp(min=1e-300)[:, None, None]


def neb(model, initial: Atoms, final: Atoms, *, n_images: int = 7, spring_eV_A2: float = 0.1, climb: bool = True,
        climb_after: int = 20, fmax: float = 0.03, max_steps: int = 2000, relax_endpoints: bool = True,
        endpoint_fmax: float = 1e-3, fire: FireSettings | None = None, device=None) -> NEBResult:
    """Climbing-image NEB between two minima (same atoms, same constraints), linear interpolation.

    ``n_images`` counts the endpoints; ``spring_eV_A2`` is the spring constant, eV/Å^2.
    """
    if n_images < 3:
        raise ValueError(f"n_images must be >= 3 (endpoints included), got {n_images}")
    if len(initial) != len(final) or initial.get_chemical_symbols() != final.get_chemical_symbols():
        raise ValueError("initial and final structures must hold the same atoms in the same order")
    device = _device(model, device)
    if relax_endpoints:
        ends = relax(model, [initial, final], fmax=endpoint_fmax, device=device).atoms
    else:
        ends = [initial.copy(), final.copy()]
    k = n_images - 2
    x0, x1 = ends[0].positions, ends[1].positions
    path = np.stack([x0 + (x1 - x0) * t for t in np.linspace(0.0, 1.0, n_images)])
    dtype = model.dtype
    inner = from_atoms([ends[0]] * k, model.species, device=device, dtype=dtype)
    x = torch.as_tensor(path, dtype=dtype, device=device)  # (n_images, n, 3)
    n = x.shape[1]
    mobile = torch.zeros(1, n, 1, dtype=dtype, device=device)
    mobile[0, torch.as_tensor(free_atoms(initial), device=device)] = 1.0
    e_ends = []
    for a in ends:
        s = from_atoms(a, model.species, device=device, dtype=dtype)
        e_ends.append(predict(model, s, build_neighbors(s, model.cutoff, model.angular_cutoff), forces=False).energy[0])
    e_ends = torch.stack(e_ends)
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
        if climbing:
            top = int(torch.argmax(p.energy))
            out[top] = f[top] - 2.0 * f_par[top] * tau[top]
        return out * mobile, e

    step, climbing = 0, False
    f, e = band_forces(x, climbing)
    worst = float(torch.linalg.vector_norm(f, dim=2).max())
    while step < max_steps:
        if climb and not climbing and (step >= climb_after or worst < fmax):
            climbing = True
            f, e = band_forces(x, climbing)
            worst = float(torch.linalg.vector_norm(f, dim=2).max())
        if worst < fmax and (climbing or not climb):
            break
        d = optimizer.step(f.reshape(-1, 3)).reshape(k, n, 3)
        x = torch.cat([x[:1], x[1:-1] + d, x[-1:]])
        f, e = band_forces(x, climbing)
        worst = float(torch.linalg.vector_norm(f, dim=2).max())
        step += 1
    converged = worst < fmax
    if not converged:
        log.warning("NEB stopped after %d steps with band force %.3g eV/Å (fmax %g)", step, worst, fmax)
    e_np = e.detach().cpu().numpy()
    images = []
    for pos in x.detach().cpu().numpy():
        a = ends[0].copy()
        a.set_positions(pos, apply_constraint=False)
        images.append(a)
    top = int(np.argmax(e_np))
    return NEBResult(images, e_np, float(e_np[top] - e_np[0]), float(e_np[top] - e_np[-1]), top, step, converged, worst)


@dataclass
class SaddleResult:
    """The refined saddle (ASE Atoms), its energy (eV), largest force (eV/Å), Newton steps and its
    normal modes (exactly one imaginary, checked)."""

    atoms: Atoms
    energy: float
    max_force: float
    steps: int
    modes: Modes


def _energy_forces(model, atoms: Atoms, device):
    s = from_atoms(atoms, model.species, device=device, dtype=model.dtype)
    nbrs = build_neighbors(s, model.cutoff, model.angular_cutoff)
    p = predict(model, s, nbrs)
    return float(p.energy[0]), p.forces.detach().cpu().numpy(), s, nbrs


def refine_saddle(model, atoms: Atoms, *, fmax: float = 1e-3, max_steps: int = 100, trust_A: float = 0.1,
                  project_rigid: bool = True, imaginary_threshold_cm: float = 10.0, device=None) -> SaddleResult:
    """Converge ``atoms`` (e.g. the climbing image) to a first-order saddle by eigenvector
    following with the exact Hessian; raise :class:`SaddleError` unless exactly one mode is
    imaginary at the end."""
    device = _device(model, device)
    free = free_atoms(atoms)
    dof = (3 * free[:, None] + np.arange(3)).ravel()
    a = atoms.copy()
    for step in range(max_steps + 1):
        energy, forces, s, nbrs = _energy_forces(model, a, device)
        worst = float(np.linalg.norm(forces[free], axis=1).max())
        if worst < fmax:
            break
        if step == max_steps:
            raise SaddleError(f"refine_saddle: no convergence in {max_steps} steps (max force {worst:.3g} eV/Å)")
        h = hessian(model, s, nbrs).detach().cpu().numpy()[np.ix_(dof, dof)]
        lam, vec = np.linalg.eigh(h)
        g = -forces[free].ravel()
        gi = vec.T @ g
        curvature = np.maximum(np.abs(lam), 1e-2)  # flat (rigid) directions take small steps
        sign = np.ones_like(lam)
        sign[0] = -1.0  # uphill along the lowest mode, downhill along the others
        dx = -(vec @ (sign * gi / curvature))
        norm = np.abs(dx.reshape(-1, 3)).max()
        if norm > trust_A:
            dx *= trust_A / norm
        pos = a.positions.copy()
        pos[free] += dx.reshape(-1, 3)
        a.set_positions(pos, apply_constraint=False)
    modes = normal_modes(model, a, project_rigid=project_rigid, device=device)
    n_imag = count_imaginary(modes, imaginary_threshold_cm)
    if n_imag != 1:
        raise SaddleError(f"refine_saddle: the converged point has {n_imag} imaginary modes (a first-order saddle "
                          f"has exactly 1); lowest frequencies {np.round(modes.frequencies_cm[:3], 1).tolist()} cm^-1")
    return SaddleResult(a, energy, worst, step, modes)
