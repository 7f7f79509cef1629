"""Elastic materials from numbers an NN-PES computed (plain numpy; no DOLFINx here).

Voigt order xx, yy, zz, yz, xz, xy with engineering shear strains, constants in GPa. An
:class:`ElasticTensor` holds the second-order constants ``C`` (6, 6) and, optionally, the
third-order constants ``C3`` (6, 6, 6), both with respect to the Lagrangian strain of the crystal
(Brugger constants; what ``atomistic.elastic_constants`` returns). ``rotated`` turns them from the
crystal axes into the body's axes. The two laws are

- :class:`LinearElastic`: ``W = 1/2 e.C.e`` with the small strain ``e`` (linear elasticity);
- :class:`CauchyBorn`: ``W(E) = 1/2 C E E + 1/6 C3 E E E`` with the Green-Lagrange strain ``E`` of
  ``F = I + grad u``: the Cauchy-Born strain energy of the crystal to third order (St Venant-Kirchhoff
  when ``C3`` is absent), for finite strain.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from .errors import ContinuumInputError

VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
_VOIGT_INDEX = np.array([[0, 5, 4], [5, 1, 3], [4, 3, 2]])


def full_tensor(voigt: np.ndarray) -> np.ndarray:
    """A Voigt array of order 2 (6, 6) or 3 (6, 6, 6) as the full tensor (3,)*4 or (3,)*6."""
    voigt = np.asarray(voigt, dtype=float)
    order = voigt.ndim
    grids = np.meshgrid(*([np.arange(3)] * (2 * order)), indexing="ij")
    index = tuple(_VOIGT_INDEX[grids[2 * k], grids[2 * k + 1]] for k in range(order))
    return voigt[index]


def voigt_tensor(full: np.ndarray) -> np.ndarray:
    """The inverse of :func:`full_tensor`."""
    order = full.ndim // 2
    out = np.empty((6,) * order)
    for index in np.ndindex(*(6,) * order):
        out[index] = full[sum((VOIGT_PAIRS[i] for i in index), ())]
    return out


def orientation_matrix(x: tuple[float, float, float], y: tuple[float, float, float],
                       z: tuple[float, float, float] | None = None) -> np.ndarray:
    """Rows: the body's x, y, z axes in crystal coordinates (e.g. Miller directions), normalised.

    ``z`` defaults to ``x`` cross ``y``. Raises :class:`ContinuumInputError` unless the axes are
    orthogonal and right-handed."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    z = np.cross(x, y) if z is None else np.asarray(z, float)
    rows = []
    for name, v in (("x", x), ("y", y), ("z", z)):
        if v.shape != (3,) or not np.linalg.norm(v) > 0:
            raise ContinuumInputError(f"orientation.{name} = {v.tolist()}: expected a non-zero 3-vector")
        rows.append(v / np.linalg.norm(v))
    r = np.array(rows)
    if np.abs(r @ r.T - np.eye(3)).max() > 1e-8:
        raise ContinuumInputError(f"orientation {[x.tolist(), y.tolist(), z.tolist()]}: the axes are not orthogonal")
    if np.linalg.det(r) < 0:
        raise ContinuumInputError(f"orientation {[x.tolist(), y.tolist(), z.tolist()]}: the axes are left-handed")
    return r


def cubic_third_order(C111: float, C112: float, C123: float, C144: float, C155: float, C456: float) -> np.ndarray:
    """The (6, 6, 6) Voigt third-order constants (GPa) of a cubic crystal in its cube axes."""
    groups = ((C111, [(0, 0, 0), (1, 1, 1), (2, 2, 2)]),
              (C112, [(0, 0, 1), (0, 0, 2), (0, 1, 1), (0, 2, 2), (1, 1, 2), (1, 2, 2)]),
              (C123, [(0, 1, 2)]), (C144, [(0, 3, 3), (1, 4, 4), (2, 5, 5)]),
              (C155, [(0, 4, 4), (0, 5, 5), (1, 3, 3), (1, 5, 5), (2, 3, 3), (2, 4, 4)]), (C456, [(3, 4, 5)]))
    c3 = np.zeros((6, 6, 6))
    for value, entries in groups:
        for entry in entries:
            for perm in permutations(entry):
                c3[perm] = value
    return c3


