"""FIRE on the device (atomistic.analysis.optimize.relax) against ASE's optimisers on the same model:
minima with fixed atoms, batching, cell relaxation to the equation-of-state lattice constant and
to a target pressure."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, fcc111
from ase.cluster import Icosahedron
from ase.constraints import FixAtoms, FixBondLength
from ase.filters import UnitCellFilter
from ase.optimize import BFGS

from atomistic import NNPCalculator
from atomistic.analysis.optimize import relax
from atomistic.analysis.properties import equation_of_state
from atomistic.testing import TEST_DEVICE
from atomistic.units import GPa

FMAX = 1e-5  # eV/Å


@pytest.fixture(scope="module")
def member(model):
    """One member of the shipped committee: ASE's optimisers call it through NNPCalculator 4x
    faster than the whole committee (whose members do not share descriptors there)."""
    return model.members[0]


@pytest.fixture(scope="module")
def a0(model):
    return equation_of_state(NNPCalculator(model, device=TEST_DEVICE), "Cu", 3.6)[0]


def rattled_cluster():
    c = Icosahedron("Cu", 2)
    c.rattle(0.1, seed=3)
    c.center(vacuum=6.0)
    return c


def rattled_slab():
    """fcc(111), 5 layers, periodic in-plane, the bottom two layers fixed."""
    s = fcc111("Cu", (1, 1, 5), a=3.59, vacuum=6.0, periodic=False)
    s.pbc = (True, True, False)
    s.rattle(0.1, seed=1)
    s.set_constraint(FixAtoms(mask=s.positions[:, 2] < s.positions[:, 2].min() + 2.5))
    return s


@pytest.fixture(scope="module")
def batch(member):
    frames = [rattled_cluster(), rattled_slab()]
    return frames, relax(member, frames, fmax=FMAX)


def kabsch_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest atom distance (Å) between two clusters after the best rigid superposition."""
    a, b = a - a.mean(0), b - b.mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    r = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    return float(np.linalg.norm(a @ r - b, axis=1).max())


def test_fire_reaches_the_bfgs_minimum_and_fixed_atoms_stay(member, batch):
    """Same energy and positions as ASE's BFGS on NNPCalculator. The free cluster's minimum is
    only defined up to a rigid rotation, which the two optimisers pick up differently (1e-4 Å),
    so it is compared after superposition; the slab's fixed layers pin it down."""
    frames, result = batch
    assert result.all_converged and max(result.max_force) < FMAX
    refs = []
    for start in frames:
        ref = start.copy()
        ref.calc = NNPCalculator(member, device=TEST_DEVICE)
        BFGS(ref, logfile=None).run(fmax=FMAX, steps=1000)
        refs.append(ref)
    for ref, ours, energy in zip(refs, result.atoms, result.energies):
        assert energy == pytest.approx(ref.get_potential_energy(), abs=1e-8)
        assert np.abs(ours.positions - ref.positions).max() < 1e-3
    assert kabsch_distance(result.atoms[0].positions, refs[0].positions) < 2e-5
    slab, start = result.atoms[1], frames[1]
    assert np.abs(slab.positions - refs[1].positions).max() < 1e-4
    fixed = start.constraints[0].get_indices()
    assert len(fixed) == 2 and np.array_equal(slab.positions[fixed], start.positions[fixed])
    free = np.setdiff1d(np.arange(len(start)), fixed)
    assert np.linalg.norm(slab.positions[free] - start.positions[free], axis=1).min() > 0.01  # these moved
    assert slab.constraints and slab.calc is None and slab is not start


def test_batched_equals_individual_and_a_mask_equals_fix_atoms(member, batch):
    """The slab relaxed alone, its bottom layers held by a ``fixed`` mask instead of FixAtoms,
    follows exactly the path it took in the batch beside the cluster."""
    frames, result = batch
    slab = frames[1].copy()
    mask = np.zeros(len(slab), dtype=bool)
    mask[slab.constraints[0].get_indices()] = True
    slab.set_constraint()
    alone = relax(member, slab, fmax=FMAX, fixed=mask)
    assert np.abs(alone.atoms[0].positions - result.atoms[1].positions).max() < 1e-10
    assert alone.energies[0] == pytest.approx(result.energies[1], abs=1e-10)
    assert alone.steps <= result.steps and not alone.atoms[0].constraints


