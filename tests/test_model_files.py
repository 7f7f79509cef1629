"""Model files: round trip, and refusal of pickles, wrong versions and unknown species."""

import json
import os
import pickle

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from safetensors import safe_open
from safetensors.torch import save_file

from atomistic import (
    BPPotential,
    Committee,
    ModelFileError,
    NetworkSettings,
    NNPCalculator,
    UnknownSpeciesError,
    load_potential,
    read_header,
    save_potential,
)


def _model(seed=0, species=("Cu",)):
    torch.manual_seed(seed)
    return BPPotential(list(species), network=NetworkSettings(hidden=(8,)))


def _energy(model, atoms):
    atoms = atoms.copy()
    atoms.calc = NNPCalculator(model)
    return atoms.get_potential_energy()


def test_round_trip_single_and_committee(tmp_path):
    atoms = bulk("Cu", "fcc", a=3.6).repeat(2)
    atoms.rattle(0.05, seed=0)
    single = _model()
    path = save_potential(single, tmp_path / "one.safetensors", dataset_hash="abc")
    loaded = load_potential(path)
    assert isinstance(loaded, BPPotential)
    assert _energy(loaded, atoms) == pytest.approx(_energy(single, atoms), abs=1e-12)
    header = read_header(path)
    for key in ("format_version", "species", "cutoff", "descriptor", "network", "units", "dataset_hash",
                "code_version"):
        assert key in header
    ens = Committee([_model(1), _model(2), _model(3)])
    loaded = load_potential(save_potential(ens, tmp_path / "ens.safetensors"))
    assert isinstance(loaded, Committee) and len(loaded) == 3
    assert _energy(loaded, atoms) == pytest.approx(_energy(ens, atoms), abs=1e-12)


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_files_are_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.marker = marker
    raw = tmp_path / "evil.pt"
    raw.write_bytes(pickle.dumps({"weights": payload}))
    with pytest.raises(ModelFileError, match="pickled"):
        load_potential(raw)
    zipped = tmp_path / "evil_zip.pt"
    torch.save({"weights": payload}, zipped)
    with pytest.raises(ModelFileError, match="pickled"):
        load_potential(zipped)
    assert not marker.exists()


def _rewrite_header(src, dst, **changes):
    with safe_open(str(src), framework="pt") as f:
        header = json.loads(f.metadata()["multiscale"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    header.update(changes)
    save_file(tensors, str(dst), metadata={"multiscale": json.dumps(header)})
    return dst


def test_wrong_version_and_unknown_species_in_file(tmp_path):
    good = save_potential(_model(), tmp_path / "good.safetensors")
    with pytest.raises(ModelFileError, match="format_version 99"):
        load_potential(_rewrite_header(good, tmp_path / "v99.safetensors", format_version=99))
    with pytest.raises(ModelFileError, match="Xq"):
        load_potential(_rewrite_header(good, tmp_path / "xq.safetensors", species=["Xq"]))
    with pytest.raises(ModelFileError, match="not a JSON object"):
        path = tmp_path / "list.safetensors"
        with safe_open(str(good), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        save_file(tensors, str(path), metadata={"multiscale": "[1, 2]"})
        load_potential(path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match="not a safetensors"):
        load_potential(tmp_path / "junk.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(ModelFileError, match="header"):
        load_potential(tmp_path / "bare.safetensors")


def test_atoms_with_an_unknown_element_are_named(tmp_path):
    calc = NNPCalculator(_model())
    atoms = molecule("CH4")
    atoms.calc = calc
    with pytest.raises(UnknownSpeciesError, match="C, H"):
        atoms.get_potential_energy()


def test_calculator_results_and_committee_disagreement():
    members = [_model(k) for k in range(3)]
    ens = Committee(members)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=2)
    atoms.calc = NNPCalculator(ens)
    atoms.get_potential_energy()
    r = atoms.calc.results
    for key in ("energy", "free_energy", "forces", "stress", "energies", "energy_spread", "force_disagreement"):
        assert key in r
    single = []
    for m in members:
        a = atoms.copy()
        a.calc = NNPCalculator(m)
        single.append((a.get_potential_energy(), a.get_forces()))
    energies = np.array([e for e, _ in single])
    forces = np.array([f for _, f in single])
    assert r["energy"] == pytest.approx(energies.mean(), abs=1e-10)
    assert r["energies"].sum() == pytest.approx(r["energy"], abs=1e-10)
    assert r["energy_spread"] == pytest.approx(energies.std(), abs=1e-10)
    d = max(np.linalg.norm(forces[a] - forces[b], axis=1).max() for a in range(3) for b in range(a + 1, 3))
    assert r["force_disagreement"] == pytest.approx(d, abs=1e-10)
    np.testing.assert_allclose(r["forces"], forces.mean(0), atol=1e-10)
