"""DESIGN V1-V3 and the body mask on untrained models (one and two elements) and the shipped model."""

import pytest
import torch

from atomistic import BPPotential, DescriptorSettings, NetworkSettings, load_potential
from atomistic.testing import ModelChecks

from .conftest import SHIPPED_MODEL


def _untrained(species, seed=0, **descriptor):
    torch.manual_seed(seed)
    model = BPPotential(species, DescriptorSettings(**descriptor), NetworkSettings(hidden=(16, 16)))
    with torch.no_grad():  # give the offsets and scale non-trivial values
        model.e0.copy_(torch.linspace(-3.0, -1.0, len(species), dtype=torch.float64))
        model.energy_scale.fill_(0.7)
    return model.eval()


class TestUntrainedCu(ModelChecks):
    def make_model(self):
        return _untrained(["Cu"], cutoff=5.0, angular_cutoff=4.0)


class TestUntrainedCuAgCosine(ModelChecks):
    """Two elements (element-resolved pairs) and Behler's cosine cutoff, all angular orders."""

    def make_model(self):
        return _untrained(["Cu", "Ag"], seed=1, cutoff=4.5, angular_cutoff=4.5, cutoff_function="cosine",
                          angular_terms=((1, 1), (1, -1), (2, -1), (3, 1), (4, -1), (6, 1)))


@pytest.mark.skipif(not SHIPPED_MODEL.exists(), reason="shipped model not present")
class TestShippedModel(ModelChecks):
    lattice_constant = 3.59

    def make_model(self):
        return load_potential(SHIPPED_MODEL)


def test_stress_of_a_structure_without_cell_is_nan():
    from ase.build import molecule

    from atomistic.potential.forces import predict
    from atomistic.potential.neighbors import build_neighbors
    from atomistic.potential.structure import from_atoms

    model = _untrained(["Cu"])
    atoms = molecule("H2")
    atoms.set_chemical_symbols(["Cu", "Cu"])
    atoms.positions *= 3
    s = from_atoms(atoms, model.species)
    p = predict(model, s, build_neighbors(s, model.cutoff, model.angular_cutoff), stress=True)
    assert torch.isnan(p.stress).all() and torch.isfinite(p.forces).all()


def test_chunked_evaluation_equals_whole_for_a_batch_with_stress():
    from ase.build import bulk

    from atomistic.potential.forces import predict
    from atomistic.potential.neighbors import build_neighbors
    from atomistic.potential.structure import from_atoms

    model = _untrained(["Cu", "Ag"])
    frames = [bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3) for _ in range(2)]
    frames[1].rattle(0.1, seed=1)
    frames[1].symbols[::3] = "Ag"
    s = from_atoms(frames, model.species)
    n = build_neighbors(s, model.cutoff, model.angular_cutoff)
    whole = predict(model, s, n, stress=True, chunk_size=None)
    chunked = predict(model, s, n, stress=True, chunk_size=37)
    for a, b in ((whole.energy, chunked.energy), (whole.forces, chunked.forces), (whole.stress, chunked.stress)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
