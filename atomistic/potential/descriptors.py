"""Behler–Parrinello symmetry functions, element-resolved, as dense batched tensor algebra.

Radial (G2), for centre i and neighbour element a::

    G2[i, a, k] = sum_{j in a} exp(-eta_r (r_ij - Rs_k)^2) fc(r_ij)

Angular (G5 with shifted Gaussians), for the element pair (a, b) and channel k::

    G5[i, ab, k, (zeta, lam)] = 2^(1-zeta) sum_{j != k'} (1 + lam cos theta_jik')^zeta
                                 h_k(r_ij) h_k(r_ik'),     h_k(r) = exp(-eta_a (r - Rs_k)^2) fc_a(r)

over ordered pairs with j in a and k' in b, or j in b and k' in a (so a != b counts both orders).

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
from dataclasses import dataclass

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
            raise ValueError(f"r_min ({self.r_min}) must lie in [0, cutoff) and angular_r_min "
                             f"({self.angular_r_min}) in [0, angular_cutoff)")
        for zeta, lam in self.angular_terms:
            if int(zeta) != zeta or zeta < 1 or lam not in (1, -1):
                raise ValueError(f"angular term (zeta={zeta}, lambda={lam}): zeta must be a positive integer, "
                                 "lambda +-1")
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


def _basis_weights(r_min: float, r_max: float, n: int, width: float, mid: float) -> torch.Tensor:
    """Gaussians exp(-eta (r - c_k)^2) on n centres from r_min (spacing (r_max - r_min)/n, width
    ``width`` spacings) as a linear map of [x^2, x, 1], x = r - mid: (3, n) coefficients."""
    centres = torch.linspace(r_min, r_max, n + 1, dtype=torch.float64)[:-1] - mid
    eta = 1.0 / (2.0 * (width * (r_max - r_min) / n) ** 2)
    return torch.stack([torch.full_like(centres, -eta), 2 * eta * centres, -eta * centres**2])


def gaussian_basis(r: torch.Tensor, weights: torch.Tensor, mid: float) -> torch.Tensor:
    """exp(-eta (r - c_k)^2) for every centre, (..., K): one small matmul and one exp.

    The exponent is clamped at -80 (values below 2e-35 are kept at that): far tails would
    otherwise underflow into denormal numbers, which are 20-50 times slower on CPUs.
    """
    x = r - mid
    return torch.exp((torch.stack((x * x, x, torch.ones_like(x)), dim=-1) @ weights).clamp_min(-80.0))


def _monomial_orders(max_order: int) -> list[list[tuple[int, int, int]]]:
    """Exponents (a, b, c) of x^a y^b z^c for each order n, in the order :func:`monomials` makes them.

    Order n is built from order n-1 as [x * all, y * (those without x), z * (those with z only)];
    the blocks without x (and with z only) are suffixes, so this needs slices, never gathers.
    """
    orders = [[(0, 0, 0)]]
    for _ in range(max_order):
        prev = orders[-1]
        nxt = []
        for k in range(3):
            start = next(i for i, e in enumerate(prev) if all(e[q] == 0 for q in range(k)))
            for e in prev[start:]:
                e = list(e)
                e[k] += 1
                nxt.append(tuple(e))
        orders.append(nxt)
    return orders


def _suffix_starts(order: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    return tuple(next(i for i, e in enumerate(order) if all(e[q] == 0 for q in range(k))) for k in range(3))


def monomials(u: torch.Tensor, max_order: int, starts: list[tuple[int, int, int]]) -> torch.Tensor:
    """All monomials u_x^a u_y^b u_z^c with a + b + c <= max_order, (..., n_monomials)."""
    blocks = [torch.ones_like(u[..., :1])]
    prev = blocks[0]
    for n in range(max_order):
        s0, s1, s2 = starts[n]
        prev = torch.cat([u[..., 0:1] * prev[..., s0:], u[..., 1:2] * prev[..., s1:], u[..., 2:3] * prev[..., s2:]],
                         dim=-1)
        blocks.append(prev)
    return torch.cat(blocks, dim=-1)


class BehlerParrinello(nn.Module):
    """G2 + G5 descriptor of every centre atom from a padded neighbour table."""

    def __init__(self, settings: DescriptorSettings, n_species: int):
        super().__init__()
        self.settings = settings
        self.n_species = n_species
        s = settings
        self.max_order = s.max_order
        self.radial_mid = 0.5 * (s.r_min + s.cutoff)
        self.register_buffer("radial_weights", _basis_weights(s.r_min, s.cutoff, s.n_radial, s.width,
                                                             self.radial_mid), persistent=False)
        self.angular_mid = 0.5 * (s.angular_r_min + s.angular_cutoff)
        self.register_buffer("angular_weights", _basis_weights(s.angular_r_min, s.angular_cutoff, max(s.n_angular, 1),
                                                              s.width, self.angular_mid), persistent=False)
        orders = _monomial_orders(s.max_order)
        self.monomial_starts = [_suffix_starts(o) for o in orders]
        rows = [(e, n) for n, o in enumerate(orders) for e in o]
        weights = [math.sqrt(math.factorial(n) / math.prod(math.factorial(k) for k in e)) for e, n in rows]
        self.register_buffer("mono_weights", torch.tensor(weights, dtype=torch.float64), persistent=False)
        order = torch.zeros(len(rows), s.max_order + 1, dtype=torch.float64)
        for p, (_, n) in enumerate(rows):
            order[p, n] = 1.0
        self.register_buffer("order_sum", order, persistent=False)  # (n_monomials, max_order + 1)
        # G5 = sum_n combine[n, t] * A_n for each (zeta, lambda) term t
        combine = torch.zeros(s.max_order + 1, len(s.angular_terms), dtype=torch.float64)
        for t, (zeta, lam) in enumerate(s.angular_terms):
            for n in range(zeta + 1):
                combine[n, t] = 2.0 ** (1 - zeta) * math.comb(zeta, n) * lam**n
        self.register_buffer("combine", combine, persistent=False)
        pa, pb = torch.triu_indices(n_species, n_species)
        self.register_buffer("pair_a", pa, persistent=False)
        self.register_buffer("pair_b", pb, persistent=False)
        # ordered pairs j in a, k in b plus j in b, k in a: a factor 2 for a != b
        self.register_buffer("pair_factor", torch.where(pa == pb, 1.0, 2.0).to(torch.float64), persistent=False)
        self.register_buffer("pair_same", (pa == pb).to(torch.float64), persistent=False)

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
        # padded entries sit beyond the cutoff, so fc = 0 masks them; one-hot only for E > 1
        onehot = None
        if self.n_species > 1:
            # a comparison, not one_hot: that one checks its input's range on the host
            elements = torch.arange(self.n_species, device=neighbor_species.device)
            onehot = (neighbor_species[..., None] == elements).to(vectors.dtype)
        fc = cutoff_function(r, s.cutoff, s.cutoff_function)
        basis = gaussian_basis(r, self.radial_weights, self.radial_mid)  # (n, m, K)
        weight = fc[:, None, :] if onehot is None else onehot.transpose(1, 2) * fc[:, None, :]  # (n, E, m)
        radial = torch.bmm(weight, basis).flatten(1)  # sum_j fc(r_ij) g_k(r_ij) per element
        if s.n_angular == 0:
            return radial
        if n_angular == 0:
            zeros = radial.new_zeros(radial.shape[0], self.n_features - radial.shape[1])
            return torch.cat([radial, zeros], dim=1)
        sub = None if onehot is None else onehot[:, :n_angular]
        return torch.cat([radial, self._angular(vectors[:, :n_angular], r[:, :n_angular], sub)], dim=1)

    def _angular(self, vectors, r, onehot):
        s = self.settings
        n, m = r.shape
        E = self.n_species
        fc = cutoff_function(r, s.angular_cutoff, s.cutoff_function)
        basis = gaussian_basis(r, self.angular_weights, self.angular_mid)  # (n, m, K); h = fc * basis
        u = vectors / r[..., None]
        mono = monomials(u, self.max_order, self.monomial_starts) * (self.mono_weights * fc[..., None])  # (n, m, P)
        fc2 = (fc * fc)[:, None, :]
        if onehot is None:
            moments = torch.bmm(basis.transpose(1, 2), mono)[:, None]  # (n, 1, K, P)
            prod = moments * moments
            self_term = torch.bmm(fc2, basis * basis)  # (n, 1, K): sum_j h_jk^2
        else:
            he = (onehot[..., :, None] * basis[..., None, :]).reshape(n, m, E * s.n_angular)
            moments = torch.bmm(he.transpose(1, 2), mono).reshape(n, E, s.n_angular, -1)  # (n, E, K, P)
            prod = moments[:, self.pair_a] * moments[:, self.pair_b]  # (n, pairs, K, P)
            self_term = torch.bmm(onehot.transpose(1, 2) * fc2, basis * basis)[:, self.pair_a]  # (n, pairs, K)
        a_n = prod @ self.order_sum  # (n, pairs, K, L+1): sum_{j,k} (u_j.u_k)^n h h
        a_n = a_n - (self.pair_same[:, None] * self_term)[..., None]  # drop j == k
        g5 = (a_n @ self.combine) * self.pair_factor[:, None, None]
        return g5.flatten(1)
