"""Analytic potential energy surfaces behind the same interface as the NN models.

Every atom is an independent particle on the surface, so one ``Atoms`` object with many atoms is
many independent replicas, and every tool (``predict``, ``hessian``, MD, NEB, rates, the ASE
calculator) runs on these surfaces unchanged: they are references with known answers. The cell
and periodicity are ignored (positions are used as given); the neighbour list is built (from the
nominal ``cutoff``) but unused. Masses come from ASE through the element ``symbol``.

DoubleWell   E = V0 (x^2 / b^2 - 1)^2 + k_perp (y^2 + z^2) / 2                   (eV, x y z in Å)
             minima (+-b, 0, 0), E = 0, Hessian diag(8 V0 / b^2, k_perp, k_perp)
             saddle (0, 0, 0),   E = V0, Hessian diag(-4 V0 / b^2, k_perp, k_perp)   (eV/Å^2)
MuellerBrown E = eps sum_i A_i exp(a_i dx_i^2 + b_i dx_i dy_i + c_i dy_i^2) + k_z z^2 / 2, with
             dx_i = x / L - x0_i, dy_i = y / L - y0_i (Müller & Brown, Theor. Chim. Acta 53, 75
             (1979)); eps = ``energy_eV``, L = ``length_A``. Three minima and two saddles,
             tabulated in surface units in :attr:`MuellerBrown.STATIONARY` (Newton-converged,
             gradient < 1e-12): the deepest minimum MA (-0.5582, 1.4417, -146.70) goes over S1
             (-0.8220, 0.6243, -40.66) to MC (-0.0500, 0.4667, -80.77), then over S2 (0.2125,
             0.2930, -72.25) to MB (0.6235, 0.0280, -108.17). With the default eps = 2 meV the
             MA -> S1 barrier is 0.212 eV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols
from torch import nn


@dataclass(frozen=True)
class StationaryPoint:
    """A stationary point of an analytic surface.

    name         e.g. "minimum+", "MA", "S1"
    kind         "minimum" or "saddle" (first order)
    position_A   (3,) Å, of one particle
    energy_eV    eV
    curvatures   (3,) eV/Å^2, eigenvalues of the Hessian d2E/dr2, ascending (one negative at a saddle)
    """

    name: str
    kind: str
    position_A: np.ndarray
    energy_eV: float
    curvatures: np.ndarray


def _positive(owner: str, **values: float) -> None:
    for name, v in values.items():
        try:
            ok = math.isfinite(float(v)) and float(v) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{owner}: {name} must be a finite number > 0, got {v!r}")


class AnalyticSurface(nn.Module):
    """Base: ``species`` ([symbol]; the symbol sets the mass through ASE), a nominal ``cutoff``
    (Å, > 0; neighbour lists are built but unused) and ``energy(positions (n, 3) Å) -> (n,) eV``."""

    def __init__(self, symbol: str = "Ar", cutoff: float = 1.0):
        super().__init__()
        if symbol not in chemical_symbols:
            raise ValueError(f"symbol must be a chemical symbol known to ASE (it sets the mass), got {symbol!r}")
        _positive(type(self).__name__, cutoff=cutoff)
        self.species = [symbol]
        self.cutoff = float(cutoff)
        self.angular_cutoff = float(cutoff)
        # a frozen parameter carries the device and dtype (tools look them up through parameters)
        self._anchor = nn.Parameter(torch.zeros((), dtype=torch.float64), requires_grad=False)

    @property
    def dtype(self) -> torch.dtype:
        return self._anchor.dtype

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        """(n, 3) Å -> (n,) eV, one independent particle per row."""
        raise NotImplementedError

    def atomic_energies(self, positions, cell_per_atom, species, neighbors, centres=slice(None)):
        """Energy of each centre particle, (n_centres,) eV; ``positions`` (n_atoms, 3) Å; the other
        arguments are accepted for the model protocol and ignored."""
        return self.energy(positions[centres])

    def stationary_points(self) -> tuple[StationaryPoint, ...]:
        """The surface's minima and first-order saddles (see the module docstring)."""
        raise NotImplementedError

    def atoms(self, positions_A) -> Atoms:
        """An ``Atoms`` of independent particles of this surface's element at ``positions_A``
        ((n, 3) or (3,) Å), no cell, no periodicity."""
        pos = np.atleast_2d(np.asarray(positions_A, dtype=float))
        if pos.ndim != 2 or pos.shape[1] != 3:
            raise ValueError(f"positions_A must have shape (n, 3) or (3,) in Å, got {np.shape(positions_A)}")
        return Atoms(symbols=[self.species[0]] * len(pos), positions=pos)


