"""Harmonic vibrations from the autograd Hessian (DESIGN §3).

The Hessian of the free atoms (eV/Å^2) is mass-weighted, ``H_mw = M^-1/2 H M^-1/2``
(eV/Å^2/amu). Rigid-body motions are removed exactly by diagonalising ``H_mw`` in the orthogonal
complement of the mass-weighted translations and rotations (Eckart conditions): 3 translations
and 3 rotations (2 for a linear molecule) for an isolated structure, 3 translations for a
periodic one, none when some atoms are fixed (fixed atoms break the symmetry). Frequencies are in
cm^-1; imaginary modes are reported as negative numbers.

Away from a stationary point the Hessian is still diagonalised (the curvature there is what a
saddle search needs), but the result is not a set of harmonic vibrations: the largest force is
stored in :attr:`Modes.max_force` and a warning is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms, units

from atomistic.errors import InputMismatch
from atomistic.potential.forces import hessian, model_inputs, predict
from atomistic.potential.models import model_device
from atomistic.potential.structure import check_distances, fixed_mask

log = logging.getLogger(__name__)

#: sqrt(eV / (Å^2 amu)) in cm^-1
_CM = 1e15 * units.fs / (2 * np.pi * 2.99792458e10)

#: largest force (eV/Å) at which a point still counts as stationary for :func:`normal_modes`
STATIONARY_FMAX = 0.01


def eigenvalues_to_cm(eigenvalues) -> np.ndarray:
    """Mass-weighted Hessian eigenvalues (eV/Å^2/amu) -> frequencies (cm^-1), negative if imaginary."""
    lam = np.asarray(eigenvalues, dtype=float)
    return np.sign(lam) * np.sqrt(np.abs(lam)) * _CM


@dataclass(frozen=True)
class Modes:
    """Normal modes of the free atoms ``indices``, sorted by eigenvalue (k = 3 n_free - n_rigid).

    frequencies_cm  (k,) cm^-1, imaginary ones negative
    eigenvalues     (k,) eV/Å^2/amu, of the mass-weighted Hessian
    mass_weighted   (k, 3 n_free) orthonormal eigenvectors in mass-weighted coordinates
    displacements   (k, n_free, 3) Cartesian displacement patterns M^-1/2 e, unit length
    indices         (n_free,) the atoms that vibrate
    n_rigid         rigid-body modes projected out (0, 3, 5 or 6)
    max_force       largest force on the free atoms, eV/Å (not a stationary point if large)
    """

    frequencies_cm: np.ndarray
    eigenvalues: np.ndarray
    mass_weighted: np.ndarray
    displacements: np.ndarray
    indices: np.ndarray
    n_rigid: int
    max_force: float

    def n_imaginary(self, threshold_cm: float = 10.0) -> int:
        return count_imaginary(self, threshold_cm)


def count_imaginary(modes: Modes, threshold_cm: float = 10.0) -> int:
    """Number of modes with an imaginary frequency beyond ``threshold_cm`` cm^-1 (smaller
    negative values are numerical noise of the rigid-mode projection or of the Hessian)."""
    if not threshold_cm >= 0:
        raise ValueError(f"threshold_cm must be >= 0 (cm^-1), got {threshold_cm}")
    return int((modes.frequencies_cm < -threshold_cm).sum())


def free_atoms(atoms: Atoms) -> np.ndarray:
    """Indices of the atoms not held by a ``FixAtoms`` constraint."""
    return np.flatnonzero(~fixed_mask(atoms))


def _check_indices(atoms: Atoms, indices) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or len(idx) == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"indices must be a non-empty 1-D list of atom indices, got {indices!r}")
    if idx.min() < 0 or idx.max() >= len(atoms) or len(np.unique(idx)) != len(idx):
        raise ValueError(f"indices must be distinct atom indices in [0, {len(atoms)}), got {idx.tolist()}")
    return idx


def _dof(indices: np.ndarray) -> np.ndarray:
    return (3 * indices[:, None] + np.arange(3)).ravel()




def _hessian_and_forces(model, atoms: Atoms, device) -> tuple[np.ndarray, np.ndarray]:
    """Dense Hessian (3n, 3n) eV/Å^2 and forces (n, 3) eV/Å of all atoms, float64 on the host."""
    s, nbrs = model_inputs(model, atoms, device=device)
    f = predict(model, s, nbrs).forces.detach().cpu().numpy().astype(np.float64)
    h = hessian(model, s, nbrs).detach().cpu().numpy().astype(np.float64)
    return h, f


def mass_weighted_hessian(model, atoms: Atoms, indices=None, device=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H_mw over ``indices`` (3k, 3k) eV/Å^2/amu, masses (k,) amu, indices (k,))."""
    indices = free_atoms(atoms) if indices is None else _check_indices(atoms, indices)
    h, _ = _hessian_and_forces(model, atoms, model_device(model, device))
    m = atoms.get_masses()[indices]
    return _mass_weight(h, indices, m), m, indices


def _mass_weight(h: np.ndarray, indices: np.ndarray, masses: np.ndarray) -> np.ndarray:
    dof = _dof(indices)
    w = 1.0 / np.sqrt(np.repeat(masses, 3))
    return h[np.ix_(dof, dof)] * w[:, None] * w[None, :]


