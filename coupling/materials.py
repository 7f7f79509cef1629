"""Continuum materials whose numbers come from an NN-PES: the bridge from atomistic to continuum.

The crystal is relaxed (lattice constant from an equation of state of the model), its elastic
constants are computed by automatic differentiation
(:func:`atomistic.analysis.elastic.elastic_constants`; third order too for Cauchy-Born), and
plain numbers in GPa go to :mod:`continuum.materials`, rotated into the body's axes. The
continuum never sees the model: only these numbers cross.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from ase.build import bulk

from atomistic.analysis.elastic import ElasticConstants, elastic_constants
from atomistic.analysis.properties import equation_of_state
from atomistic.calculator import NNPCalculator
from continuum.materials import CauchyBorn, ElasticTensor, LinearElastic, Material, orientation_matrix

log = logging.getLogger(__name__)
LAWS = ("linear", "cauchy-born")


@dataclass(frozen=True)
class CrystalMaterial:
    """A continuum material and where its numbers came from."""

    material: Material  # C (and C3) in GPa, in the body's axes
    lattice_constant_A: float
    constants: ElasticConstants  # in the crystal's cube axes


def crystal_material(model, *, symbol: str, lattice: str = "fcc", a_guess_A: float,
                     orientation=((1, 0, 0), (0, 1, 0), (0, 0, 1)), law: str = "linear",
                     name: str = "material") -> CrystalMaterial:
    """The continuum material of ``model``'s crystal of ``symbol`` (an ASE cubic ``lattice``).

    ``law``: ``"linear"`` (C from the model) or ``"cauchy-born"`` (C and C3, finite strain).
    ``orientation``: the body's x and y axes (and z) as crystal directions, e.g. ``((1, 1, 0),
    (-1, 1, 0))``. The lattice constant (Å) is the model's (Birch-Murnaghan fit around
    ``a_guess_A``). ``name`` names the material in messages."""
    if law not in LAWS:
        raise ValueError(f"{name}.law = {law!r}: expected one of {LAWS}")
    rotation = orientation_matrix(*orientation)
    a0, _ = equation_of_state(NNPCalculator(model), symbol, a_guess_A)
    atoms = bulk(symbol, lattice, a=a0, cubic=True)
    constants = elastic_constants(model, atoms, third_order=law == "cauchy-born")
    log.info("%s: a0 = %.5f Å, C11 C12 C44 = %s GPa, residual stress %.2g GPa", name, a0,
             np.round([constants.C[0, 0], constants.C[0, 1], constants.C[3, 3]], 2), np.abs(constants.stress_GPa).max())
    tensor = ElasticTensor(constants.C, constants.C3, name=name).rotated(rotation)
    material = CauchyBorn(tensor) if law == "cauchy-born" else LinearElastic(tensor)
    return CrystalMaterial(material, a0, constants)