class DoubleWell(AnalyticSurface):
    """Quartic double well along x with harmonic confinement in y and z (module docstring).

    ``barrier_eV`` V0 (eV), ``half_width_A`` b (Å; minima at x = +-b), ``k_perp_eV_A2`` the
    confinement stiffness in y and z (eV/Å^2).
    """

    def __init__(self, barrier_eV: float = 0.1, half_width_A: float = 1.0, k_perp_eV_A2: float = 1.0,
                 symbol: str = "Ar", cutoff: float = 1.0):
        super().__init__(symbol, cutoff)
        _positive("DoubleWell", barrier_eV=barrier_eV, half_width_A=half_width_A, k_perp_eV_A2=k_perp_eV_A2)
        self.barrier_eV, self.half_width_A = float(barrier_eV), float(half_width_A)
        self.k_perp_eV_A2 = float(k_perp_eV_A2)

    @property
    def curvature_minimum(self) -> float:
        """d2E/dx2 at x = +-b, 8 V0 / b^2, eV/Å^2."""
        return 8.0 * self.barrier_eV / self.half_width_A**2

    @property
    def curvature_saddle(self) -> float:
        """d2E/dx2 at x = 0, -4 V0 / b^2 (negative), eV/Å^2."""
        return -4.0 * self.barrier_eV / self.half_width_A**2

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        x, y, z = positions.unbind(-1)
        u = x * x / self.half_width_A**2 - 1.0
        return self.barrier_eV * u * u + 0.5 * self.k_perp_eV_A2 * (y * y + z * z)

    def stationary_points(self) -> tuple[StationaryPoint, ...]:
        k = self.k_perp_eV_A2
        b = self.half_width_A

        def point(name, kind, x, e, kx):
            return StationaryPoint(name, kind, np.array([x, 0.0, 0.0]), e, np.sort([kx, k, k]))

        return (point("minimum-", "minimum", -b, 0.0, self.curvature_minimum),
                point("minimum+", "minimum", b, 0.0, self.curvature_minimum),
                point("saddle", "saddle", 0.0, self.barrier_eV, self.curvature_saddle))


class MuellerBrown(AnalyticSurface):
    """Müller–Brown surface in x, y plus k_z z^2 / 2 (module docstring).

    ``energy_eV`` the energy of one surface unit (eV), ``length_A`` one surface length unit (Å),
    ``k_z_eV_A2`` the confinement stiffness in z (eV/Å^2).
    """

    A = (-200.0, -100.0, -170.0, 15.0)
    a = (-1.0, -1.0, -6.5, 0.7)
    b = (0.0, 0.0, 11.0, 0.6)
    c = (-10.0, -10.0, -6.5, 0.7)
    x0 = (1.0, 0.0, -0.5, -1.0)
    y0 = (0.0, 0.5, 1.5, 1.0)
    #: (name, kind, x, y, E) in surface units
    STATIONARY = (
        ("MA", "minimum", -0.558223634633, 1.441725841805, -146.699517210),
        ("MB", "minimum", 0.623499404931, 0.028037758529, -108.166724117),
        ("MC", "minimum", -0.050010822998, 0.466694104872, -80.767818130),
        ("S1", "saddle", -0.822001558733, 0.624312802815, -40.664843509),
        ("S2", "saddle", 0.212486582001, 0.292988325107, -72.248940112),
    )

    def __init__(self, energy_eV: float = 0.002, length_A: float = 1.0, k_z_eV_A2: float = 1.0,
                 symbol: str = "Ar", cutoff: float = 1.0):
        super().__init__(symbol, cutoff)
        _positive("MuellerBrown", energy_eV=energy_eV, length_A=length_A, k_z_eV_A2=k_z_eV_A2)
        self.energy_eV, self.length_A, self.k_z_eV_A2 = float(energy_eV), float(length_A), float(k_z_eV_A2)

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        x, y, _ = (positions / self.length_A).unbind(-1)
        z = positions[..., 2]
        e = torch.zeros_like(x)
        for A, a, b, c, x0, y0 in zip(self.A, self.a, self.b, self.c, self.x0, self.y0):
            dx, dy = x - x0, y - y0
            e = e + A * torch.exp(a * dx * dx + b * dx * dy + c * dy * dy)
        return self.energy_eV * e + 0.5 * self.k_z_eV_A2 * z * z

    def _hessian_xy(self, x: float, y: float) -> np.ndarray:
        """Analytic d2E/d(x,y)^2 in surface units at (x, y) in surface units: each term
        f = A e^q has Hessian f (grad q grad q^T + hess q)."""
        h = np.zeros((2, 2))
        for A, a, b, c, x0, y0 in zip(self.A, self.a, self.b, self.c, self.x0, self.y0):
            dx, dy = x - x0, y - y0
            f = A * math.exp(a * dx * dx + b * dx * dy + c * dy * dy)
            g = np.array([2 * a * dx + b * dy, b * dx + 2 * c * dy])
            h += f * (np.outer(g, g) + np.array([[2 * a, b], [b, 2 * c]]))
        return h

    def stationary_points(self) -> tuple[StationaryPoint, ...]:
        scale = self.energy_eV / self.length_A**2
        out = []
        for name, kind, x, y, e in self.STATIONARY:
            k = np.linalg.eigvalsh(self._hessian_xy(x, y)) * scale
            out.append(StationaryPoint(name, kind, np.array([x, y, 0.0]) * self.length_A, e * self.energy_eV,
                                       np.sort(np.append(k, self.k_z_eV_A2))))
        return tuple(out)
