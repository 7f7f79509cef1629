"""A sparse stand-in for the atoms' Hessian, to precondition the coupled Newton solves.

The exponential preconditioner of Packwood et al. (J. Chem. Phys. 144, 164109, 2016), as in ASE's
``Exp``: every pair within ``cutoff_factor * r_nn`` is a spring of stiffness
``mu * exp(-A (r / r_nn - 1))`` along all three directions; ``mu`` (eV/Å^2) is fitted to the model
(a Rayleigh quotient of the true Hessian on a smooth displacement). In a coupled problem a pair
is weighted by the mean ``beta`` of its atoms, as the blended energy is. Only the preconditioner
uses it: the Newton operator is the exact derivative of the coupled residual.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

A_DEFAULT = 3.0


def exp_pairs(X: np.ndarray, body: np.ndarray | None, cutoff_factor: float = 1.5):
    """Pairs (i < j) of the same body within ``cutoff_factor`` times the nearest-neighbour distance,
    their distances (Å) and that nearest-neighbour distance."""
    tree = cKDTree(X)
    r_nn = float(tree.query(X, k=2)[0][:, 1].min())
    pairs = tree.query_pairs(cutoff_factor * r_nn, output_type="ndarray")
    if body is not None:
        pairs = pairs[body[pairs[:, 0]] == body[pairs[:, 1]]]
    r = np.linalg.norm(X[pairs[:, 1]] - X[pairs[:, 0]], axis=1)
    return pairs, r, r_nn


def spring_matrix(n: int, i: np.ndarray, j: np.ndarray, k: np.ndarray) -> sp.csr_matrix:
    """(3n, 3n) sum over springs of ``(e_i - e_j)^T k (e_i - e_j)``, with ``k`` (m,) scalars or (m, 3, 3)."""
    if k.ndim == 1:
        k = k[:, None, None] * np.eye(3)
    rows, cols, vals = [], [], []
    for a, b, sign in ((i, i, 1.0), (j, j, 1.0), (i, j, -1.0), (j, i, -1.0)):
        r = (3 * a[:, None, None] + np.arange(3)[None, :, None]).repeat(3, axis=2)
        c = (3 * b[:, None, None] + np.arange(3)[None, None, :]).repeat(3, axis=1)
        rows.append(r.ravel())
        cols.append(c.ravel())
        vals.append(sign * k.ravel())
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(3 * n, 3 * n))


def exp_preconditioner(X: np.ndarray, body: np.ndarray | None, weight: np.ndarray, mu: float,
                       A: float = A_DEFAULT, cutoff_factor: float = 1.5) -> sp.csr_matrix:
    """The (3n, 3n) matrix for atoms at ``X`` (n, 3) Å with per-atom ``weight`` (n,), eV/Å^2."""
    pairs, r, r_nn = exp_pairs(X, body, cutoff_factor)
    k = mu * np.exp(-A * (r / r_nn - 1.0)) * 0.5 * (weight[pairs[:, 0]] + weight[pairs[:, 1]])
    return spring_matrix(len(X), pairs[:, 0], pairs[:, 1], k)
