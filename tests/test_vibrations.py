"""V5: frequencies from the autograd Hessian against ASE's finite-difference Vibrations on the
same calculator; rigid modes; the time step suggested from the Hessian; FIRE minima."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.cluster import Icosahedron
from ase.constraints import FixAtoms
from ase.optimize import BFGS
from ase.vibrations import Vibrations

from atomistic import NNPCalculator
from atomistic.analysis.vibrations import count_imaginary, normal_modes, spectrum_plot
from atomistic.testing import TEST_DEVICE


@pytest.fixture(scope="module")
def cluster(model):
    """A Cu13 icosahedron (a 'molecule' for the Cu model), relaxed with ASE's BFGS on the
    calculator to 1e-4 eV/Å (independent of our own minimiser)."""
    c = Icosahedron("Cu", 2)
    c.rattle(0.05, seed=1)
    c.center(vacuum=6.0)
    c.calc = NNPCalculator(model, device=TEST_DEVICE)
    assert BFGS(c, logfile=None).run(fmax=1e-4, steps=500)
    c.calc = None
    return c


def ase_frequencies(model, atoms, tmp_path, indices=None):
    """ASE's finite-difference frequencies (cm^-1, imaginary as negative) on NNPCalculator:
    central differences on 4 points (error O(delta^4)) with delta = 0.005 Å."""
    a = atoms.copy()
    a.calc = NNPCalculator(model, device=TEST_DEVICE)
    vib = Vibrations(a, indices=indices, delta=0.005, nfree=4, name=str(tmp_path / "vib"))
    vib.run()
    f = vib.get_frequencies()
    return np.where(np.abs(f.imag) > 0, -np.abs(f.imag), f.real)


def test_v5_frequencies_match_ase_vibrations(model, cluster, tmp_path):
    """V5: the 3N-6 vibrational frequencies of relaxed Cu13 agree with ASE's Vibrations within
    1 cm^-1; ASE does not project, so its 6 rigid modes are the 6 smallest in magnitude."""
    modes = normal_modes(model, cluster)
    assert modes.n_rigid == 6 and len(modes.frequencies_cm) == 3 * 13 - 6 and modes.max_force < 1e-4
    ase = ase_frequencies(model, cluster, tmp_path)
    assert np.abs(ase[np.argsort(np.abs(ase))[:6]]).max() < 5.0  # rigid, near zero
    ref = np.sort(ase[np.argsort(np.abs(ase))[6:]])
    assert np.abs(modes.frequencies_cm - ref).max() < 1.0
    assert count_imaginary(modes) == 0 and modes.frequencies_cm.min() > 30.0
    # modes: orthonormal in mass-weighted coordinates, orthogonal to the rigid motions
    e = modes.mass_weighted
    assert np.abs(e @ e.T - np.eye(len(e))).max() < 1e-10
    sq = np.sqrt(np.repeat(cluster.get_masses(), 3))
    translation = np.tile(np.eye(3), 13) * sq  # (3, 39)
    assert np.abs(e @ translation.T).max() < 1e-10
    assert np.linalg.norm(modes.displacements.reshape(len(e), -1), axis=1) == pytest.approx(1.0)
    png = spectrum_plot(tmp_path / "spectrum.png", modes)
    assert png.stat().st_size > 1000


def test_fixed_atoms_and_periodic_rigid_modes(model, tmp_path):
    """Periodic bulk: exactly the 3 translations are projected out, and they are the 3 zero
    eigenvalues of the unprojected Hessian (acoustic modes at Gamma); with a fixed atom nothing
    is projected and the free atoms' modes match ASE's."""
    b = bulk("Cu", "fcc", a=3.59, cubic=True)
    modes = normal_modes(model, b)
    assert modes.n_rigid == 3 and len(modes.frequencies_cm) == 9 and modes.frequencies_cm.min() > 10.0
    full = normal_modes(model, b, project_rigid=False)
    assert full.n_rigid == 0 and np.abs(full.frequencies_cm[np.argsort(np.abs(full.frequencies_cm))[:3]]).max() < 1.0
    assert np.sort(full.frequencies_cm)[3:] == pytest.approx(modes.frequencies_cm, abs=1e-6)
    b.set_constraint(FixAtoms(indices=[0]))
    modes = normal_modes(model, b)
    assert modes.n_rigid == 0 and list(modes.indices) == [1, 2, 3]
    ref = np.sort(ase_frequencies(model, b, tmp_path, indices=[1, 2, 3]))
    assert np.abs(modes.frequencies_cm - ref).max() < 1.0
    # explicit indices hold the other atoms fixed: the same result without the constraint
    b.set_constraint()
    assert normal_modes(model, b, indices=[1, 2, 3]).frequencies_cm == pytest.approx(modes.frequencies_cm)


def test_linear_dimer_has_five_rigid_modes(model):
    """Cu2: 3 translations + 2 rotations; the one mode left is the stretch, sqrt(k / mu) with k
    the second derivative of E(r) by finite differences of energies through ASE."""
    d = Atoms("Cu2", positions=[[0, 0, 0], [2.3, 0.4, 0.1]])
    d.center(vacuum=6.0)
    modes = normal_modes(model, d)
    assert modes.n_rigid == 5 and len(modes.frequencies_cm) == 1
    calc = NNPCalculator(model, device=TEST_DEVICE)
    r0 = d.get_distance(0, 1)
    u = (d.positions[1] - d.positions[0]) / r0

    def energy(r):
        a = d.copy()
        a.positions[1] = a.positions[0] + r * u
        a.calc = calc
        return a.get_potential_energy()

    h = 1e-3
    k = (-energy(r0 + 2 * h) + 16 * energy(r0 + h) - 30 * energy(r0) + 16 * energy(r0 - h) - energy(r0 - 2 * h)) / (
        12 * h * h)
    mu = d.get_masses()[0] / 2
    expected = np.sign(k) * np.sqrt(abs(k) / mu) * 1e15 * units.fs / (2 * np.pi * 2.99792458e10)
    assert modes.frequencies_cm[0] == pytest.approx(expected, abs=0.5)


def test_a_non_stationary_point_is_handled(model, tmp_path, caplog):
    """Expand the cluster by 8 %: not a stationary point. The modes are still the exact local
    curvature (unprojected: all 39 equal ASE's finite differences), some are imaginary (negative
    numbers), and a warning names the largest force."""
    c = Icosahedron("Cu", 2)
    c.center(vacuum=6.0)
    c.positions = c.get_center_of_mass() + 1.08 * (c.positions - c.get_center_of_mass())
    with caplog.at_level(logging.WARNING, logger="atomistic.analysis.vibrations"):
        modes = normal_modes(model, c)
    assert "non-stationary point" in caplog.text and modes.max_force > 0.1
    assert modes.frequencies_cm.min() < -10.0 and count_imaginary(modes) >= 1
    full = normal_modes(model, c, project_rigid=False)
    assert np.abs(full.frequencies_cm - np.sort(ase_frequencies(model, c, tmp_path))).max() < 1.0


def test_input_errors(model, cluster):
    with pytest.raises(ValueError, match=r"indices must be distinct atom indices in \[0, 13\), got \[0, 13\]"):
        normal_modes(model, cluster, indices=[0, 13])
    with pytest.raises(ValueError, match="indices must be a non-empty"):
        normal_modes(model, cluster, indices=[])
    fixed = cluster.copy()
    fixed.set_constraint(FixAtoms(indices=range(13)))
    with pytest.raises(ValueError, match="every atom is fixed"):
        normal_modes(model, fixed)
    with pytest.raises(ValueError, match="threshold_cm must be >= 0"):
        count_imaginary(normal_modes(model, cluster, indices=[0]), threshold_cm=-1)