def test_cell_relaxation_reaches_the_eos_lattice_constant(model, a0):
    """A sheared, anisotropically strained, rattled cubic cell (full cell) and an isotropically
    strained primitive cell (hydrostatic) both end at the Birch–Murnaghan a0, stress-free."""
    sheared = bulk("Cu", "fcc", a=3.6, cubic=True)
    sheared.set_cell(sheared.cell.array @ np.array([[1.02, 0.01, 0.0], [0.01, 0.97, 0.02], [0.0, 0.02, 1.03]]),
                     scale_atoms=True)
    sheared.rattle(0.03, seed=5)
    full = relax(model, sheared, fmax=FMAX, cell=True)
    assert full.converged[0]
    par = full.atoms[0].cell.cellpar()
    assert par[:3] == pytest.approx([a0] * 3, abs=1e-3) and par[3:] == pytest.approx([90.0] * 3, abs=0.02)
    primitive = bulk("Cu", "fcc", a=3.7)
    iso = relax(model, primitive, fmax=FMAX, cell=True, hydrostatic=True)
    cell = iso.atoms[0].cell.array
    scale = np.cbrt(np.linalg.det(cell) / primitive.get_volume())
    assert np.abs(cell - scale * primitive.cell.array).max() < 1e-12  # the shape is kept
    assert np.cbrt(4 * iso.atoms[0].get_volume()) == pytest.approx(a0, abs=1e-3)
    calc = NNPCalculator(model, device=TEST_DEVICE)
    for atoms in (full.atoms[0], iso.atoms[0]):
        atoms.calc = calc
        assert np.abs(atoms.get_stress()).max() < FMAX * len(atoms) / atoms.get_volume()


def test_target_pressure_matches_ase_cell_filter(member, a0):
    """At 5 GPa: the same cell as ASE's UnitCellFilter + BFGS, the stress is -P, and the crystal
    is compressed (by about P / (3 B) = 1.2 %)."""
    p = 5.0
    start = bulk("Cu", "fcc", a=3.62, cubic=True)
    start.rattle(0.02, seed=7)
    ours = relax(member, start, fmax=FMAX, cell=True, pressure_GPa=p).atoms[0]
    ref = start.copy()
    ref.calc = NNPCalculator(member, device=TEST_DEVICE)
    BFGS(UnitCellFilter(ref, scalar_pressure=p * GPa), logfile=None).run(fmax=FMAX, steps=500)
    assert ours.cell.cellpar() == pytest.approx(ref.cell.cellpar(), abs=1e-4)
    assert np.abs(ours.get_scaled_positions() - ref.get_scaled_positions()).max() < 1e-5
    ours.calc = NNPCalculator(member, device=TEST_DEVICE)
    stress = ours.get_stress(voigt=False) / GPa
    assert np.abs(stress + p * np.eye(3)).max() < FMAX * 4 / ours.get_volume() / GPa
    assert ours.cell.cellpar()[0] < a0 - 0.02


def test_not_converged_is_reported(member, caplog):
    out = relax(member, rattled_cluster(), fmax=1e-6, max_steps=3)
    assert out.steps == 3 and not out.all_converged and out.max_force[0] > 1e-6
    assert "not converged" in caplog.text and "max_steps=3" in caplog.text


@pytest.mark.parametrize("kwargs, match", [
    ({"fmax": 0.0}, "fmax"),
    ({"max_steps": -1}, "max_steps"),
    ({"cell": True}, "cell relaxation needs periodic"),
    ({"pressure_GPa": 1.0}, "need cell=True"),
    ({"hydrostatic": True}, "need cell=True"),
    ({"fixed": np.zeros(5, dtype=bool)}, "fixed must be a bool mask of shape"),
    ({"fixed": np.zeros(13)}, "fixed must be a bool mask"),
])
def test_bad_input(member, kwargs, match):
    with pytest.raises(ValueError, match=match):
        relax(member, rattled_cluster(), **kwargs)


def test_unsupported_constraint(member):
    c = rattled_cluster()
    c.set_constraint(FixBondLength(0, 1))
    with pytest.raises(ValueError, match="FixBondLengths is not supported by relax"):
        relax(member, c)
