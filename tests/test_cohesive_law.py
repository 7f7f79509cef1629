"""The cohesive law derived from the NN-PES (issue 5, DESIGN section 5): W_sep = 2 gamma of the same
model, tractions that are exact derivatives, the UBER fit, and the law in a continuum pull-off."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from atomistic import NNPCalculator
from atomistic.analysis.properties import surface_energy
from continuum.units import J_per_m2
from coupling.cohesive_law import half_crystals, interface_plane, model_interface_law, separation_curve
from coupling.errors import CouplingInputError

A0 = 3.5897  # Å, the shipped model's lattice constant


@pytest.fixture(scope="module")
def rigid_100(model):
    return separation_curve(model, "Cu", A0, plane="100", openings_A=np.linspace(0.0, 8.0, 33))


@pytest.mark.parametrize("plane, layers", [("100", 8), ("111", 12)])
def test_rigid_work_of_separation_is_twice_the_unrelaxed_surface_energy(model, plane, layers):
    curve = separation_curve(model, "Cu", A0, plane=plane, layers=layers, openings_A=np.linspace(0.0, 8.0, 9))
    two_gamma = 2 * surface_energy(NNPCalculator(model), "Cu", A0, plane, relax=False)
    assert curve.work_of_separation_eV_A2 / J_per_m2 == pytest.approx(two_gamma, rel=1e-6)


@pytest.mark.parametrize("mode, at", [("normal", 0.8), ("normal", 2.0), ("shear", 0.5)])
def test_traction_is_the_derivative_of_phi(model, mode, at):
    h = 1e-4
    curve = separation_curve(model, "Cu", A0, openings_A=[at - h, at, at + h], mode=mode)
    fd = (curve.energy_eV_A2[2] - curve.energy_eV_A2[0]) / (2 * h)
    assert curve.traction_eV_A3[1] == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_uber_fit_and_table(rigid_100):
    fit = rigid_100.uber()
    w = rigid_100.work_of_separation_eV_A2
    assert fit.W_sep_eV_A2 == pytest.approx(w, rel=0.01) and 0.2 < fit.length_A < 1.0
    rms = np.sqrt(np.mean(
        (fit.evaluate(rigid_100.openings_A, 0 * rigid_100.openings_A).phi - rigid_100.energy_eV_A2) ** 2))
    assert rms < 0.03 * w
    table = rigid_100.table()
    values = table.evaluate(rigid_100.openings_A, 0 * rigid_100.openings_A)
    assert np.abs(values.phi - rigid_100.energy_eV_A2).max() < 1e-12
    print(f"Cu(100) rigid: W_sep {w / J_per_m2:.4f} J/m^2, UBER W {fit.W_sep_eV_A2 / J_per_m2:.4f} J/m^2, "
          f"l {fit.length_A:.4f} Å, rms {rms / w:.2%}")


def test_relaxed_separation_ends_at_twice_the_relaxed_surface_energy(model, rigid_100):
    relaxed = separation_curve(model, "Cu", A0, openings_A=np.linspace(0.0, 8.0, 9), relaxed=True)
    two_gamma = 2 * surface_energy(NNPCalculator(model), "Cu", A0, "100", relax=True)
    assert relaxed.work_of_separation_eV_A2 <= rigid_100.work_of_separation_eV_A2 + 1e-9
    # at a partial opening the atoms share the stretch: the relaxed path costs less than the rigid one
    at = 1.0
    rigid_at = rigid_100.energy_eV_A2[np.argmin(np.abs(rigid_100.openings_A - at))]
    relaxed_at = relaxed.energy_eV_A2[np.argmin(np.abs(relaxed.openings_A - at))]
    print(f"phi(1 Å): rigid {rigid_at / J_per_m2:.4f}, relaxed {relaxed_at / J_per_m2:.4f} J/m^2")
    assert relaxed_at < rigid_at - 0.01 * rigid_100.work_of_separation_eV_A2
    assert relaxed.work_of_separation_eV_A2 / J_per_m2 == pytest.approx(two_gamma, rel=2e-3)


def test_the_derived_law_in_a_continuum_pull_off(rigid_100):
    pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")
    from mpi4py import MPI

    sys.path.insert(0, str(Path(__file__).parent))
    from continuum_cases import pull_problem

    law = rigid_100.table()
    problem = pull_problem(MPI.COMM_WORLD, length=8.0, pull_A=8.0, law=law)
    U, F = [0.0], [0.0]
    for step in problem.irun(160, reactions=("xmax",)):
        U.append(step.load_factor * 8.0)
        F.append(step.reactions_eV_A["xmax"][0])
    assert np.trapezoid(F, U) == pytest.approx(law.work_of_separation_eV_A2 * 16.0, rel=0.01)


def test_bad_input(model):
    with pytest.raises(ValueError, match="even number"):
        half_crystals("Cu", A0, layers=7)
    with pytest.raises(ValueError, match="plane"):
        half_crystals("Cu", A0, plane="211")
    with pytest.raises(ValueError, match="mode"):
        separation_curve(model, "Cu", A0, mode="twist")


def test_the_interface_plane_of_a_body_axis():
    for axis, plane in (((1, 0, 0), "100"), ((0, 0, -3), "100"), ((-1, 1, 0), "110"), ((0, 2, 2), "110"),
                        ((1, 1, 1), "111"), ((-2, 2, 2), "111")):
        assert interface_plane(axis) == plane, axis
    for axis in ((1, 2, 3), (1, 1, 2), (0, 0, 0), (1.0, 1.5, 0.0)):
        with pytest.raises(CouplingInputError, match=r"must be a <100>, <110> or <111> direction"):
            interface_plane(axis)


def test_the_model_interface_law_is_the_uber_fit_across_that_plane(model):
    law = model_interface_law(model, "Cu", A0, (0, 1, 0))
    fit = separation_curve(model, "Cu", A0, plane="100").uber()
    assert (law.W_sep_eV_A2, law.length_A) == (fit.W_sep_eV_A2, fit.length_A)
