"""An MD time step from the Hessian (DESIGN §3).

Relax, take the largest eigenvalue ``lambda_max`` of the mass-weighted Hessian (eV/Å^2/amu),
``w_max = sqrt(lambda_max)``, ``T_min = 2 pi / w_max`` and ``dt = T_min / 20`` (the fraction is a
setting). Small systems use the dense autograd Hessian; large ones power iteration on
Hessian-vector products, which never forms the matrix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms, units

from .forces import hessian_vector_product
from .neighbors import build_neighbors
from .structure import from_atoms
from .vibrations import _CM, free_atoms, mass_weighted_hessian

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimestepSuggestion:
    """timestep_fs = fraction x period_fs; period_fs = T_min (fs) of the highest mode, whose
    frequency is max_frequency_cm (cm^-1); method: "dense" or "power iteration"."""

    timestep_fs: float
    period_fs: float
    max_frequency_cm: float
    fraction: float
    method: str


def largest_eigenvalue(model, atoms: Atoms, *, dense_limit: int = 200, tol: float = 1e-4, max_iter: int = 500,
                       device=None, seed: int = 0) -> tuple[float, str]:
    """Largest eigenvalue of the mass-weighted Hessian of the free atoms, eV/Å^2/amu."""
    indices = free_atoms(atoms)
    if len(indices) <= dense_limit:
        h, _, _ = mass_weighted_hessian(model, atoms, indices, device)
        return float(np.linalg.eigvalsh(h)[-1]), "dense"
    device = torch.device(device) if device is not None else next(model.parameters()).device
    s = from_atoms(atoms, model.species, device=device, dtype=model.dtype)
    nbrs = build_neighbors(s, model.cutoff, model.angular_cutoff)
    free = torch.zeros(len(atoms), 1, dtype=model.dtype, device=device)
    free[torch.as_tensor(indices, device=device)] = 1.0
    w = free / torch.sqrt(torch.as_tensor(atoms.get_masses(), dtype=model.dtype, device=device))[:, None]
    gen = torch.Generator(device=device).manual_seed(seed)
    v = torch.randn(len(atoms), 3, generator=gen, device=device, dtype=model.dtype) * free
    v = v / torch.linalg.vector_norm(v)
    lam = 0.0
    for k in range(max_iter):
        hv = w * hessian_vector_product(model, s, nbrs, w * v)  # M^-1/2 H M^-1/2 v
        new = float((v * hv).sum())
        v = hv / torch.linalg.vector_norm(hv)
        if k > 5 and abs(new - lam) < tol * abs(new):
            return new, "power iteration"
        lam = new
    log.warning("power iteration for the largest Hessian eigenvalue did not converge to %g in %d steps", tol, max_iter)
    return lam, "power iteration"


def suggest_timestep(model, atoms: Atoms, *, fraction: float = 1 / 20, relax: bool = True, fmax: float = 1e-3,
                     dense_limit: int = 200, device=None) -> TimestepSuggestion:
    """``fraction`` x the period of the highest vibration of ``atoms`` (relaxed first), fs."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if relax:
        from .optimize import relax as fire_relax

        atoms = fire_relax(model, atoms, fmax=fmax, device=device).atoms[0]
    lam, method = largest_eigenvalue(model, atoms, dense_limit=dense_limit, device=device)
    if not lam > 0:
        raise ValueError(f"the largest Hessian eigenvalue is {lam:.3g} eV/Å^2/amu: no vibration to resolve")
    omega = np.sqrt(lam)  # 1 / ASE time unit
    period_fs = 2 * np.pi / omega / units.fs
    return TimestepSuggestion(float(fraction * period_fs), float(period_fs), float(omega * _CM), fraction, method)
