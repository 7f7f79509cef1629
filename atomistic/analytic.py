"""Analytic potential energy surfaces behind the same interface as the NN models.

Every atom is an independent particle on the surface, so one ``Atoms`` object with many atoms is
many independent replicas, and every tool (``predict``, ``hessian``, MD, NEB, rates, the ASE
calculator) runs on these surfaces unchanged: they are references with known answers.

DoubleWell   E = V0 (x^2 / b^2 - 1)^2 + k_perp (y^2 + z^2) / 2
             minima x = +-b (E = 0), saddle x = 0 (E = V0);
             curvatures d2E/dx2 = 8 V0 / b^2 at the minima, -4 V0 / b^2 at the saddle (eV/Å^2)
MuellerBrown the Müller–Brown surface (Müller & Brown 1979) in x, y with lengths in units of
             ``length_A`` Å and energies in units of ``energy_eV`` eV, plus k_z z^2 / 2
"""

from __future__ import annotations

import torch
from torch import nn


class AnalyticSurface(nn.Module):
    """Base: ``species`` (one symbol, which sets the mass through ASE), a nominal ``cutoff`` (Å;
    the neighbour list is built but unused) and ``energy(positions) -> (n,)`` eV."""

    def __init__(self, symbol: str = "Ar", cutoff: float = 1.0):
        super().__init__()
        self.species = [symbol]
        self.cutoff = float(cutoff)
        self.angular_cutoff = float(cutoff)
        # a frozen parameter carries the device and dtype (tools look them up through parameters)
        self._anchor = nn.Parameter(torch.zeros((), dtype=torch.float64), requires_grad=False)

    @property
    def dtype(self) -> torch.dtype:
        return self._anchor.dtype

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def atomic_energies(self, positions, cell_per_atom, species, neighbors, centres=slice(None)):
        """Energy of each centre particle, eV, (n_centres,)."""
        return self.energy(positions[centres])


class DoubleWell(AnalyticSurface):
    """Quartic double well along x with harmonic confinement in y and z (module docstring)."""

    def __init__(self, barrier_eV: float = 0.1, half_width_A: float = 1.0, k_perp_eV_A2: float = 1.0,
                 symbol: str = "Ar"):
        super().__init__(symbol)
        if not (barrier_eV > 0 and half_width_A > 0 and k_perp_eV_A2 > 0):
            raise ValueError(f"DoubleWell: barrier_eV, half_width_A and k_perp_eV_A2 must be positive, got "
                             f"{barrier_eV}, {half_width_A}, {k_perp_eV_A2}")
        self.barrier_eV, self.half_width_A, self.k_perp = float(barrier_eV), float(half_width_A), float(k_perp_eV_A2)

    @property
    def curvature_minimum(self) -> float:
        """d2E/dx2 at x = +-b, eV/Å^2."""
        return 8.0 * self.barrier_eV / self.half_width_A**2

    @property
    def curvature_saddle(self) -> float:
        """d2E/dx2 at x = 0 (negative), eV/Å^2."""
        return -4.0 * self.barrier_eV / self.half_width_A**2

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        x, y, z = positions.unbind(-1)
        u = x * x / self.half_width_A**2 - 1.0
        return self.barrier_eV * u * u + 0.5 * self.k_perp * (y * y + z * z)


class MuellerBrown(AnalyticSurface):
    """Müller–Brown: three minima, two saddles. In surface units the deepest minimum is near
    (-0.558, 1.442) at -146.70 and the saddle to the middle minimum (-0.050, 0.467, -80.77)
    near (-0.822, 0.624) at -40.66."""

    A = (-200.0, -100.0, -170.0, 15.0)
    a = (-1.0, -1.0, -6.5, 0.7)
    b = (0.0, 0.0, 11.0, 0.6)
    c = (-10.0, -10.0, -6.5, 0.7)
    x0 = (1.0, 0.0, -0.5, -1.0)
    y0 = (0.0, 0.5, 1.5, 1.0)

    def __init__(self, energy_eV: float = 0.002, length_A: float = 1.0, k_z_eV_A2: float = 1.0, symbol: str = "Ar"):
        super().__init__(symbol)
        if not (energy_eV > 0 and length_A > 0 and k_z_eV_A2 > 0):
            raise ValueError(f"MuellerBrown: energy_eV, length_A and k_z_eV_A2 must be positive, got "
                             f"{energy_eV}, {length_A}, {k_z_eV_A2}")
        self.energy_eV, self.length_A, self.k_z = float(energy_eV), float(length_A), float(k_z_eV_A2)

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        x, y, z = (positions / self.length_A).unbind(-1)
        e = torch.zeros_like(x)
        for A, a, b, c, x0, y0 in zip(self.A, self.a, self.b, self.c, self.x0, self.y0):
            dx, dy = x - x0, y - y0
            e = e + A * torch.exp(a * dx * dx + b * dx * dy + c * dy * dy)
        return self.energy_eV * e + 0.5 * self.k_z * (z * self.length_A) ** 2
