"""Harmonic vibrations from the autograd Hessian (DESIGN §3).

The Hessian of the free atoms (eV/Å^2) is mass-weighted, ``H_mw = M^-1/2 H M^-1/2``
(eV/Å^2/amu). Rigid-body motions are removed exactly by diagonalising ``H_mw`` in the orthogonal
complement of the mass-weighted translations and rotations (Eckart conditions): 3 translations
and 3 rotations (2 for a linear molecule) for an isolated structure, 3 translations for a
periodic one, none when some atoms are fixed. Frequencies are in cm^-1; imaginary modes are
reported as negative numbers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units

from .atomic_files import atomic_path
from .forces import hessian
from .neighbors import build_neighbors
from .structure import from_atoms

log = logging.getLogger(__name__)

#: sqrt(eV / (Å^2 amu)) in cm^-1
_CM = 1e15 * units.fs / (2 * np.pi * 2.99792458e10)


def eigenvalues_to_cm(eigenvalues) -> np.ndarray:
    """Mass-weighted Hessian eigenvalues (eV/Å^2/amu) -> frequencies (cm^-1), negative if imaginary."""
    lam = np.asarray(eigenvalues, dtype=float)
    return np.sign(lam) * np.sqrt(np.abs(lam)) * _CM


@dataclass
class Modes:
    """Normal modes of the free atoms ``indices``, sorted by eigenvalue.

    frequencies_cm (k,) cm^-1 (imaginary < 0); eigenvalues (k,) eV/Å^2/amu;
    mass_weighted (k, 3 n_free) orthonormal eigenvectors; displacements (k, n_free, 3) Cartesian
    displacement patterns (normalised to unit length); n_rigid rigid modes projected out.
    """

    frequencies_cm: np.ndarray
    eigenvalues: np.ndarray
    mass_weighted: np.ndarray
    displacements: np.ndarray
    indices: np.ndarray
    n_rigid: int

    def n_imaginary(self, threshold_cm: float = 10.0) -> int:
        return count_imaginary(self, threshold_cm)


def count_imaginary(modes: Modes, threshold_cm: float = 10.0) -> int:
    """Modes with an imaginary frequency larger than ``threshold_cm`` (numerical noise below)."""
    return int((modes.frequencies_cm < -abs(threshold_cm)).sum())


def free_atoms(atoms: Atoms) -> np.ndarray:
    """Indices of the atoms not held by a ``FixAtoms`` constraint."""
    from .md.driver import fixed_mask

    return np.flatnonzero(~fixed_mask([atoms]))


def mass_weighted_hessian(model, atoms: Atoms, indices=None, device=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H_mw over ``indices`` (3k, 3k) eV/Å^2/amu, masses (k,) amu, indices)."""
    indices = free_atoms(atoms) if indices is None else np.asarray(indices)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    s = from_atoms(atoms, model.species, device=device, dtype=torch.float64 if model.dtype == torch.float64 else model.dtype)
    h = hessian(model, s, build_neighbors(s, model.cutoff, model.angular_cutoff)).detach().cpu().numpy()
    dof = (3 * indices[:, None] + np.arange(3)).ravel()
    h = h[np.ix_(dof, dof)]
    m = atoms.get_masses()[indices]
    w = 1.0 / np.sqrt(np.repeat(m, 3))
    return h * w[:, None] * w[None, :], m, indices


def rigid_vectors(atoms: Atoms, indices: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Orthonormal mass-weighted rigid-body vectors (r, 3k) for the free atoms: none if atoms are
    fixed, translations if periodic, translations and rotations otherwise."""
    if len(indices) < len(atoms):
        return np.zeros((0, 3 * len(indices)))
    sq = np.sqrt(masses)
    vecs = []
    for a in range(3):
        v = np.zeros((len(indices), 3))
        v[:, a] = sq
        vecs.append(v.ravel())
    if not atoms.pbc.any():
        pos = atoms.positions[indices]
        com = (masses[:, None] * pos).sum(0) / masses.sum()
        r = pos - com
        for a in range(3):
            axis = np.zeros(3)
            axis[a] = 1.0
            vecs.append((np.cross(axis, r) * sq[:, None]).ravel())
    u, s, _ = np.linalg.svd(np.array(vecs).T, full_matrices=False)
    return u[:, s > 1e-6 * s.max()].T  # a linear molecule has only two rotations


def normal_modes(model, atoms: Atoms, *, indices=None, project_rigid: bool = True, device=None) -> Modes:
    """Frequencies (cm^-1) and normal modes of ``atoms`` under ``model`` (see module docstring).

    ``indices``: the atoms that vibrate (default: all not fixed by ``FixAtoms``);
    ``project_rigid=False`` keeps every mode (for a surface that is not translation invariant,
    such as an external field or the analytic surfaces of :mod:`atomistic.analytic`).
    """
    h, masses, indices = mass_weighted_hessian(model, atoms, indices, device)
    rigid = rigid_vectors(atoms, indices, masses) if project_rigid else np.zeros((0, h.shape[0]))
    if len(rigid):
        # an orthonormal basis of the complement of the rigid motions
        q, _ = np.linalg.qr(np.concatenate([rigid.T, np.eye(h.shape[0])], axis=1))
        basis = q[:, len(rigid):h.shape[0]]
        lam, vec = np.linalg.eigh(basis.T @ h @ basis)
        vec = basis @ vec
    else:
        lam, vec = np.linalg.eigh(h)
    disp = (vec / np.sqrt(np.repeat(masses, 3))[:, None]).T.reshape(len(lam), len(indices), 3)
    disp /= np.linalg.norm(disp.reshape(len(lam), -1), axis=1)[:, None, None]
    return Modes(eigenvalues_to_cm(lam), lam, vec.T, disp, indices, len(rigid))


def spectrum_plot(path: str | Path, modes: Modes, *, width_cm: float = 5.0, title: str = "") -> Path:
    """Stick spectrum with Lorentzian broadening (``width_cm`` half width); imaginary modes in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = modes.frequencies_cm
    lo, hi = min(f.min(), 0.0) - 5 * width_cm, f.max() + 5 * width_cm
    grid = np.linspace(lo, hi, 2000)
    curve = (width_cm**2 / ((grid[:, None] - f[None, :]) ** 2 + width_cm**2)).sum(1)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(grid, curve, lw=1.0, color="k")
    ax.vlines(f[f >= 0], 0, 1, color="C0", lw=0.8)
    ax.vlines(f[f < 0], 0, 1, color="C3", lw=0.8, label="imaginary (plotted negative)")
    ax.set_xlabel("frequency (cm$^{-1}$)")
    ax.set_ylabel("density of modes (arb.)")
    if (f < 0).any():
        ax.legend(frameon=False)
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
