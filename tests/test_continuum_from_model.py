"""Continuum materials from the shipped NN-PES: the Cauchy-Born energy against the crystal itself.

A uniformly stretched Cu block (continuum, one element) and the same stretch of the periodic
crystal (the NN-PES directly) must store the same energy per volume: to third order in the strain
with the Cauchy-Born law, to second order with the linear one.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")

from ase.build import bulk  # noqa: E402
from mpi4py import MPI  # noqa: E402

from atomistic import NNPCalculator  # noqa: E402
from continuum.boundary import Displacement, Symmetry  # noqa: E402
from continuum.domain import Domain  # noqa: E402
from continuum.geometry import box  # noqa: E402
from continuum.problem import StaticProblem  # noqa: E402
from coupling.materials import crystal_material  # noqa: E402


def continuum_energy_density(material, stretch: float) -> float:
    """eV/Å^3 of a 1x1x1 Å block under F = diag(1 + stretch, 1, 1)."""
    domain = Domain.create(box((1, 1, 1), (1, 1, 1)) if MPI.COMM_WORLD.rank == 0 else None, MPI.COMM_WORLD)
    bcs = (Displacement("xmin", (0.0, None, None)), Displacement("xmax", (stretch, None, None)),
           Symmetry("ymin"), Symmetry("ymax"), Symmetry("zmin"), Symmetry("zmax"))
    problem = StaticProblem(domain, {"body1": material}, bcs=bcs)
    return problem.solve(2)[-1].energies_eV["total"]


def test_cauchy_born_material_from_the_model_matches_the_strained_crystal(model):
    cb = crystal_material(model, symbol="Cu", a_guess_A=3.6, law="cauchy-born", name="Cu")
    linear = crystal_material(model, symbol="Cu", a_guess_A=3.6, law="linear", name="Cu")
    assert cb.constants.C3 is not None and abs(cb.constants.C[0, 0] - 171.3) < 2.0
    calc = NNPCalculator(model)
    crystal = bulk("Cu", "fcc", a=cb.lattice_constant_A, cubic=True)
    crystal.calc = calc
    e0, v0 = crystal.get_potential_energy(), crystal.get_volume()
    for stretch in (0.01, 0.02, -0.02):
        strained = crystal.copy()
        strained.set_cell(crystal.cell[:] @ np.diag([1 + stretch, 1, 1]), scale_atoms=True)
        strained.calc = calc
        atomistic = (strained.get_potential_energy() - e0) / v0
        err_cb = abs(continuum_energy_density(cb.material, stretch) / atomistic - 1)
        err_linear = abs(continuum_energy_density(linear.material, stretch) / atomistic - 1)
        print(f"stretch {stretch:+.2f}: W_atomistic {atomistic:.4e} eV/Å^3, Cauchy-Born error {err_cb:.2e}, "
              f"linear error {err_linear:.2e}")
        assert err_cb < 3e-3 and err_cb < err_linear / 5


def test_orientation_rotates_the_model_constants(model):
    along_110 = crystal_material(model, symbol="Cu", a_guess_A=3.6, orientation=((1, 1, 0), (-1, 1, 0)))
    c = along_110.constants.C
    assert along_110.material.tensor.C[0, 0] == pytest.approx((c[0, 0] + c[0, 1] + 2 * c[3, 3]) / 2, rel=1e-10)
