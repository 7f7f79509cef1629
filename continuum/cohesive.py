"""Cohesive laws ``phi(opening)`` of an interface, energy per area (eV/Å^2), in plain numpy.

A law is a function of the normal opening ``dn`` (Å, positive = apart) and of the squared
tangential opening ``s = |dt|^2`` (Å^2). ``evaluate`` returns ``phi`` and its first and second
derivatives in ``(dn, s)``; the interface turns them into the traction ``dphi/d(opening)`` and its
tangent, so every traction is the exact derivative of the energy. Using ``s`` rather than ``|dt|``
keeps the traction smooth at zero slip.

- :class:`UBER`: the universal binding-energy relation (Rose, Ferrante & Smith 1981),
  ``phi = W (1 - (1 + dn/l) exp(-dn/l))``, with the Xu-Needleman (1993, ``q = 1``) shear factor
  ``exp(-s/lt^2)`` when a tangential length ``lt`` is given. Peak traction ``W / (e l)``.
- :class:`TabulatedLaw`: a normal law from a table (e.g. rigid separation of two half-crystals),
  a C2 cubic spline through the energies with zero slope at both ends; beyond the table the
  interface is fully separated, under compression it continues as ``1/2 k0 dn^2`` with the
  table's initial curvature ``k0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
from scipy.interpolate import CubicSpline

from .errors import ContinuumInputError


class LawValues(NamedTuple):
    """``phi`` (eV/Å^2) and its derivatives in ``dn`` (Å) and ``s = |dt|^2`` (Å^2), arrays."""

    phi: np.ndarray
    phi_n: np.ndarray
    phi_s: np.ndarray
    phi_nn: np.ndarray
    phi_ns: np.ndarray
    phi_ss: np.ndarray


class CohesiveLaw(Protocol):
    @property
    def work_of_separation_eV_A2(self) -> float:
        """``phi`` at full separation (eV/Å^2)."""

    def evaluate(self, dn: np.ndarray, s: np.ndarray) -> LawValues: ...


@dataclass(frozen=True)
class UBER:
    """UBER normal law (``W_sep_eV_A2``, ``length_A``), optional Xu-Needleman shear length (Å)."""

    W_sep_eV_A2: float
    length_A: float
    tangential_length_A: float | None = None

    def __post_init__(self):
        for name in ("W_sep_eV_A2", "length_A"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ContinuumInputError(f"cohesive law: {name} = {value!r}, expected a positive number")
        t = self.tangential_length_A
        if t is not None and not (np.isfinite(t) and t > 0):
            raise ContinuumInputError(f"cohesive law: tangential_length_A = {t!r}, expected a positive number or none")

    @property
    def work_of_separation_eV_A2(self) -> float:
        return self.W_sep_eV_A2

    @property
    def peak_traction_eV_A3(self) -> float:
        return self.W_sep_eV_A2 / (np.e * self.length_A)

    def evaluate(self, dn, s) -> LawValues:
        w, length = self.W_sep_eV_A2, self.length_A
        x = np.asarray(dn, dtype=float) / length
        s = np.asarray(s, dtype=float)
        lt2 = np.inf if self.tangential_length_A is None else self.tangential_length_A**2
        g = np.exp(-s / lt2)
        ex = np.exp(-x) * g
        a = (1.0 + x) * ex  # phi = w (1 - a)
        phi_n = w / length * x * ex
        phi_s = w * a / lt2
        return LawValues(w * (1.0 - a), phi_n, phi_s, w / length**2 * (1.0 - x) * ex, -phi_n / lt2, -phi_s / lt2)


@dataclass(frozen=True)
class TabulatedLaw:
    """Normal law through a table: openings (Å, increasing, from 0) and energies (eV/Å^2, from 0)."""

    openings_A: tuple[float, ...]
    energies_eV_A2: tuple[float, ...]

    def __post_init__(self):
        d = np.asarray(self.openings_A, dtype=float)
        e = np.asarray(self.energies_eV_A2, dtype=float)
        if d.ndim != 1 or d.shape != e.shape or d.size < 4:
            raise ContinuumInputError(f"tabulated cohesive law: expected two equal-length lists of at least 4 numbers, "
                                      f"got {d.size} openings and {e.size} energies")
        if not (np.all(np.isfinite(d)) and np.all(np.isfinite(e))):
            raise ContinuumInputError("tabulated cohesive law: the table has non-finite values")
        if abs(d[0]) > 1e-12 or np.any(np.diff(d) <= 0):
            raise ContinuumInputError("tabulated cohesive law: openings must start at 0 and increase, "
                                      f"got {d[:3].tolist()}...")
        if abs(e[0]) > 1e-9 * max(1.0, np.abs(e).max()):
            raise ContinuumInputError(f"tabulated cohesive law: the energy at zero opening is {e[0]!r}, expected 0")
        spline = CubicSpline(d, e, bc_type=((1, 0.0), (1, 0.0)))
        k0 = float(spline(0.0, 2))
        if not k0 > 0:
            raise ContinuumInputError(f"tabulated cohesive law: curvature at zero opening is {k0:.3g} eV/Å^4, "
                                      "expected > 0 (a bound interface)")
        object.__setattr__(self, "_spline", spline)
        object.__setattr__(self, "_k0", k0)

    @property
    def work_of_separation_eV_A2(self) -> float:
        return float(self.energies_eV_A2[-1])

    def evaluate(self, dn, s) -> LawValues:
        dn = np.asarray(dn, dtype=float)
        end = self.openings_A[-1]
        x = np.clip(dn, 0.0, end)
        inside = (dn >= 0) & (dn <= end)
        compressed = dn < 0
        phi = np.where(compressed, 0.5 * self._k0 * dn**2, self._spline(x))
        phi_n = np.where(compressed, self._k0 * dn, np.where(inside, self._spline(x, 1), 0.0))
        phi_nn = np.where(compressed, self._k0, np.where(inside, self._spline(x, 2), 0.0))
        zero = np.zeros_like(phi)
        return LawValues(phi, phi_n, zero, phi_nn, zero, zero)


def uber_table(law: UBER, max_opening_A: float, points: int = 60) -> TabulatedLaw:
    """Sample an UBER law's normal energy into a table (for tests and plots)."""
    d = np.linspace(0.0, max_opening_A, points)
    return TabulatedLaw(tuple(d), tuple(law.evaluate(d, np.zeros_like(d)).phi))
