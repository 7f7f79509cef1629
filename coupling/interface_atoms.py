"""The atomistic part of a cohesive interface: the opening measured by the atoms (DESIGN section 5).

With masking, the atoms of two bodies do not see each other, so their adhesion enters through the
interface's cohesive law over the whole interface, the part under the atoms included. There the
atoms measure the opening. A *site* is an atom of the minus body with atoms of the plus body
across the interface (within 1.15 times the shortest distance across); its opening is
``delta_i = mean(u_partners) - u_i``, which is the continuum's jump for any uniform opening or slip.

Each site stands for an area of the interface: the interface facets are sampled finely, every
sample goes to the nearest site (in the interface plane) and brings its area times ``beta`` there,
so ``sum_i a_i = int_Gamma beta dA`` (exactly, to the sampling of ``beta``) while the continuum
carries ``1 - beta`` of the same law. Energy (eV): ``E = sum_i a_i phi(delta_i . n, |delta_i,t|^2)``.
Lengths in Å, areas in Å^2, ``phi`` in eV/Å^2.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .errors import CouplingInputError

#: partners of a site: plus-body atoms within this factor times the shortest distance across
PARTNER_FACTOR = 1.15


def _plane_basis(n: np.ndarray) -> np.ndarray:
    """Two unit vectors spanning the plane normal to ``n`` (rows)."""
    helper = np.eye(3)[int(np.argmin(np.abs(n)))]
    e1 = np.cross(n, helper)
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(n, e1)])


def sample_facets(vertices: np.ndarray, spacing_A: float) -> tuple[np.ndarray, np.ndarray]:
    """Midpoint samples of plane facets (k, 3 or 4, 3) Å (triangles, or quadrilaterals in DOLFINx's
    tensor-product vertex order): points (m, 3) Å and their areas (m,) Å^2, finer than ``spacing_A``."""
    points, areas = [], []
    for v in vertices:
        size = max(np.linalg.norm(v[i] - v[j]) for i in range(len(v)) for j in range(i))
        m = max(1, int(np.ceil(size / spacing_A)))
        t = (np.arange(m) + 0.5) / m
        if len(v) == 4:
            xi, eta = (a.ravel() for a in np.meshgrid(t, t, indexing="ij"))
            shape = np.stack([(1 - xi) * (1 - eta), xi * (1 - eta), (1 - xi) * eta, xi * eta], axis=1)
            dxi = (1 - eta)[:, None] * (v[1] - v[0]) + eta[:, None] * (v[3] - v[2])
            deta = (1 - xi)[:, None] * (v[2] - v[0]) + xi[:, None] * (v[3] - v[1])
            points.append(shape @ v)
            areas.append(np.linalg.norm(np.cross(dxi, deta), axis=1) / m**2)
        else:  # a triangle cut into m^2 similar ones: their centroids, equal areas
            bary = [(i + 1 / 3, j + 1 / 3) for i in range(m) for j in range(m - i)]
            bary += [(i + 2 / 3, j + 2 / 3) for i in range(m) for j in range(m - i - 1)]
            b = np.asarray(bary) / m
            shape = np.stack([1 - b[:, 0] - b[:, 1], b[:, 0], b[:, 1]], axis=1)
            points.append(shape @ v)
            areas.append(np.full(len(b), 0.5 * np.linalg.norm(np.cross(v[1] - v[0], v[2] - v[0])) / m**2))
    if not points:
        return np.zeros((0, 3)), np.zeros(0)
    return np.concatenate(points), np.concatenate(areas)


class AtomisticInterface:
    """Sites, partners and areas of one interface under the atoms; its energy and gradient.

    ``X`` (n, 3) Å reference positions, ``body`` (n,) labels, ``minus``/``plus`` the two bodies'
    labels, ``normal`` the unit normal from minus into plus, ``facets`` (k, 3|4, 3) Å the
    interface's facets (all of them, from every rank), ``beta`` the blending weight function and
    ``law_values(dn, s)`` the law (and contact penalty) with its derivatives, per area."""

    def __init__(self, name: str, X: np.ndarray, body: np.ndarray, minus: int, plus: int, normal: np.ndarray,
                 facets: np.ndarray, beta, law_values):
        self.name, self.law_values = name, law_values
        self.normal = n = np.asarray(normal, dtype=float) / np.linalg.norm(normal)
        lower, upper = np.flatnonzero(body == minus), np.flatnonzero(body == plus)
        self.sites = np.zeros(0, dtype=np.int64)
        self.area_A2 = np.zeros(0)
        if len(lower) == 0 or len(upper) == 0:
            return  # the interface does not run through the atoms
        tree = cKDTree(X[upper])
        nearest, _ = tree.query(X[lower], k=1)
        reach = PARTNER_FACTOR * nearest.min()
        partners = tree.query_ball_point(X[lower], reach)
        keep = [k for k, p in enumerate(partners) if p]
        self.sites = lower[keep]
        self.partners = [upper[np.asarray(partners[k])] for k in keep]
        self.counts = np.array([len(p) for p in self.partners])
        self._flat = np.concatenate(self.partners)
        self._owner = np.repeat(np.arange(len(self.sites)), self.counts)
        mid = 0.5 * (X[self.sites] + np.stack([X[p].mean(axis=0) for p in self.partners]))
        basis = _plane_basis(n)
        sites_2d = mid @ basis.T
        spacing = cKDTree(sites_2d).query(sites_2d, k=2)[0][:, 1]
        if spacing.min() < 0.1 * np.median(spacing):
            raise CouplingInputError(f"interfaces.{name}: the atoms across it do not form one layer on each "
                                      "side (sites overlap in the interface plane); is the interface plane flat?")
        points, areas = sample_facets(facets, 0.25 * float(np.median(spacing)))
        weight = np.asarray(beta(points), dtype=float) * areas
        on = weight > 0
        distance, owner = cKDTree(sites_2d).query(points[on] @ basis.T, k=1)
        if len(distance) and distance.max() > 1.5 * spacing.max():
            far = points[on][int(np.argmax(distance))]
            raise CouplingInputError(f"interfaces.{name}: at {np.round(far, 3).tolist()} Å the interface lies in the "
                                      "atomistic region, but no atoms sit across it there")
        self.area_A2 = np.bincount(owner, weights=weight[on], minlength=len(self.sites))

    def opening(self, d: np.ndarray) -> np.ndarray:
        """The sites' openings (m, 3) Å for atom displacements ``d`` (n, 3) Å."""
        mean = np.zeros((len(self.sites), 3))
        np.add.at(mean, self._owner, d[self._flat])
        return mean / self.counts[:, None] - d[self.sites]

    def opening_control(self, n_atoms: int) -> np.ndarray:
        """``c`` (n_atoms, 3) with ``sum(c * d)`` the mean normal opening (Å) over the sites, weighted
        by their (blended) areas, for atom displacements ``d`` (n_atoms, 3) Å."""
        c = np.zeros((n_atoms, 3))
        if len(self.sites) == 0:
            return c
        w = self.area_A2 / self.area_A2.sum()
        np.add.at(c, self.sites, -w[:, None] * self.normal)
        np.add.at(c, self._flat, (w / self.counts)[self._owner, None] * self.normal)
        return c

    def energy_gradient(self, d: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy (eV) and its gradient (n, 3) eV/Å with respect to the displacements ``d`` (n, 3) Å."""
        grad = np.zeros_like(d)
        if len(self.sites) == 0:
            return 0.0, grad
        delta = self.opening(d)
        n = self.normal
        dn = delta @ n
        dt = delta - dn[:, None] * n
        phi, phi_n, phi_s = self.law_values(dn, np.einsum("ki,ki->k", dt, dt))[:3]
        traction = self.area_A2[:, None] * (phi_n[:, None] * n + 2.0 * phi_s[:, None] * dt)
        np.add.at(grad, self.sites, -traction)
        np.add.at(grad, self._flat, (traction / self.counts[:, None])[self._owner])
        return float(np.dot(self.area_A2, phi)), grad

    def stiffness_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(site, partner, 3x3 stiffness) of the law at zero opening, spread over the partners: a
        positive-definite stand-in for the interface's Hessian (for the preconditioner)."""
        if len(self.sites) == 0:
            return np.zeros(0, int), np.zeros(0, int), np.zeros((0, 3, 3))
        zero = np.zeros(len(self.sites))
        values = self.law_values(zero, zero)
        n = self.normal
        nn = np.outer(n, n)
        k = (np.abs(values[3])[:, None, None] * nn + 2.0 * np.abs(values[2])[:, None, None] * (np.eye(3) - nn))
        k = self.area_A2[:, None, None] * k / self.counts[:, None, None]
        return self.sites[self._owner], self._flat, k[self._owner]
