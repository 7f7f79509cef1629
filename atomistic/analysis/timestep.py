"""An MD time step from the Hessian (DESIGN §3).

Relax, take the largest eigenvalue ``lambda_max`` of the mass-weighted Hessian
``M^-1/2 H M^-1/2`` of the free atoms (eV/Å^2/amu), ``w_max = sqrt(lambda_max)`` (angular
frequency in ASE's time unit), ``T_min = 2 pi / w_max`` and ``dt = fraction x T_min``
(``fraction = 1/20`` by default), reported in fs. Atoms held by ``FixAtoms`` do not vibrate and
are left out.

Small systems (up to ``dense_limit`` free atoms) use the dense autograd Hessian. Larger ones run
Lanczos on Hessian-vector products (never forming the matrix), with full reorthogonalisation,
until the Ritz residual bounds the eigenvalue error by ``tol`` (relative): a few tens of products
even when the top of the spectrum is nearly degenerate, where power iteration stalls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from atomistic.analysis.vibrations import eigenvalues_to_cm, free_atoms, mass_weighted_hessian
from atomistic.potential.forces import hessian_vector_product, model_inputs
from atomistic.potential.models import model_device
from atomistic.units import fs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimestepSuggestion:
    """The suggested MD time step and where it comes from.

    timestep_fs = fraction x period_fs, fs; period_fs: T_min = 2 pi / w_max of the highest mode,
    fs; max_frequency_cm: that mode as a wavenumber w_max / (2 pi c), cm^-1; fraction;
    method: "dense" or "lanczos"; max_eigenvalue: lambda_max = w_max^2, eV/Å^2/amu.
    """

    timestep_fs: float
    period_fs: float
    max_frequency_cm: float
    fraction: float
    method: str
    max_eigenvalue: float




def lanczos_largest(matvec, start: torch.Tensor, *, tol: float = 1e-8, max_iter: int = 200) -> tuple[float, float, int]:
    """Largest eigenvalue of the symmetric operator ``matvec`` (vector -> vector, any shape) by
    Lanczos from ``start``: (eigenvalue, residual bound on its error, products used).

    Full reorthogonalisation (twice) keeps the basis orthonormal; stops when
    ``|lambda - theta| <= ||H y - theta y|| < tol |theta|`` or the Krylov space is invariant.
    """
    q = start / torch.linalg.vector_norm(start)
    basis, alphas, betas = [q], [], []
    theta, residual = 0.0, float("inf")
    for k in range(1, max_iter + 1):
        w = matvec(basis[-1])
        alphas.append(float((w * basis[-1]).sum()))
        stacked = torch.stack(basis).reshape(len(basis), -1)
        flat = w.reshape(-1)
        for _ in range(2):
            flat = flat - stacked.T @ (stacked @ flat)
        beta = float(torch.linalg.vector_norm(flat))
        t = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        values, vectors = np.linalg.eigh(t)
        theta, residual = float(values[-1]), beta * abs(float(vectors[-1, -1]))
        if residual < tol * abs(theta) or beta < 1e-12 * max(abs(theta), 1e-300):
            return theta, residual, k
        betas.append(beta)
        basis.append((flat / beta).reshape(w.shape))
    log.warning("Lanczos for the largest Hessian eigenvalue: residual %.3g after %d products (tol %g)",
                residual, max_iter, tol)
    return theta, residual, max_iter


def largest_eigenvalue(model, atoms: Atoms, *, dense_limit: int = 200, tol: float = 1e-8, max_iter: int = 200,
                       device=None, seed: int = 0) -> tuple[float, str]:
    """Largest eigenvalue of the mass-weighted Hessian of the free atoms of ``atoms``
    (eV/Å^2/amu) and the method used: "dense" for up to ``dense_limit`` free atoms, else
    "lanczos" (relative accuracy ``tol``, at most ``max_iter`` Hessian-vector products, random
    start from ``seed``)."""
    indices = free_atoms(atoms)
    if len(indices) == 0:
        raise ValueError("largest_eigenvalue: every atom is fixed, nothing vibrates")
    if dense_limit < 0:
        raise ValueError(f"dense_limit must be >= 0, got {dense_limit}")
    if len(indices) <= dense_limit:
        h, _, _ = mass_weighted_hessian(model, atoms, indices, device)
        return float(np.linalg.eigvalsh(h)[-1]), "dense"
    device = model_device(model, device)
    dtype = model.dtype
    s, nbrs = model_inputs(model, atoms, device=device, dtype=dtype)
    free = torch.zeros(len(atoms), 1, dtype=dtype, device=device)
    free[torch.as_tensor(indices, device=device)] = 1.0
    w = free / torch.sqrt(torch.as_tensor(atoms.get_masses(), dtype=dtype, device=device))[:, None]
    gen = torch.Generator(device=device).manual_seed(seed)
    start = torch.randn(len(atoms), 3, generator=gen, device=device, dtype=dtype) * free
    lam, residual, steps = lanczos_largest(lambda v: w * hessian_vector_product(model, s, nbrs, w * v), start,
                                           tol=tol, max_iter=max_iter)
    log.info("Lanczos: lambda_max %.8g eV/Å^2/amu (residual %.2g) after %d Hessian-vector products",
             lam, residual, steps)
    return lam, "lanczos"


def suggest_timestep(model, atoms: Atoms, *, fraction: float = 1 / 20, relax: bool = True, fmax: float = 1e-3,
                     dense_limit: int = 200, device=None) -> TimestepSuggestion:
    """``fraction`` x the period of the highest vibration of ``atoms``, fs (module docstring).

    ``relax``: first minimise the positions (FIRE, max force < ``fmax`` eV/Å; the cell is
    kept); the Hessian is meant to be taken at a minimum. ``dense_limit``: see
    :func:`largest_eigenvalue`.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if relax:
        from atomistic.analysis.optimize import relax as fire_relax

        atoms = fire_relax(model, atoms, fmax=fmax, device=device).atoms[0]
    lam, method = largest_eigenvalue(model, atoms, dense_limit=dense_limit, device=device)
    if not lam > 0:
        raise ValueError(f"the largest Hessian eigenvalue is {lam:.3g} eV/Å^2/amu: no vibration to resolve")
    omega = float(np.sqrt(lam))  # rad per ASE time unit
    period_fs = 2 * np.pi / omega / fs
    return TimestepSuggestion(float(fraction * period_fs), float(period_fs), float(eigenvalues_to_cm([lam])[0]),
                              float(fraction), method, float(lam))
