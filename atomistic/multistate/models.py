"""Analytic diabatic models: the references with known answers for multi-state code (DESIGN V12).

Each is a ``torch.nn.Module`` with ``diabatic(positions) -> H`` (B, n, n) eV for positions
(B, N, 3) Å, the interface of every multi-state model, plus ``diabatic_derivative(positions)``:
``dH/dx`` written out by hand (B, n, n) eV/Å along the model's one coordinate, so that tests
can check the autograd path against an independent derivative.

Tully's one-dimensional models (J. C. Tully, J. Chem. Phys. 93, 1061 (1990)) are defined in
atomic units (hartree, bohr, a particle of mass 2000 m_e); here they take the first particle's x
in Å and return eV, with the constants as published:

    TullySimple      (1) simple avoided crossing      A=0.01  B=1.6  C=0.005 D=1.0
    TullyDual        (2) dual avoided crossing        A=0.10  B=0.28 E0=0.05 C=0.015 D=0.06
    TullyExtended    (3) extended coupling            A=6e-4  B=0.10 C=0.90

``ConicalIntersection``: two states in (x, y) of the first particle (Å),
``H11,22 = k (x^2 + y^2) / 2 +- a x``, ``H12 = c y``: a conical intersection at the origin.
``ThreeState``: three states along x, a chain of two avoided crossings (Tully-1-like pairs).
``DiatomicCrossing``: two states of a diatomic along its bond length r (Å, eV), a Morse
"covalent" state crossing a repulsive "ionic" one near 2.5 Å (an avoided crossing like LiF's);
rotation and translation invariant, so a trained model can learn it.
"""

from __future__ import annotations

import torch
from ase.units import Bohr, Hartree
from torch import nn

#: Tully's particle mass, 2000 electron masses, in amu
TULLY_MASS_AMU = 2000.0 / 1822.888486


