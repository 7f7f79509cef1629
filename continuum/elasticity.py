"""Strain energy densities and stresses as small pure UFL functions.

Constants enter in eV/Å^3 (GPa times :data:`continuum.units.GPa`), displacements in Å, so energy
densities are in eV/Å^3 and integrals in eV.
"""

from __future__ import annotations

import numpy as np

from .backend import load_dolfinx

load_dolfinx()
import ufl  # noqa: E402
from dolfinx import default_scalar_type, fem  # noqa: E402

from .materials import CauchyBorn, LinearElastic, Material  # noqa: E402
from .units import GPa  # noqa: E402


def voigt_strain(E):
    """Voigt vector (xx, yy, zz, 2yz, 2xz, 2xy) of a symmetric strain tensor."""
    return ufl.as_vector([E[0, 0], E[1, 1], E[2, 2], 2 * E[1, 2], 2 * E[0, 2], 2 * E[0, 1]])


def tensor_from_voigt_stress(s):
    """Symmetric tensor from a Voigt stress vector (no factors on the shear entries)."""
    return ufl.as_matrix([[s[0], s[5], s[4]], [s[5], s[1], s[3]], [s[4], s[3], s[2]]])


class Constitutive:
    """A material bound to a mesh: its constants as DOLFINx constants (eV/Å^3)."""

    def __init__(self, mesh, material: Material):
        self.material = material
        self.C = fem.Constant(mesh, np.asarray(material.tensor.C * GPa, dtype=default_scalar_type))
        c3 = material.tensor.C3 if isinstance(material, CauchyBorn) else None
        self.C3 = None if c3 is None else fem.Constant(mesh, np.asarray(c3 * GPa, dtype=default_scalar_type))

    def strain(self, u):
        """Small strain (linear law) or Green-Lagrange strain (Cauchy-Born)."""
        if isinstance(self.material, LinearElastic):
            return ufl.sym(ufl.grad(u))
        F = ufl.Identity(3) + ufl.grad(u)
        return 0.5 * (F.T * F - ufl.Identity(3))

    def _third(self, e):
        """The matrix ``M(e) = C3 . e`` (eV/Å^3), so that ``W3 = e.M(e).e / 6`` and ``dW3/de = M(e).e / 2``."""
        return sum(self.C3[:, :, k] * e[k] for k in range(6))

    def voigt_stress(self, e):
        """dW/de in Voigt form (second Piola-Kirchhoff for Cauchy-Born), eV/Å^3."""
        s = ufl.dot(self.C, e)
        if self.C3 is not None:
            s = s + 0.5 * ufl.dot(self._third(e), e)
        return s

    def energy_density(self, u):
        """W (eV/Å^3) per reference volume."""
        e = voigt_strain(self.strain(u))
        w = 0.5 * ufl.dot(e, ufl.dot(self.C, e))
        if self.C3 is not None:
            w = w + ufl.dot(e, ufl.dot(self._third(e), e)) / 6.0
        return w

    def virtual_work(self, u, v):
        """dW/du in the direction v: ``S . de(u; v)``, the exact first variation of :meth:`energy_density`.

        Written with the stress rather than by differentiating W, because the form compiler handles
        the third-order term far faster that way (seconds instead of minutes)."""
        e = voigt_strain(self.strain(u))
        return ufl.dot(self.voigt_stress(e), ufl.derivative(e, u, v))

    def cauchy_stress(self, u):
        """Cauchy stress (eV/Å^3): C:e for the linear law, F S F^T / J for Cauchy-Born."""
        e = voigt_strain(self.strain(u))
        S = tensor_from_voigt_stress(self.voigt_stress(e))
        if isinstance(self.material, LinearElastic):
            return S
        F = ufl.Identity(3) + ufl.grad(u)
        return F * S * F.T / ufl.det(F)