def rigid_vectors(atoms: Atoms, indices: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Orthonormal mass-weighted rigid-body vectors (r, 3k) for the atoms ``indices``: none if
    some atoms do not move (fixed, or left out of ``indices``), 3 translations if periodic in any
    direction, translations and rotations (2 for a linear molecule) otherwise.

    With unit ``masses`` these are the Cartesian rigid motions."""
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
        for axis in np.eye(3):
            vecs.append((np.cross(axis, r) * sq[:, None]).ravel())
    u, s, _ = np.linalg.svd(np.array(vecs).T, full_matrices=False)
    return u[:, s > 1e-6 * s.max()].T  # a linear molecule has two rotations, an atom none


def complement_basis(rigid: np.ndarray, n: int) -> np.ndarray:
    """Orthonormal basis (n, n - r) of the complement of the orthonormal rows of ``rigid`` (r, n)."""
    if len(rigid) == 0:
        return np.eye(n)
    q, _ = np.linalg.qr(np.concatenate([rigid.T, np.eye(n)], axis=1))
    return q[:, len(rigid):n]


def modes_from_hessian(h: np.ndarray, atoms: Atoms, indices: np.ndarray, *, project_rigid: bool = True,
                       max_force: float = 0.0) -> Modes:
    """Normal modes from the full Cartesian Hessian ``h`` (3n, 3n) eV/Å^2 of ``atoms``, restricted
    to ``indices``; ``max_force`` (eV/Å) is stored as given."""
    masses = atoms.get_masses()[indices]
    h_mw = _mass_weight(h, indices, masses)
    rigid = rigid_vectors(atoms, indices, masses) if project_rigid else np.zeros((0, h_mw.shape[0]))
    basis = complement_basis(rigid, h_mw.shape[0])
    lam, vec = np.linalg.eigh(basis.T @ h_mw @ basis)
    vec = basis @ vec
    disp = (vec / np.sqrt(np.repeat(masses, 3))[:, None]).T.reshape(len(lam), len(indices), 3)
    disp /= np.linalg.norm(disp.reshape(len(lam), -1), axis=1)[:, None, None]
    return Modes(eigenvalues_to_cm(lam), lam, vec.T, disp, indices, len(rigid), float(max_force))


def normal_modes(model, atoms: Atoms, *, indices=None, project_rigid: bool = True, device=None,
                 stationary_fmax: float = STATIONARY_FMAX) -> Modes:
    """Frequencies (cm^-1) and normal modes of ``atoms`` (Å, amu) under ``model`` (see the module
    docstring), from the dense autograd Hessian (eV/Å^2) of the free atoms.

    ``indices``: the atoms that vibrate (default: all not fixed by ``FixAtoms``); the others are
    held fixed, so no rigid modes are projected out when any atom is left out.
    ``project_rigid=False`` keeps every mode (for a surface that is not translation invariant,
    such as the analytic surfaces of :mod:`atomistic.potential.analytic`).
    A point whose largest force on the free atoms exceeds ``stationary_fmax`` eV/Å is not
    stationary: the modes are still returned (the local curvature), with a warning.
    """
    indices = free_atoms(atoms) if indices is None else _check_indices(atoms, indices)
    if len(indices) == 0:
        raise ValueError("normal_modes: every atom is fixed (FixAtoms), nothing can vibrate")
    if project_rigid and len(atoms) == 1:
        raise InputMismatch("normal_modes: a single atom has no vibrations (its 3 degrees of freedom are "
                            "translations)")
    check_distances(atoms, what="normal_modes")
    if not stationary_fmax > 0:
        raise ValueError(f"stationary_fmax must be positive (eV/Å), got {stationary_fmax}")
    h, forces = _hessian_and_forces(model, atoms, model_device(model, device))
    worst = float(np.linalg.norm(forces[indices], axis=1).max())
    if worst > stationary_fmax:
        log.warning("normal modes at a non-stationary point: max force %.3g eV/Å > %g eV/Å; the frequencies "
                    "describe the local curvature, not vibrations about a minimum or saddle", worst, stationary_fmax)
    return modes_from_hessian(h, atoms, indices, project_rigid=project_rigid, max_force=worst)


def spectrum_plot(path: str | Path, modes: Modes, *, width_cm: float = 5.0, title: str = "") -> Path:
    """Stick spectrum (cm^-1) with Lorentzian broadening (``width_cm`` half width at half maximum,
    cm^-1), written atomically as PNG; imaginary modes in red at negative frequencies."""
    if not width_cm > 0:
        raise ValueError(f"width_cm must be positive (cm^-1), got {width_cm}")
    from atomistic.plots import plt, save_png

    f = modes.frequencies_cm
    lo, hi = min(f.min(), 0.0) - 5 * width_cm, max(f.max(), 0.0) + 5 * width_cm
    grid = np.linspace(lo, hi, 2000)
    curve = (width_cm**2 / ((grid[:, None] - f[None, :]) ** 2 + width_cm**2)).sum(1)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(grid, curve, lw=1.0, color="k")
    ax.vlines(f[f >= 0], 0, 1, color="C0", lw=0.8)
    if (f < 0).any():
        ax.vlines(f[f < 0], 0, 1, color="C3", lw=0.8, label="imaginary (plotted negative)")
        ax.legend(frameon=False)
    ax.set_xlabel("frequency (cm$^{-1}$)")
    ax.set_ylabel("density of modes (arb.)")
    ax.set_title(title)
    return save_png(fig, path)