def _parts(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(max(x, 0), min(x, 0)) as (x +- |x|) / 2: at x = 0 each has slope 1/2, so a function
    written f(x+) + g(x-) gets the slope (f'(0) + g'(0)) / 2, the right one where f' = g'."""
    return 0.5 * (x + x.abs()), 0.5 * (x - x.abs())


class _OneDimensional(nn.Module):
    """Models of the first particle's x (Å); internally in bohr and hartree."""

    n_states = 2

    def diabatic(self, positions: torch.Tensor) -> torch.Tensor:
        x = positions[:, 0, 0] / Bohr
        return self._h(x) * Hartree

    def diabatic_derivative(self, positions: torch.Tensor) -> torch.Tensor:
        x = positions[:, 0, 0] / Bohr
        return self._dh(x) * (Hartree / Bohr)

    @staticmethod
    def _matrix(h11, h22, h12) -> torch.Tensor:
        return torch.stack([torch.stack([h11, h12], -1), torch.stack([h12, h22], -1)], -2)


class TullySimple(_OneDimensional):
    """Tully's model 1, the simple avoided crossing."""

    A, B, C, D = 0.01, 1.6, 0.005, 1.0

    def _h(self, x):
        # sign(x) (1 - exp(-B|x|)) as a sum over the positive and negative parts of x, so that
        # autograd gives the slope A B at x = 0 too, whatever subgradient |x| or clamp use there
        xp, xn = _parts(x)
        v11 = self.A * (torch.expm1(self.B * xn) - torch.expm1(-self.B * xp))
        return self._matrix(v11, -v11, self.C * torch.exp(-self.D * x**2))

    def _dh(self, x):
        d11 = self.A * self.B * torch.exp(-self.B * x.abs())
        return self._matrix(d11, -d11, -2 * self.C * self.D * x * torch.exp(-self.D * x**2))


class TullyDual(_OneDimensional):
    """Tully's model 2, the dual avoided crossing."""

    A, B, E0, C, D = 0.10, 0.28, 0.05, 0.015, 0.06

    def _h(self, x):
        return self._matrix(torch.zeros_like(x), -self.A * torch.exp(-self.B * x**2) + self.E0,
                            self.C * torch.exp(-self.D * x**2))

    def _dh(self, x):
        return self._matrix(torch.zeros_like(x), 2 * self.A * self.B * x * torch.exp(-self.B * x**2),
                            -2 * self.C * self.D * x * torch.exp(-self.D * x**2))


class TullyExtended(_OneDimensional):
    """Tully's model 3, extended coupling with reflection."""

    A, B, C = 6e-4, 0.10, 0.90

    def _h(self, x):
        xp, xn = _parts(x)  # B exp(Cx) for x < 0, B (2 - exp(-Cx)) for x > 0, slope B C at 0
        v12 = self.B * (torch.exp(self.C * xn) + 1 - torch.exp(-self.C * xp))
        return self._matrix(torch.full_like(x, self.A), torch.full_like(x, -self.A), v12)

    def _dh(self, x):
        d12 = self.B * self.C * torch.exp(-self.C * x.abs())
        return self._matrix(torch.zeros_like(x), torch.zeros_like(x), d12)


class ConicalIntersection(nn.Module):
    """Two states in the (x, y) plane of the first particle (Å), eV: a cone at the origin
    (``k`` eV/Å^2, tuning gradient ``a`` and coupling gradient ``c`` in eV/Å)."""

    n_states = 2

    def __init__(self, k: float = 1.0, a: float = 0.5, c: float = 0.3):
        super().__init__()
        self.k, self.a, self.c = k, a, c

    def diabatic(self, positions):
        x, y = positions[:, 0, 0], positions[:, 0, 1]
        base = 0.5 * self.k * (x**2 + y**2)
        return _OneDimensional._matrix(base + self.a * x, base - self.a * x, self.c * y)

    def diabatic_gradient_xy(self, positions):
        """(dH/dx, dH/dy), each (B, 2, 2) eV/Å."""
        x, y = positions[:, 0, 0], positions[:, 0, 1]
        zero = torch.zeros_like(x)
        ddx = _OneDimensional._matrix(self.k * x + self.a, self.k * x - self.a, zero)
        ddy = _OneDimensional._matrix(self.k * y, self.k * y, torch.full_like(x, self.c))
        return ddx, ddy


class ThreeState(_OneDimensional):
    """Three diabatic states along x (hartree, bohr): two Tully-1-like crossings at x = -2 and
    x = +2 bohr, coupled by Gaussians; state 1 couples to both."""

    n_states = 3
    A, B, C, D = 0.01, 1.6, 0.005, 1.0

    def _h(self, x):
        v1 = torch.tanh(self.B * (x + 2)) * self.A
        v3 = -torch.tanh(self.B * (x - 2)) * self.A
        zero = torch.zeros_like(x)
        c12 = self.C * torch.exp(-self.D * (x + 2) ** 2)
        c23 = self.C * torch.exp(-self.D * (x - 2) ** 2)
        c13 = 0.2 * self.C * torch.exp(-self.D * x**2)
        return torch.stack([torch.stack([v1, c12, c13], -1), torch.stack([c12, zero, c23], -1),
                            torch.stack([c13, c23, v3], -1)], -2)

    def _dh(self, x):
        d1 = self.A * self.B / torch.cosh(self.B * (x + 2)) ** 2
        d3 = -self.A * self.B / torch.cosh(self.B * (x - 2)) ** 2
        zero = torch.zeros_like(x)
        d12 = -2 * self.C * self.D * (x + 2) * torch.exp(-self.D * (x + 2) ** 2)
        d23 = -2 * self.C * self.D * (x - 2) * torch.exp(-self.D * (x - 2) ** 2)
        d13 = -0.4 * self.C * self.D * x * torch.exp(-self.D * x**2)
        return torch.stack([torch.stack([d1, d12, d13], -1), torch.stack([d12, zero, d23], -1),
                            torch.stack([d13, d23, d3], -1)], -2)


class DiatomicCrossing(nn.Module):
    """Two states of atoms 0 and 1 along r = |x_1 - x_0| (Å), eV (module docstring):
    ``H11 = D (1 - exp(-a (r - re)))^2``, ``H22 = E_inf + B exp(-b (r - re))``,
    ``H12 = C exp(-((r - rc) / w)^2)``."""

    n_states = 2
    D, a, re, E_inf, B, b, C, rc, w = 1.0, 1.5, 1.6, 0.3, 2.0, 1.2, 0.1, 2.6, 0.8

    def _bond(self, positions):
        return torch.linalg.vector_norm(positions[:, 1] - positions[:, 0], dim=-1)

    def diabatic(self, positions):
        r = self._bond(positions)
        h11 = self.D * (1 - torch.exp(-self.a * (r - self.re))) ** 2
        h22 = self.E_inf + self.B * torch.exp(-self.b * (r - self.re))
        h12 = self.C * torch.exp(-(((r - self.rc) / self.w) ** 2))
        return _OneDimensional._matrix(h11, h22, h12)

    def diabatic_derivative_r(self, positions):
        """dH/dr (B, 2, 2) eV/Å."""
        r = self._bond(positions)
        e = torch.exp(-self.a * (r - self.re))
        d11 = 2 * self.D * (1 - e) * self.a * e
        d22 = -self.b * self.B * torch.exp(-self.b * (r - self.re))
        d12 = -2 * (r - self.rc) / self.w**2 * self.C * torch.exp(-(((r - self.rc) / self.w) ** 2))
        return _OneDimensional._matrix(d11, d22, d12)
