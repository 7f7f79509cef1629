"""Behler–Parrinello symmetry functions, element-resolved, as dense batched tensor algebra.

Radial (G2), for centre i and neighbour element a::

    G2[i, a, k] = sum_{j in a} exp(-eta_r (r_ij - Rs_k)^2) fc(r_ij)

Angular (G5 with shifted Gaussians), for the element pair (a, b) and channel k::

    G5[i, ab, k, (zeta, lam)] = 2^(1-zeta) sum_{j in a, k' in b, j != k'} (1 + lam cos theta_jik')^zeta
                                 h_k(r_ij) h_k(r_ik'),     h_k(r) = exp(-eta_a (r - Rs_k)^2) fc_a(r)

Because G5 is separable in r_ij and r_ik, the triple sum needs no triplet list. With the unit
vectors ``u`` and the multinomial expansion ``(u_j . u_k)^n = sum_|alpha|=n (n!/alpha!) u_j^alpha
u_k^alpha``, each angular moment ``T[a, k, alpha] = sum_{j in a} h_k(r_ij) sqrt(n!/alpha!) u_j^alpha``
is one batched matrix product over neighbours, and

    sum_{j != k'} (u_j . u_k')^n h h = <T_a, T_b>_n - delta_ab sum_j h_k(r_ij)^2

so the cost is linear, not quadratic, in the number of neighbours; the result is exactly the
Behler–Parrinello G5 (integer zeta, lambda = +-1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class DescriptorSettings:
    """Behler–Parrinello descriptor settings (lengths in Å)."""

    cutoff: float = 5.0  #: radial cutoff r_c, Å
    n_radial: int = 16  #: radial Gaussians per neighbour element
    r_min: float = 1.0  #: first Gaussian centre, Å
    angular_cutoff: float = 4.0  #: angular cutoff, Å (<= cutoff)
    n_angular: int = 8  #: angular radial channels per element pair
    angular_r_min: float = 1.0  #: first angular Gaussian centre, Å
    #: (zeta, lambda) pairs; zeta a positive integer, lambda +1 or -1
    angular_terms: tuple[tuple[int, int], ...] = ((1, 1), (1, -1), (2, 1), (4, 1), (4, -1))
    cutoff_function: str = "polynomial"  #: "polynomial" (C2 at r_c) or "cosine" (Behler)
    width: float = 1.0  #: Gaussian width in units of the centre spacing

    def __post_init__(self):
        if not self.cutoff > 0:
            raise ValueError(f"cutoff must be positive, got {self.cutoff}")
        if not 0 < self.angular_cutoff <= self.cutoff:
            raise ValueError(f"angular_cutoff must be in (0, cutoff={self.cutoff}], got {self.angular_cutoff}")
        if self.n_radial < 1 or self.n_angular < 0:
            raise ValueError("n_radial must be >= 1 and n_angular >= 0")
        if not (0 <= self.r_min < self.cutoff and 0 <= self.angular_r_min < self.angular_cutoff):
            raise ValueError("r_min must lie in [0, cutoff)")
        for zeta, lam in self.angular_terms:
            if int(zeta) != zeta or zeta < 1 or lam not in (1, -1):
                raise ValueError(f"angular term (zeta={zeta}, lambda={lam}): zeta must be a positive integer, lambda +-1")
        if self.cutoff_function not in ("polynomial", "cosine"):
            raise ValueError(f"cutoff_function must be 'polynomial' or 'cosine', got {self.cutoff_function!r}")
        if not self.width > 0:
            raise ValueError(f"width must be positive, got {self.width}")

    @property
    def max_order(self) -> int:
        return max((z for z, _ in self.angular_terms), default=0)


def cutoff_function(r: torch.Tensor, rc: float, kind: str) -> torch.Tensor:
    """Smooth cutoff: 1 at r = 0, 0 for r >= rc. "polynomial": (1 - x^2)^3, zero value, slope
    and curvature at rc; "cosine": Behler's 0.5 (cos(pi x) + 1)."""
    x = torch.clamp(r / rc, max=1.0)
    if kind == "cosine":
        return 0.5 * (torch.cos(math.pi * x) + 1.0)
    return (1.0 - x * x) ** 3


def _gaussian_grid(r_min: float, r_max: float, n: int, width: float) -> tuple[torch.Tensor, float]:
    centres = torch.linspace(r_min, r_max, n + 1, dtype=torch.float64)[:-1]
    spacing = (r_max - r_min) / n
    eta = 1.0 / (2.0 * (width * spacing) ** 2)
    return centres, eta


def _multi_indices(max_order: int):
    """Multi-indices alpha with |alpha| <= max_order, their orders and sqrt(n!/alpha!) weights."""
    rows = []
    for n in range(max_order + 1):
        for a in range(n, -1, -1):
            for b in range(n - a, -1, -1):
                c = n - a - b
                w = math.sqrt(math.factorial(n) / (math.factorial(a) * math.factorial(b) * math.factorial(c)))
                rows.append((a, b, c, n, w))
    return rows


