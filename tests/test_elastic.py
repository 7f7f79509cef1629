"""Elastic constants by autograd (atomistic.analysis.elastic) on the shipped Cu model: against stress
finite differences, third order against differences of second order, internal relaxation of hcp
against relaxed finite differences, invariance under translation and relabelling of the atoms."""

import itertools
import logging

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS

from atomistic import ElasticConstants, NNPCalculator, elastic_constants
from atomistic.analysis.properties import cubic_elastic_constants, equation_of_state
from atomistic.units import GPa

from .conftest import SHIPPED_MODEL

pytestmark = pytest.mark.skipif(not SHIPPED_MODEL.exists(), reason="shipped model not present")

VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Cells of 1-4 atoms are overhead-bound: a second OpenMP thread only waits at barriers, and
    when the other core is busy those waits turn seconds into minutes (measured: 6 s against
    116 s for this file on 2 shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def calc(model):
    return NNPCalculator(model)


@pytest.fixture(scope="module")
def a0(calc):
    return equation_of_state(calc, "Cu", 3.59)[0]


@pytest.fixture(scope="module")
def fcc(model, a0) -> tuple[Atoms, ElasticConstants]:
    atoms = bulk("Cu", "fcc", a=a0, cubic=True)
    return atoms, elastic_constants(model, atoms, third_order=True)


@pytest.fixture(scope="module")
def hcp(calc, a0) -> Atoms:
    """hcp Cu with a relaxed cell (a, c); every atom sits at a centre of symmetry of the forces."""
    a = a0 / np.sqrt(2)
    atoms = bulk("Cu", "hcp", a=a, c=a * np.sqrt(8 / 3))
    atoms.calc = calc
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-6, steps=200)
    assert np.abs(atoms.get_stress()).max() / GPa < 1e-3
    atoms.calc = None
    return atoms


def voigt_to_tensor(e: np.ndarray) -> np.ndarray:
    """Engineering Voigt strain (6,) -> symmetric tensor (3, 3)."""
    t = np.zeros((3, 3))
    for k, (i, j) in enumerate(VOIGT):
        t[i, j] = t[j, i] = e[k] if i == j else e[k] / 2
    return t


def tensor_to_voigt(t: np.ndarray, engineering: bool = True) -> np.ndarray:
    return np.array([t[i, j] * (2 if engineering and i != j else 1) for i, j in VOIGT])


def stretch(e: np.ndarray) -> np.ndarray:
    """F = sqrt(I + 2E), symmetric."""
    lam, vec = np.linalg.eigh(np.eye(3) + 2 * voigt_to_tensor(e))
    return vec @ np.diag(np.sqrt(lam)) @ vec.T


def deformed(atoms: Atoms, f: np.ndarray) -> Atoms:
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ f.T, scale_atoms=True)
    return out


def cubic_zero_mask(order: int) -> np.ndarray:
    """Entries that cubic symmetry (in the cube axes) sets to zero, for C (2) or C3 (3)."""
    nonzero = {2: [(0, 0), (0, 1), (3, 3)], 3: [(0, 0, 0), (0, 0, 1), (0, 1, 2), (0, 3, 3), (0, 4, 4), (3, 4, 5)]}
    mask = np.ones((6,) * order, dtype=bool)
    # cubic point group on Voigt indices: permutations of the axes (normal 0-2 and shear 3-5 alike)
    for idx in nonzero[order]:
        for perm in itertools.permutations(range(3)):
            mapped = tuple(perm[i] if i < 3 else 3 + perm[i - 3] for i in idx)
            for p in itertools.permutations(mapped):
                mask[p] = False
    return mask


def test_fcc_matches_stress_finite_differences(fcc, calc, a0):
    atoms, ec = fcc
    assert ec.relaxed_ions and ec.C.shape == (6, 6) and ec.C3.shape == (6, 6, 6)
    assert ec.volume_A3 == pytest.approx(atoms.get_volume(), rel=1e-12)
    assert np.abs(ec.stress_GPa).max() < 0.05  # at the EOS lattice constant
    reference = cubic_elastic_constants(calc, "Cu", a0)
    cubic = ec.cubic()
    for name in ("C11", "C12", "C44"):
        assert cubic[name] == pytest.approx(reference[name], rel=5e-3), (name, cubic[name], reference[name])
    c = ec.C
    assert np.abs(c - c.T).max() < 1e-8
    for group in ([(0, 0), (1, 1), (2, 2)], [(0, 1), (0, 2), (1, 2)], [(3, 3), (4, 4), (5, 5)]):
        values = [c[idx] for idx in group]
        assert max(values) - min(values) < 1e-8, values
    assert np.abs(c[cubic_zero_mask(2)]).max() < 1e-8


