"""The atomistic region on its own (no mesh, no MPI): the energy sum_i beta_i E_i^NN,masked and its
exact gradient, the Hessian-vector product, the preconditioner, masking, snapshots and bad input.

A thin bar of the shipped Cu model, coupled through its x faces (about a hundred atoms). Lengths Å,
energies eV, forces eV/Å.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from atomistic.potential.forces import predict
from atomistic.potential.neighbors import build_neighbors
from atomistic.potential.structure import from_atoms
from coupling.atomistic_region import REGIONS, AtomisticRegion
from coupling.errors import CouplingInputError
from coupling.handshake import Handshake, fill_region

A0 = 3.59  # Å, about the model's Cu
LENGTHS = (10 * A0, 2 * A0, 2 * A0)
SPLIT = 5 * A0


def handshake() -> Handshake:
    return Handshake((3 * A0, -1.0, -1.0), (7 * A0, LENGTHS[1] + 1, LENGTHS[2] + 1), width_A=5.0, pad_A=5.2,
                     coupled_faces=("xmin", "xmax"))


def bar(split: bool = False):
    return fill_region("Cu", "fcc", A0, ((1, 0, 0), (0, 1, 0)), handshake(), LENGTHS,
                       split_x_A=SPLIT if split else None)


def site_energies(model, atoms, d, mask_bodies=True) -> tuple[np.ndarray, np.ndarray]:
    """Unweighted site energies (n,) and the gradient (n, 3) of their sum, straight from the model."""
    moved = atoms.copy()
    moved.positions = atoms.positions + d
    s = from_atoms(moved, model.species, dtype=torch.float64)
    p = predict(model, s, build_neighbors(s, model.cutoff, model.angular_cutoff, mask_bodies=mask_bodies))
    return p.energies.detach().numpy(), -p.forces.detach().numpy()


def test_regions_weights_and_masses(model):
    atoms = bar()
    region = AtomisticRegion(atoms, model, handshake())
    sets = handshake().classify(atoms.positions)
    counts = region.counts()
    assert list(counts) == list(REGIONS) and sum(counts.values()) == len(atoms) == region.n_atoms
    for code, name in enumerate(REGIONS):
        assert np.array_equal(region.codes == code, sets[name]) and counts[name] > 0
    assert np.array_equal(region.free, np.flatnonzero(sets["free"]))
    assert np.allclose(region.beta, handshake().beta(atoms.positions))
    assert np.all(region.beta[region.free] == 1.0) and np.all(region.beta[region.codes == 2] == 0.0)
    assert np.allclose(region.masses, atoms.get_masses()) and region.body is None


def test_the_energy_is_the_blended_sum_of_site_energies_and_its_gradient_is_exact(model):
    atoms = bar()
    region = AtomisticRegion(atoms, model, handshake())
    rng = np.random.default_rng(1)
    d = 0.03 * rng.standard_normal((len(atoms), 3))
    energy, grad = region.energy_and_gradient(d)
    e_i, _ = site_energies(model, atoms, d)
    assert energy == pytest.approx(float(region.beta @ e_i), rel=1e-12)
    parts, grad_parts = region.evaluate(d)
    assert list(parts) == ["atoms"] and np.array_equal(grad, grad_parts)
    h = 1e-5
    picks = [int(np.flatnonzero(region.codes == code)[0]) for code in (0, 1, 2)]  # free, handshake, pad
    for i in picks:
        for c in range(3):
            plus, minus = d.copy(), d.copy()
            plus[i, c] += h
            minus[i, c] -= h
            fd = (region.energy_and_gradient(plus)[0] - region.energy_and_gradient(minus)[0]) / (2 * h)
            assert grad[i, c] == pytest.approx(fd, abs=1e-7)
    assert np.abs(grad.sum(axis=0)).max() < 1e-10  # every site energy is translation invariant


def test_masked_bodies_do_not_see_each_other(model):
    atoms = bar(split=True)
    body = atoms.arrays["body"]
    whole = AtomisticRegion(atoms, model, handshake())
    halves = [AtomisticRegion(atoms[body == b], model, handshake()) for b in (1, 2)]
    d = 0.02 * np.random.default_rng(2).standard_normal((len(atoms), 3))
    energy, grad = whole.energy_and_gradient(d)
    parts = [h.energy_and_gradient(d[body == b]) for h, b in zip(halves, (1, 2))]
    assert energy == pytest.approx(parts[0][0] + parts[1][0], rel=1e-12)
    for (_e, g), b in zip(parts, (1, 2)):
        assert np.allclose(grad[body == b], g, atol=1e-12)
    unmasked = AtomisticRegion(atoms, model, handshake(), mask_bodies=False)
    assert unmasked.energy_and_gradient(d)[0] < energy - 0.1  # the bonds across the split, counted


def test_hessian_vector_product_is_the_derivative_of_the_unweighted_gradient(model):
    atoms = bar()
    region = AtomisticRegion(atoms, model, handshake())
    rng = np.random.default_rng(3)
    d, v = 0.02 * rng.standard_normal((len(atoms), 3)), rng.standard_normal((len(atoms), 3))
    hv = region.hessian_vector_product(d, v)
    h = 1e-5
    fd = (site_energies(model, atoms, d + h * v)[1] - site_energies(model, atoms, d - h * v)[1]) / (2 * h)
    assert np.abs(hv - fd).max() < 1e-6 * np.abs(fd).max()
    assert np.array_equal(region.hessian_vector_product(None, v), region.hessian_vector_product(0 * d, v))


def test_the_preconditioner_is_symmetric_semidefinite_and_definite_on_the_free_atoms(model):
    region = AtomisticRegion(bar(), model, handshake())
    P = region.preconditioner()
    assert P.shape == (3 * region.n_atoms,) * 2 and region.mu > 0
    dense = P.toarray()
    assert np.allclose(dense, dense.T)
    eig = np.linalg.eigvalsh(dense)
    assert eig.min() > -1e-12 * eig.max()
    free = (3 * region.free[:, None] + np.arange(3)).ravel()
    assert np.linalg.eigvalsh(dense[np.ix_(free, free)]).min() > 0


def test_a_snapshot_carries_positions_weights_regions_forces_and_bodies(model):
    atoms = bar(split=True)
    region = AtomisticRegion(atoms, model, handshake())
    d = np.full((len(atoms), 3), 0.1)
    forces = -region.energy_and_gradient(d)[1]
    snap = region.atoms(d, forces)
    assert np.allclose(snap.positions, atoms.positions + 0.1) and not snap.pbc.any()
    assert list(snap.arrays) == ["numbers", "positions", "beta", "region", "forces", "body"]
    assert np.array_equal(snap.arrays["region"], region.codes) and np.array_equal(snap.arrays["body"], region.body)
    assert "forces" not in region.atoms(d).arrays


def test_bad_atoms_and_models_are_refused(model):
    atoms = bar()
    periodic = atoms.copy()
    periodic.pbc = True
    with pytest.raises(CouplingInputError, match="periodic"):
        AtomisticRegion(periodic, model, handshake())
    with pytest.raises(CouplingInputError, match="float64"):
        AtomisticRegion(atoms, copy.deepcopy(model).float(), handshake())
    far = atoms.copy()
    far.positions[0] = [0.5, 1.0, 1.0]  # past the pad, in the continuum
    with pytest.raises(CouplingInputError, match="beyond the handshake's pad"):
        AtomisticRegion(far, model, handshake())
    gold = atoms.copy()
    gold.symbols[0] = "Au"
    with pytest.raises(CouplingInputError, match="atoms: "):
        AtomisticRegion(gold, model, handshake())
    with pytest.raises(CouplingInputError, match="at least one atom"):
        AtomisticRegion(None, model, handshake())
