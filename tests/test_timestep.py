"""The MD time step from the Hessian (DESIGN §3): dense and Lanczos paths agree, the highest
frequency matches ASE's finite-difference Vibrations on the same calculator, fixed atoms are left
out, and dt = fraction x 2 pi / w_max in fs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.cluster import Icosahedron
from ase.constraints import FixAtoms
from ase.vibrations import Vibrations

from atomistic import NNPCalculator
from atomistic.analysis.optimize import relax
from atomistic.analysis.timestep import lanczos_largest, largest_eigenvalue, suggest_timestep
from atomistic.testing import TEST_DEVICE

C_CM_PER_S = 2.99792458e10


@pytest.fixture(scope="module")
def member(model):
    """One member of the shipped committee: ASE's finite differences call it through
    NNPCalculator 4x faster than the whole committee."""
    return model.members[0]


@pytest.fixture(scope="module")
def cluster(member):
    c = Icosahedron("Cu", 2)
    c.rattle(0.05, seed=1)
    c.center(vacuum=6.0)
    result = relax(member, c, fmax=1e-5)
    assert result.converged[0]
    return result.atoms[0]


def ase_max_frequency(model, atoms, tmp_path, indices=None) -> float:
    """Highest real frequency (cm^-1) from ASE's central differences on NNPCalculator."""
    a = atoms.copy()
    a.calc = NNPCalculator(model, device=TEST_DEVICE)
    vib = Vibrations(a, indices=indices, delta=0.005, nfree=2, name=str(tmp_path / "vib"))
    vib.run()
    return float(np.max(vib.get_frequencies().real))


def test_cluster_dense_lanczos_and_ase_agree(member, cluster, tmp_path):
    dense = suggest_timestep(member, cluster, relax=False)
    lam, method = largest_eigenvalue(member, cluster, dense_limit=0)
    assert dense.method == "dense" and method == "lanczos"
    assert lam == pytest.approx(dense.max_eigenvalue, rel=1e-8)
    assert dense.max_frequency_cm == pytest.approx(ase_max_frequency(member, cluster, tmp_path), abs=1.0)
    # the relax path: from a rattled cluster, FIRE first, then the same answer
    rattled = cluster.copy()
    rattled.rattle(0.03, seed=2)
    again = suggest_timestep(member, rattled)  # FIRE to 1e-3 eV/Å first
    assert again.max_frequency_cm == pytest.approx(dense.max_frequency_cm, abs=0.1)


def test_periodic_bulk_and_fixed_atoms(model, member, tmp_path):
    """Bulk fcc Cu: the 4-atom cell against ASE (all atoms, then with atom 0 fixed and left out),
    and an 8-atom supercell, where the top of the phonon spectrum is degenerate, by both paths
    (with the whole committee)."""
    cell = bulk("Cu", "fcc", a=3.59, cubic=True)
    s = suggest_timestep(member, cell, relax=False)
    assert s.max_frequency_cm == pytest.approx(ase_max_frequency(member, cell, tmp_path / "all"), abs=1.0)
    assert 180 < s.max_frequency_cm < 330  # 5.4 - 9.9 THz: the phonon range of copper
    fixed = cell.copy()
    fixed.set_constraint(FixAtoms(indices=[0]))
    f = suggest_timestep(member, fixed, relax=False)
    ref = ase_max_frequency(member, fixed, tmp_path / "fixed", indices=[1, 2, 3])
    assert f.max_frequency_cm == pytest.approx(ref, abs=1.0)
    assert largest_eigenvalue(member, fixed, dense_limit=0)[0] == pytest.approx(f.max_eigenvalue, rel=1e-8)
    assert abs(f.max_frequency_cm - s.max_frequency_cm) > 1.0  # fixing an atom does change the answer
    big = cell.repeat((2, 1, 1))
    lam_dense, _ = largest_eigenvalue(model, big)
    lam_lanczos, method = largest_eigenvalue(model, big, dense_limit=4)
    assert method == "lanczos" and lam_lanczos == pytest.approx(lam_dense, rel=1e-8)


def test_timestep_is_the_documented_fraction_of_the_period(model, cluster):
    s20 = suggest_timestep(model, cluster, relax=False)
    s40 = suggest_timestep(model, cluster, relax=False, fraction=1 / 40)
    assert s20.timestep_fs == pytest.approx(s20.period_fs / 20, rel=1e-12)
    assert s40.timestep_fs == pytest.approx(s20.timestep_fs / 2, rel=1e-12)
    # units by hand: T_min = 1 / (c nu~) in s; and w_max^2 = lambda_max (ASE time unit = 10.1805 fs)
    assert s20.period_fs == pytest.approx(1e15 / (C_CM_PER_S * s20.max_frequency_cm), rel=1e-9)
    assert s20.period_fs == pytest.approx(2 * np.pi / np.sqrt(s20.max_eigenvalue) * 10.1805055, rel=1e-6)
    assert 3.0 < s20.timestep_fs < 10.0  # Cu: T_min about 130 fs


def test_lanczos_on_a_known_matrix():
    """Clustered top eigenvalues (power iteration would need ~1e4 steps): exact in a few tens."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(300, 300)))
    lam = np.concatenate([np.linspace(0.0, 0.9, 297), [0.999, 0.9995, 1.0]])
    a = torch.as_tensor((q * lam) @ q.T)
    top, residual, steps = lanczos_largest(lambda v: a @ v, torch.as_tensor(rng.normal(size=300)))
    assert top == pytest.approx(1.0, rel=1e-10) and residual < 1e-8 and steps < 150


def test_bad_input(member, cluster):
    with pytest.raises(ValueError, match="fraction"):
        suggest_timestep(member, cluster, relax=False, fraction=0.0)
    held = cluster.copy()
    held.set_constraint(FixAtoms(indices=range(len(held))))
    with pytest.raises(ValueError, match="every atom is fixed"):
        largest_eigenvalue(member, held)
    with pytest.raises(ValueError, match="dense_limit"):
        largest_eigenvalue(member, cluster, dense_limit=-1)
