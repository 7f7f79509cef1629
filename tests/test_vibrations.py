"""V5: frequencies from the autograd Hessian against ASE's finite-difference Vibrations on the
same calculator; rigid modes; the time step suggested from the Hessian; FIRE minima."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.cluster import Icosahedron
from ase.constraints import FixAtoms
from ase.optimize import BFGS
from ase.vibrations import Vibrations

from atomistic import NNPCalculator
from atomistic.io import load_potential
from atomistic.optimize import relax
from atomistic.properties import equation_of_state
from atomistic.testing import TEST_DEVICE
from atomistic.timestep import largest_eigenvalue, suggest_timestep
from atomistic.vibrations import count_imaginary, normal_modes, spectrum_plot

from .conftest import SHIPPED_MODEL


@pytest.fixture(scope="module")
def model():
    torch.set_flush_denormal(True)
    return load_potential(SHIPPED_MODEL, device=TEST_DEVICE)


@pytest.fixture(scope="module")
def cluster(model):
    """A relaxed Cu13 icosahedron (a 'molecule' for the Cu model)."""
    c = Icosahedron("Cu", 2)
    c.rattle(0.05, seed=1)
    c.center(vacuum=6.0)
    result = relax(model, c, fmax=1e-5)
    assert result.converged[0]
    return result.atoms[0]


def ase_frequencies(model, atoms, tmp_path, indices=None):
    a = atoms.copy()
    a.calc = NNPCalculator(model, device=TEST_DEVICE)
    vib = Vibrations(a, indices=indices, delta=0.005, nfree=4, name=str(tmp_path / "vib"))
    vib.run()
    f = vib.get_frequencies()
    return np.where(np.abs(f.imag) > 0, -np.abs(f.imag), f.real)


def test_v5_frequencies_match_ase_vibrations(model, cluster, tmp_path):
    modes = normal_modes(model, cluster)
    assert modes.n_rigid == 6 and len(modes.frequencies_cm) == 3 * 13 - 6
    ref = np.sort(ase_frequencies(model, cluster, tmp_path))[6:]  # ASE keeps the 6 near-zero rigid modes
    assert np.abs(np.sort(modes.frequencies_cm) - ref).max() < 1.0
    assert count_imaginary(modes) == 0
    png = spectrum_plot(tmp_path / "spectrum.png", modes)
    assert png.stat().st_size > 1000


def test_fixed_atoms_and_periodic_rigid_modes(model, tmp_path):
    b = bulk("Cu", "fcc", a=3.59, cubic=True)
    modes = normal_modes(model, b)
    assert modes.n_rigid == 3 and len(modes.frequencies_cm) == 9 and modes.frequencies_cm.min() > 10.0
    b.set_constraint(FixAtoms(indices=[0]))
    modes = normal_modes(model, b)
    assert modes.n_rigid == 0 and list(modes.indices) == [1, 2, 3]
    ref = np.sort(ase_frequencies(model, b, tmp_path, indices=[1, 2, 3]))
    assert np.abs(np.sort(modes.frequencies_cm) - ref).max() < 1.0


def test_a_saddle_like_point_has_imaginary_modes(model):
    """Squeeze the cluster: not a minimum, so some modes turn imaginary (negative numbers)."""
    c = Icosahedron("Cu", 2)
    c.center(vacuum=6.0)
    c.positions = c.get_center_of_mass() + 1.08 * (c.positions - c.get_center_of_mass())
    modes = normal_modes(model, c)
    assert modes.frequencies_cm.min() < -10.0 and count_imaginary(modes) >= 1


def test_suggested_timestep_dense_and_iterative_agree(model, cluster, tmp_path):
    """T_min/20 from the largest mass-weighted eigenvalue; the dense and power-iteration paths
    agree, and the highest frequency matches ASE's."""
    s = suggest_timestep(model, cluster, relax=False)
    lam_iter, method = largest_eigenvalue(model, cluster, dense_limit=0)
    assert method == "power iteration"
    lam_dense, _ = largest_eigenvalue(model, cluster)
    assert lam_iter == pytest.approx(lam_dense, rel=1e-3)
    assert s.max_frequency_cm == pytest.approx(ase_frequencies(model, cluster, tmp_path).max(), abs=1.0)
    assert s.timestep_fs == pytest.approx(s.period_fs / 20)
    # bulk Cu: the highest phonon of the model's crystal, around 7-8 THz (~250 cm^-1)
    bulk_s = suggest_timestep(model, bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2))
    assert 180 < bulk_s.max_frequency_cm < 330 and 4.0 < bulk_s.timestep_fs < 9.0


def test_fire_finds_the_bfgs_minimum(model):
    c = Icosahedron("Cu", 2)
    c.rattle(0.1, seed=3)
    c.center(vacuum=6.0)
    ours = relax(model, c, fmax=1e-4)
    ref = c.copy()
    ref.calc = NNPCalculator(model, device=TEST_DEVICE)
    BFGS(ref, logfile=None).run(fmax=1e-4)
    assert ours.converged[0] and ours.max_force[0] < 1e-4
    assert ours.energies[0] == pytest.approx(ref.get_potential_energy(), abs=1e-6)
    assert np.abs(ours.atoms[0].positions - ref.positions).max() < 2e-3


def test_fire_batched_fixed_atoms_and_cell(model):
    a0 = equation_of_state(NNPCalculator(model, device=TEST_DEVICE), "Cu", 3.6)[0]
    c = Icosahedron("Cu", 2)
    c.rattle(0.1, seed=4)
    c.center(vacuum=6.0)
    c.set_constraint(FixAtoms(indices=[0, 1]))
    strained = bulk("Cu", "fcc", a=3.7, cubic=True)
    strained.rattle(0.05, seed=5)
    single = relax(model, c, fmax=1e-4)
    batch = relax(model, [c, c.copy()], fmax=1e-4)
    assert np.abs(batch.atoms[0].positions - single.atoms[0].positions).max() < 1e-10
    assert np.array_equal(single.atoms[0].positions[:2], c.positions[:2])
    cell = relax(model, strained, fmax=1e-4, cell=True, hydrostatic=True)
    assert cell.converged[0]
    assert np.diag(cell.atoms[0].cell.array) == pytest.approx([a0] * 3, abs=1e-3)
    with pytest.raises(ValueError, match="cell relaxation needs periodic"):
        relax(model, c, cell=True)