@dataclass(frozen=True)
class ElasticTensor:
    """Second- (and optionally third-) order elastic constants in GPa, Voigt notation.

    Checked on construction: ``C`` symmetric and positive definite (a stable crystal), ``C3`` fully
    symmetric. ``name`` labels errors (the material's name in a case file)."""

    C: np.ndarray  # (6, 6) GPa
    C3: np.ndarray | None = None  # (6, 6, 6) GPa
    name: str = "material"

    def __post_init__(self):
        c = np.array(self.C, dtype=float)
        if c.shape != (6, 6) or not np.all(np.isfinite(c)):
            raise ContinuumInputError(f"{self.name}.C: expected a finite 6x6 Voigt matrix in GPa, got shape {c.shape}")
        scale = np.abs(c).max()
        if np.abs(c - c.T).max() > 1e-6 * scale:
            raise ContinuumInputError(f"{self.name}.C is not symmetric (largest |C - C^T| = "
                                      f"{np.abs(c - c.T).max():.3g} GPa)")
        c = 0.5 * (c + c.T)
        eig = np.linalg.eigvalsh(c)
        if eig.min() <= 1e-9 * scale:
            raise ContinuumInputError(
                f"{self.name}.C is not positive definite: eigenvalues {np.round(eig, 3).tolist()} GPa; "
                "expected all > 0 (a mechanically stable crystal)")
        object.__setattr__(self, "C", c)
        if self.C3 is not None:
            c3 = np.array(self.C3, dtype=float)
            if c3.shape != (6, 6, 6) or not np.all(np.isfinite(c3)):
                raise ContinuumInputError(f"{self.name}.C3: expected a finite 6x6x6 array in GPa, got {c3.shape}")
            asym = max(np.abs(c3 - c3.transpose(p)).max() for p in permutations(range(3)))
            if asym > 1e-6 * max(np.abs(c3).max(), 1.0):
                raise ContinuumInputError(f"{self.name}.C3 is not symmetric in its three indices "
                                          f"(largest difference {asym:.3g} GPa)")
            object.__setattr__(self, "C3", c3)

    @classmethod
    def cubic(cls, C11: float, C12: float, C44: float, name: str = "material") -> ElasticTensor:
        """A cubic crystal in its cube axes (GPa)."""
        c = np.zeros((6, 6))
        c[:3, :3] = C12
        c[range(3), range(3)] = C11
        c[range(3, 6), range(3, 6)] = C44
        return cls(c, name=name)

    @classmethod
    def isotropic(cls, youngs_GPa: float, poisson: float, name: str = "material") -> ElasticTensor:
        """An isotropic solid from Young's modulus (GPa) and Poisson's ratio (for tests and checks)."""
        lam = youngs_GPa * poisson / ((1 + poisson) * (1 - 2 * poisson))
        mu = youngs_GPa / (2 * (1 + poisson))
        return cls.cubic(lam + 2 * mu, lam, mu, name=name)

    def rotated(self, orientation: np.ndarray) -> ElasticTensor:
        """The constants in the body's axes; ``orientation`` from :func:`orientation_matrix`."""
        r = np.asarray(orientation, dtype=float)
        c = voigt_tensor(np.einsum("ia,jb,kc,ld,abcd->ijkl", r, r, r, r, full_tensor(self.C)))
        c3 = None
        if self.C3 is not None:
            c3 = voigt_tensor(np.einsum("ia,jb,kc,ld,me,nf,abcdef->ijklmn", r, r, r, r, r, r, full_tensor(self.C3)))
        return ElasticTensor(c, c3, name=self.name)


@dataclass(frozen=True)
class LinearElastic:
    """Small-strain linear elasticity, ``W = 1/2 e.C.e`` (GPa)."""

    tensor: ElasticTensor


@dataclass(frozen=True)
class CauchyBorn:
    """Finite-strain Cauchy-Born energy ``W(E) = 1/2 C E E + 1/6 C3 E E E`` (GPa), E Green-Lagrange."""

    tensor: ElasticTensor


Material = LinearElastic | CauchyBorn
