"""From a diabatic Hamiltonian to adiabatic states (DESIGN §3, multi-state models).

A multi-state model gives, for a batch of B geometries, a symmetric diabatic matrix
``H(R)`` (B, n, n) in eV. Everything else follows from it:

    energies  E_k        eigenvalues of H, ascending                                  eV
    forces    F_k = -c_k^T (dH/dR) c_k        (Hellmann–Feynman)                       eV/Å
    couplings d_kl = c_k^T (dH/dR) c_l / (E_l - E_k),  d_lk = -d_kl,  d_kk = 0         1/Å

``dH/dR`` comes from automatic differentiation of the model, one backward pass per independent
element of ``H`` (the B geometries are independent, so one pass serves the whole batch). The sign
of each eigenvector is arbitrary: energies and forces do not depend on it, a coupling vector
flips with it, so comparisons of couplings must be phase-free.

Near a degeneracy ``d_kl`` diverges. Where ``|E_l - E_k|`` falls below ``degeneracy_eV`` a
warning is logged and the coupling is regularised, ``g / dE -> g dE / (dE^2 + delta^2)``, so it
stays finite; energies and forces never become NaN (at an exact degeneracy the eigenvectors, and
so the forces, are one valid choice within the degenerate pair).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass
class AdiabaticStates:
    """energies (B, n) eV; forces (B, n, N, 3) eV/Å; couplings (B, n, n, N, 3) 1/Å;
    vectors (B, n, n), column k the diabatic coefficients of state k; diabatic (B, n, n) eV;
    min_gap (B,) eV, the smallest gap between neighbouring states."""

    energies: torch.Tensor
    forces: torch.Tensor
    couplings: torch.Tensor
    vectors: torch.Tensor
    diabatic: torch.Tensor
    min_gap: torch.Tensor


def diabatic_gradient(h: torch.Tensor, positions: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """dH/dR (B, n, n, N, 3) eV/Å of ``h`` (B, n, n), built from ``positions`` (B, N, 3)."""
    n = h.shape[-1]
    out = h.new_zeros(h.shape[:3] + positions.shape[1:])
    for i in range(n):
        for j in range(i, n):
            (g,) = torch.autograd.grad(h[:, i, j].sum(), positions, retain_graph=True, create_graph=create_graph,
                                       allow_unused=True)
            if g is not None:
                out[:, i, j] = g
                out[:, j, i] = g
    return out


def adiabatic_states(model, positions: torch.Tensor, *, degeneracy_eV: float = 1e-6,
                     create_graph: bool = False, warn: bool = True) -> AdiabaticStates:
    """Adiabatic energies, forces and couplings of ``model`` (anything with
    ``diabatic(positions) -> (B, n, n)``) at ``positions`` (B, N, 3) Å. ``warn``: log a warning
    when geometries are near a degeneracy (a host synchronisation; hot loops pass False and
    check ``min_gap`` themselves)."""
    pos = positions.detach().requires_grad_(True)
    h = model.diabatic(pos)
    h = 0.5 * (h + h.transpose(1, 2))
    dh = diabatic_gradient(h, pos, create_graph=create_graph)
    energies, vectors = torch.linalg.eigh(h if create_graph else h.detach())
    # c_k^T dH c_l for every pair: (B, n, n, N, 3)
    g = torch.einsum("bik,bijac,bjl->bklac", vectors, dh, vectors)
    g = 0.5 * (g + g.transpose(1, 2))  # symmetric to the last bit, so d_lk = -d_kl exactly
    n = h.shape[-1]
    k = torch.arange(n, device=h.device)
    forces = -g[:, k, k]
    gap = energies[:, None, :] - energies[:, :, None]  # (B, n, n): E_l - E_k
    near = (gap.abs() < degeneracy_eV) & ~torch.eye(n, dtype=torch.bool, device=h.device)
    if warn and bool(near.any()):
        log.warning("%d geometries are within %.1e eV of a degeneracy (smallest gap %.3e eV): their "
                    "non-adiabatic couplings are regularised", int(near.any(-1).any(-1).sum()), degeneracy_eV,
                    float(gap.abs()[near].min()))
    safe = gap / (gap**2 + degeneracy_eV**2)  # = 1/gap away from degeneracies, finite at them
    couplings = g * safe[..., None, None]
    couplings = couplings * (~torch.eye(n, dtype=torch.bool, device=h.device))[None, :, :, None, None]
    min_gap = (energies[:, 1:] - energies[:, :-1]).amin(1) if n > 1 else energies.new_full((len(h),), float("inf"))
    return AdiabaticStates(energies=energies, forces=forces, couplings=couplings, vectors=vectors,
                           diabatic=h if create_graph else h.detach(), min_gap=min_gap)