def test_stress_matches_calculator(model, calc, a0):
    atoms = deformed(bulk("Cu", "fcc", a=a0), np.array([[1.01, 0.004, 0], [0.004, 0.99, 0.002], [0, 0.002, 1.0]]))
    ec = elastic_constants(model, atoms, relax_ions=False)
    atoms.calc = calc
    np.testing.assert_allclose(ec.stress_GPa, atoms.get_stress() / GPa, atol=1e-9)


def brugger_c2_at(model, atoms: Atoms, e1: np.ndarray) -> np.ndarray:
    """d^2W/de de at the strain e1 of ``atoms`` (W per reference volume), from the constants of
    the strained crystal: a strain e' of the strained crystal is the total strain
    E1 + F1 E' F1 (F1 symmetric), linear in e', so C_total = (V1/V0) M^-T C' M^-1."""
    f1 = stretch(e1)
    strained = deformed(atoms, f1)
    c_strained = elastic_constants(model, strained, relax_ions=False).C
    m = np.stack([tensor_to_voigt(f1 @ voigt_to_tensor(u) @ f1) for u in np.eye(6)], axis=1)
    m_inv = np.linalg.inv(m)
    return np.linalg.det(f1) * m_inv.T @ c_strained @ m_inv


def test_third_order_matches_differences_of_second_order(fcc, model):
    atoms, ec = fcc
    c3 = ec.C3
    h = 1e-4
    assert np.abs(brugger_c2_at(model, atoms, np.zeros(6))
                  - elastic_constants(model, atoms, relax_ions=False).C).max() < 1e-9
    fd = np.zeros((6, 6, 6))
    for k in range(6):
        step = h * np.eye(6)[k]
        fd[:, :, k] = (brugger_c2_at(model, atoms, step) - brugger_c2_at(model, atoms, -step)) / (2 * h)
    scale = np.abs(c3).max()
    assert scale > 100  # GPa: Cu's C111 is of order -1000 GPa
    np.testing.assert_allclose(fd, c3, atol=1e-5 * scale)  # measured 3e-7
    for p in itertools.permutations(range(3)):
        np.testing.assert_allclose(c3.transpose(p), c3, atol=1e-10 * scale)
    # cubic pattern
    assert np.abs(c3[cubic_zero_mask(3)]).max() < 1e-8 * scale
    cubic = ec.cubic()
    groups = {"C111": [(0, 0, 0), (1, 1, 1), (2, 2, 2)],
              "C112": [(0, 0, 1), (0, 0, 2), (1, 1, 0), (1, 1, 2), (2, 2, 0), (2, 2, 1)],
              "C123": [(0, 1, 2)], "C144": [(0, 3, 3), (1, 4, 4), (2, 5, 5)],
              "C155": [(0, 4, 4), (0, 5, 5), (1, 3, 3), (1, 5, 5), (2, 3, 3), (2, 4, 4)], "C456": [(3, 4, 5)]}
    for name, entries in groups.items():
        values = np.array([c3[idx] for idx in entries])
        assert np.ptp(values) < 1e-8 * scale, (name, values)
        assert cubic[name] == pytest.approx(values.mean(), abs=1e-9 * scale)
    assert cubic["C111"] < 0 and cubic["C112"] < 0 and cubic["C155"] < 0  # stiffening in compression


def test_bravais_lattice_has_no_internal_relaxation(model, a0):
    atoms = bulk("Cu", "fcc", a=a0)
    relaxed = elastic_constants(model, atoms)
    clamped = elastic_constants(model, atoms, relax_ions=False)
    assert relaxed.relaxed_ions and not clamped.relaxed_ions and clamped.C3 is None
    np.testing.assert_allclose(relaxed.C, clamped.C, atol=1e-6 * np.abs(clamped.C).max())


def test_primitive_and_conventional_cells_agree(fcc, model, a0):
    _, ec = fcc
    prim = elastic_constants(model, bulk("Cu", "fcc", a=a0), third_order=True)
    np.testing.assert_allclose(prim.C, ec.C, atol=1e-8 * np.abs(ec.C).max())
    np.testing.assert_allclose(prim.C3, ec.C3, atol=1e-8 * np.abs(ec.C3).max())