class BehlerParrinello(nn.Module):
    """G2 + G5 descriptor of every centre atom from a padded neighbour table."""

    def __init__(self, settings: DescriptorSettings, n_species: int):
        super().__init__()
        self.settings = settings
        self.n_species = n_species
        s = settings
        rs, eta = _gaussian_grid(s.r_min, s.cutoff, s.n_radial, s.width)
        self.register_buffer("radial_centres", rs)
        self.eta_r = eta
        ra, eta_a = _gaussian_grid(s.angular_r_min, s.angular_cutoff, max(s.n_angular, 1), s.width)
        self.register_buffer("angular_centres", ra)
        self.eta_a = eta_a
        rows = _multi_indices(s.max_order)
        self.register_buffer("powers", torch.tensor([r[:3] for r in rows], dtype=torch.long))
        self.register_buffer("mono_weights", torch.tensor([r[4] for r in rows], dtype=torch.float64))
        order = torch.zeros(len(rows), s.max_order + 1, dtype=torch.float64)
        for p, r in enumerate(rows):
            order[p, r[3]] = 1.0
        self.register_buffer("order_sum", order)  # (n_monomials, max_order + 1)
        # G5 = sum_n combine[n, t] * A_n for each (zeta, lambda) term t
        combine = torch.zeros(s.max_order + 1, len(s.angular_terms), dtype=torch.float64)
        for t, (zeta, lam) in enumerate(s.angular_terms):
            for n in range(zeta + 1):
                combine[n, t] = 2.0 ** (1 - zeta) * math.comb(zeta, n) * lam**n
        self.register_buffer("combine", combine)
        pa, pb = torch.triu_indices(n_species, n_species)
        self.register_buffer("pair_a", pa)
        self.register_buffer("pair_b", pb)
        # ordered pairs j in a, k in b plus j in b, k in a: a factor 2 for a != b
        self.register_buffer("pair_factor", torch.where(pa == pb, 1.0, 2.0).to(torch.float64))
        self.register_buffer("pair_same", (pa == pb).to(torch.float64))

    @property
    def n_features(self) -> int:
        s = self.settings
        n_pairs = self.n_species * (self.n_species + 1) // 2
        return self.n_species * s.n_radial + n_pairs * s.n_angular * len(s.angular_terms)

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor, neighbor_species: torch.Tensor,
                n_angular: int) -> torch.Tensor:
        """Descriptors (n_centres, n_features) from neighbour vectors (n_centres, n_max, 3) Å.

        ``mask`` (n_centres, n_max) marks real neighbours; ``neighbor_species`` (n_centres,
        n_max) their species index; columns ``[0, n_angular)`` hold all angular neighbours.
        """
        s = self.settings
        far = torch.zeros((), dtype=vectors.dtype, device=vectors.device) + 2.0 * s.cutoff
        # padded entries become a far-away neighbour: zero weight, finite gradients
        vectors = torch.where(mask[..., None], vectors, far)
        r = torch.linalg.vector_norm(vectors, dim=-1)  # (n, m)
        onehot = nn.functional.one_hot(neighbor_species, self.n_species).to(vectors.dtype)
        onehot = onehot * mask[..., None]  # (n, m, E)
        fc = cutoff_function(r, s.cutoff, s.cutoff_function)
        g = torch.exp(-self.eta_r * (r[..., None] - self.radial_centres.to(r.dtype)) ** 2) * fc[..., None]
        radial = torch.einsum("nme,nmk->nek", onehot, g).flatten(1)
        if s.n_angular == 0 or n_angular == 0:
            if s.n_angular == 0:
                return radial
            zeros = radial.new_zeros(radial.shape[0], self.n_features - radial.shape[1])
            return torch.cat([radial, zeros], dim=1)
        return torch.cat([radial, self._angular(vectors[:, :n_angular], r[:, :n_angular],
                                                  onehot[:, :n_angular])], dim=1)

    def _angular(self, vectors, r, onehot):
        s = self.settings
        dtype = r.dtype
        n, m, E = onehot.shape
        fc = cutoff_function(r, s.angular_cutoff, s.cutoff_function)
        h = torch.exp(-self.eta_a * (r[..., None] - self.angular_centres.to(dtype)) ** 2) * fc[..., None]
        u = vectors / r[..., None]  # (n, m, 3)
        # monomials sqrt(n!/alpha!) u^alpha, (n, m, P)
        pows = torch.stack([torch.ones_like(u)] + [u**k for k in range(1, s.max_order + 1)], dim=-1)
        pw = self.powers
        mono = pows[..., 0, pw[:, 0]] * pows[..., 1, pw[:, 1]] * pows[..., 2, pw[:, 2]]
        mono = mono * self.mono_weights.to(dtype)
        he = (onehot[..., :, None] * h[..., None, :]).reshape(n, m, E * s.n_angular)
        moments = torch.bmm(he.transpose(1, 2), mono).reshape(n, E, s.n_angular, -1)  # (n, E, K, P)
        prod = moments[:, self.pair_a] * moments[:, self.pair_b]  # (n, pairs, K, P)
        a_n = prod @ self.order_sum.to(dtype)  # (n, pairs, K, L+1)
        self_term = torch.einsum("nme,nmk->nek", onehot, h * h)[:, self.pair_a]  # (n, pairs, K)
        a_n = a_n - (self.pair_same.to(dtype)[:, None] * self_term)[..., None]
        g5 = (a_n @ self.combine.to(dtype)) * self.pair_factor.to(dtype)[:, None, None]
        return g5.flatten(1)
