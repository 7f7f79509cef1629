"""Weighted site energies (the atomistic share of the blended energy, DESIGN section 5): the forces
are exact derivatives of sum_i w_i E_i, unit weights change nothing, and chunking agrees."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

from atomistic import load_potential
from atomistic.potential.forces import predict
from atomistic.potential.neighbors import build_neighbors
from atomistic.potential.structure import from_atoms

from .conftest import SHIPPED_MODEL


@pytest.fixture(scope="module")
def setup():
    model = load_potential(SHIPPED_MODEL)
    atoms = bulk("Cu", "fcc", a=3.59, cubic=True).repeat((4, 2, 2))
    atoms.rattle(0.05, seed=1)
    x = atoms.positions[:, 0] / atoms.cell[0, 0]
    w = np.clip((x - 0.25) / 0.5, 0, 1)
    w = w * w * (3 - 2 * w)  # a C1 ramp along x: zero, blended, one
    return model, atoms, torch.tensor(w, dtype=torch.float64)


def weighted(model, atoms, w, **kw):
    s = from_atoms(atoms, model.species, dtype=torch.float64)
    return predict(model, s, build_neighbors(s, model.cutoff, model.angular_cutoff), weights=w, **kw)


def test_forces_are_the_derivative_of_the_weighted_energy(setup):
    model, atoms, w = setup
    p = weighted(model, atoms, w)
    h = 1e-5
    rng = np.random.default_rng(0)
    for i in rng.choice(len(atoms), 6, replace=False):
        for c in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, c] += h
            minus.positions[i, c] -= h
            fd = -(float(weighted(model, plus, w).energy[0]) - float(weighted(model, minus, w).energy[0])) / (2 * h)
            assert float(p.forces[i, c]) == pytest.approx(fd, abs=1e-6)
    assert torch.abs(p.forces.sum(dim=0)).max() < 1e-10  # each site energy is translation invariant
    assert float(p.energy[0]) == pytest.approx(float((p.energies * w).sum()), rel=1e-14)


def test_unit_weights_change_nothing_and_chunks_agree(setup):
    model, atoms, w = setup
    plain = weighted(model, atoms, None, stress=True)
    ones = weighted(model, atoms, torch.ones(len(atoms), dtype=torch.float64), stress=True)
    assert (torch.allclose(plain.forces, ones.forces, atol=1e-13)
            and torch.allclose(plain.stress, ones.stress, atol=1e-13))
    whole = weighted(model, atoms, w, stress=True, chunk_size=None)
    chunked = weighted(model, atoms, w, stress=True, chunk_size=7)
    assert torch.allclose(whole.forces, chunked.forces, atol=1e-12)
    assert torch.allclose(whole.stress, chunked.stress, atol=1e-13)
    with pytest.raises(ValueError, match="weights: expected shape"):
        weighted(model, atoms, w[:-1])


def test_centres_skip_zero_weight_atoms_and_change_nothing_else(setup):
    """Evaluating only the atoms of nonzero weight (the others are neighbours only) gives the same
    energy, forces and stress, whole or chunked."""
    model, atoms, w = setup
    centres = torch.nonzero(w > 0).squeeze(-1)
    assert 0 < len(centres) < len(atoms)
    full = weighted(model, atoms, w, stress=True)
    for chunk in (None, 5):
        some = weighted(model, atoms, w, stress=True, centres=centres, chunk_size=chunk)
        assert float(some.energy[0]) == pytest.approx(float(full.energy[0]), rel=1e-13)
        assert torch.allclose(some.forces, full.forces, atol=1e-12)
        assert torch.allclose(some.stress, full.stress, atol=1e-13)
        assert torch.allclose(some.energies, full.energies[centres], atol=1e-13)