def stress_finite_difference_c(atoms: Atoms, calc, *, relax: bool, h: float = 2e-3) -> np.ndarray:
    """C_IJ (GPa) by central differences of the second Piola-Kirchhoff stress over Lagrangian
    strains +-h; with ``relax`` the atoms are relaxed in every strained cell."""
    c = np.zeros((6, 6))
    for k in range(6):
        pk2 = []
        for sign in (1, -1):
            f = stretch(sign * h * np.eye(6)[k])
            strained = deformed(atoms, f)
            strained.calc = calc
            if relax:
                BFGS(strained, logfile=None).run(fmax=1e-5, steps=200)
            sigma = strained.get_stress(voigt=False)  # Cauchy, ASE sign, eV/Å^3
            f_inv = np.linalg.inv(f)
            pk2.append(tensor_to_voigt(np.linalg.det(f) * f_inv @ sigma @ f_inv.T, engineering=False))
        c[:, k] = (pk2[0] - pk2[1]) / (2 * h) / GPa
    return c


def test_hcp_relaxed_ion_matches_relaxed_finite_differences(hcp, model, calc):
    relaxed = elastic_constants(model, hcp)
    clamped = elastic_constants(model, hcp, relax_ions=False)
    assert np.abs(relaxed.stress_GPa).max() < 1e-3
    # internal relaxation softens C11, C66 and stiffens C12 (by about 17 GPa for this model)
    diff = relaxed.C - clamped.C
    assert diff[0, 0] < -5 and diff[5, 5] < -5 and diff[0, 1] > 5
    assert np.abs(diff[2:5, 2:5]).max() < 1e-8  # c-axis strains and the basal shears do not relax
    assert np.all(np.linalg.eigvalsh(relaxed.C) > 0)
    scale = np.abs(clamped.C).max()
    fd_relaxed = stress_finite_difference_c(hcp, calc, relax=True)
    np.testing.assert_allclose(relaxed.C, fd_relaxed, atol=1e-2 * scale)
    big = np.abs(relaxed.C) > 10
    assert np.all(np.abs(relaxed.C - fd_relaxed)[big] < 2e-3 * np.abs(relaxed.C)[big])  # measured 1.3e-4
    fd_clamped = stress_finite_difference_c(hcp, calc, relax=False)
    np.testing.assert_allclose(clamped.C, fd_clamped, atol=1e-3 * scale)
    assert np.abs(clamped.C - fd_relaxed).max() > 10 * np.abs(relaxed.C - fd_relaxed).max()


def test_translation_and_permutation_leave_constants_unchanged(hcp, model):
    reference = elastic_constants(model, hcp, third_order=True)
    scale = np.abs(reference.C).max()
    shifted = hcp.copy()
    shifted.positions += np.array([0.37, -1.21, 2.9])
    shifted.wrap()
    swapped = hcp[[1, 0]]
    for atoms in (shifted, swapped):
        other = elastic_constants(model, atoms, third_order=True)
        np.testing.assert_allclose(other.C, reference.C, atol=1e-10 * scale)
        np.testing.assert_allclose(other.C3, reference.C3, atol=1e-10 * np.abs(reference.C3).max())


def test_committee_clamped_constants_are_member_means(model, a0):
    atoms = bulk("Cu", "fcc", a=a0)
    mean = elastic_constants(model, atoms, relax_ions=False).C
    members = np.mean([elastic_constants(m, atoms, relax_ions=False).C for m in model.members], axis=0)
    np.testing.assert_allclose(mean, members, atol=1e-9 * np.abs(mean).max())


def test_unrelaxed_atoms_are_reported(hcp, model, caplog):
    atoms = hcp.copy()
    atoms.positions[0] += [0.05, 0.0, 0.02]
    with caplog.at_level(logging.WARNING, logger="atomistic.analysis.elastic"):
        elastic_constants(model, atoms)
    assert "relax the atoms" in caplog.text


@pytest.mark.parametrize("pbc", [(True, True, False), (False, False, False)])
def test_non_periodic_structures_are_rejected(model, pbc):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.pbc = pbc
    with pytest.raises(ValueError, match="periodic in all three directions"):
        elastic_constants(model, atoms)


def test_strain_derivatives_rejects_bad_order(model):
    from atomistic.potential.forces import strain_derivatives
    from atomistic.potential.neighbors import build_neighbors
    from atomistic.potential.structure import from_atoms

    s = from_atoms(bulk("Cu", "fcc", a=3.6), model.species)
    with pytest.raises(ValueError, match="order must be 2 or 3"):
        strain_derivatives(model, s, build_neighbors(s, model.cutoff, model.angular_cutoff), 4)
