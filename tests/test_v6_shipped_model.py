"""DESIGN V6: the shipped Cu committee against EMT itself, property by property."""

import pytest
from ase.calculators.emt import EMT

from atomistic import NNPCalculator, load_potential, read_header
from atomistic.analysis.properties import V6_TOLERANCES, fcc_properties

from .conftest import SHIPPED_MODEL

pytestmark = pytest.mark.skipif(not SHIPPED_MODEL.exists(), reason="shipped model not present")


@pytest.fixture(scope="module")
def properties():
    model = load_potential(SHIPPED_MODEL)
    return fcc_properties(NNPCalculator(model), "Cu", 3.6), fcc_properties(EMT(), "Cu", 3.6)


@pytest.mark.parametrize("name", sorted(V6_TOLERANCES))
def test_property_matches_emt(properties, name):
    model, emt = properties
    assert model[name] == pytest.approx(emt[name], rel=V6_TOLERANCES[name]), (name, model[name], emt[name])


def test_bulk_modulus_and_vacancy_close_to_emt(properties):
    model, emt = properties  # not gated by V6; the shipped model must still be sane
    assert model["B"] == pytest.approx(emt["B"], rel=0.05)
    assert model["E_vac"] == pytest.approx(emt["E_vac"], rel=0.10)


def test_header_records_provenance():
    h = read_header(SHIPPED_MODEL)
    assert h["species"] == ["Cu"] and h["n_members"] == 4 and h["dataset_hash"]
    assert h["units"]["energy"] == "eV" and h["provenance"]["case"] == "cu_emt"
