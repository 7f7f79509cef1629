"""Active learning (issue 6): the append-only store, the oracle's failure paths, the loop with a
real oracle (EMT; GFN2-xTB when tblite is installed), and resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from ase.build import fcc111, molecule
from ase.calculators.emt import EMT
from ase.io import read

from atomistic import DescriptorSettings, NetworkSettings
from atomistic.active import (
    ActiveLearning,
    ActiveLearningError,
    ActiveSettings,
    LabelledStore,
    Oracle,
    OracleFailure,
    OracleSpec,
    Stage,
    committee_errors,
    spearman,
)
from atomistic.active.loop import label_initial, train_generation_zero
from atomistic.training.data import label, prepare
from atomistic.training.trainer import TrainSettings

from .conftest import ROOT
from .oracle_doubles import FlakyEMT, NaNCalculator, SlowEMTFactory

TINY_DESCRIPTOR = DescriptorSettings(cutoff=4.5, n_radial=6, angular_cutoff=3.5, n_angular=2,
                                     angular_terms=((1, 1), (1, -1)))
TINY_NETWORK = NetworkSettings(hidden=(8,))


def slab():
    a = fcc111("Cu", size=(2, 2, 3), a=3.59, vacuum=5.0)
    a.info.clear()
    return a


def rattled(atoms, n, seed=0, scale=0.05):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = atoms.copy()
        a.positions += rng.normal(scale=scale, size=a.positions.shape)
        out.append(a)
    return out


def tiny_settings(**kw):
    base = dict(stages=(Stage(600.0, 60),), timestep_fs=2.0, check_every=5, force_threshold_eV_A=0.05,
                cooldown_steps=10, max_oracle_calls=4,
                fine_tune=TrainSettings(max_epochs=4, lr=1e-3, patience=4, progress=False))
    base.update(kw)
    return ActiveSettings(**base)


def start_run(work, oracle, atoms, species=("Cu",), n_initial=4):
    store = LabelledStore(work)
    label_initial(store, oracle, rattled(atoms, n_initial))
    committee = train_generation_zero(prepare(store.frames, list(species), TINY_DESCRIPTOR.cutoff), list(species),
                                TINY_DESCRIPTOR, TINY_NETWORK, TrainSettings(max_epochs=15, progress=False),
                                members=3, seed=0, workdir=work / "checkpoints")
    return store, committee


# --- the store ---------------------------------------------------------------------------------
def test_store_is_append_only_and_cuts_a_torn_record(tmp_path):
    frames = rattled(slab(), 3)
    store = LabelledStore(tmp_path)
    for k, a in enumerate(frames):
        store.append(label(a, -k, np.full((len(a), 3), 0.1 * k)), k, source="test")
    with pytest.raises(ValueError, match="already"):
        store.append(label(frames[0], 0.0, np.zeros((len(frames[0]), 3))), 1)
    whole = (tmp_path / "dataset.extxyz").read_bytes()
    for cut in (7, len(whole) // 7, 3):  # a kill in the middle of the last write
        (tmp_path / "dataset.extxyz").write_bytes(whole + whole[:cut])
        again = LabelledStore(tmp_path)
        assert again.ids == [0, 1, 2]
        assert (tmp_path / "dataset.extxyz").read_bytes() == whole
    assert [a.get_potential_energy() for a in again.frames] == [0.0, -1.0, -2.0]
    np.testing.assert_allclose(again.frames[2].positions, frames[2].positions, atol=1e-8)
    np.testing.assert_allclose(again.frames[2].get_forces(), 0.2)
    where = again.record_failure(frames[0], 3, "it broke", "exception", source="test")
    assert read(where).info["failure"] == "exception"
    reopened = LabelledStore(tmp_path)
    assert 3 in reopened and reopened.failures[0]["reason"] == "it broke"


def test_generation_zero_checkpoints_resume_on_the_data_read_back_from_the_store(tmp_path):
    """A kill during generation-0 training: the resumed run trains on the store as read back from
    dataset.extxyz, so the first run must have trained on exactly that (the checkpoints'
    fingerprints cover the data), and the labels must still be the oracle's numbers bit for bit."""
    frames = rattled(slab(), 3)
    store = LabelledStore(tmp_path)
    label_initial(store, Oracle(EMT()), frames)
    twin = Oracle(EMT())  # the same calls in the same order: the same numbers to the last bit
    for ref, stored in zip(map(twin, frames), store.frames):
        assert np.array_equal(stored.positions, ref.positions)
        assert np.array_equal(stored.get_forces(), ref.get_forces())
        assert stored.get_potential_energy() == ref.get_potential_energy()
    reread = LabelledStore(tmp_path).frames  # what --resume trains on

    def generation_zero(frames):
        return train_generation_zero(prepare(frames, ["Cu"], TINY_DESCRIPTOR.cutoff), ["Cu"], TINY_DESCRIPTOR,
                                     TINY_NETWORK, TrainSettings(max_epochs=2, progress=False), members=2,
                                     seed=0, workdir=tmp_path / "checkpoints")

    first = generation_zero(store.frames)  # the first run, killed once its member checkpoints exist
    resumed = generation_zero(reread)  # --resume: picks them up (it raised CheckpointMismatch)
    for a, b in zip(first.members, resumed.members):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    for a, b in zip(store.frames, reread):
        assert np.array_equal(a.positions, b.positions) and np.array_equal(a.get_forces(), b.get_forces())


# --- the oracle --------------------------------------------------------------------------------
def test_oracle_labels_like_its_calculator_and_classifies_failures():
    atoms = rattled(slab(), 1)[0]
    labelled = Oracle(factory=OracleSpec("emt"))(atoms)
    ref = atoms.copy()
    ref.calc = EMT()
    assert labelled.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-12)
    np.testing.assert_allclose(labelled.get_forces(), ref.get_forces(), atol=1e-12)
    with pytest.raises(OracleFailure) as bad:
        Oracle(NaNCalculator())(atoms)
    assert bad.value.kind == "non_finite"
    flaky = Oracle(FlakyEMT(fail_on=[0]))
    with pytest.raises(OracleFailure) as crash:
        flaky(atoms)
    assert crash.value.kind == "exception" and "simulated crash" in str(crash.value)
    flaky(atoms)  # the next call works
    assert (flaky.calls, flaky.failures) == (2, 1)


def test_oracle_timeout_stops_the_worker_and_the_next_label_works():
    atoms = rattled(slab(), 1)[0]
    far = atoms.copy()
    far.positions[0, 0] += 100.0  # SlowEMT hangs on this one
    with Oracle(factory=SlowEMTFactory(seconds=60.0, slow_above=50.0), timeout_s=5.0) as oracle:
        t0 = time.perf_counter()
        with pytest.raises(OracleFailure) as hung:
            oracle(far)
        assert hung.value.kind == "timeout" and time.perf_counter() - t0 < 30
        labelled = oracle(atoms)  # a fresh worker
    ref = atoms.copy()
    ref.calc = EMT()
    np.testing.assert_allclose(labelled.get_forces(), ref.get_forces(), atol=1e-12)


def test_xtb_oracle_reports_an_unconverged_scf():
    pytest.importorskip("tblite", reason="the xTB oracle is the optional extra 'oracles'")
    water = molecule("H2O")
    good = Oracle(factory=OracleSpec("gfn2-xtb"))(water)
    assert np.isfinite(good.get_forces()).all() and good.get_potential_energy() < 0
    with pytest.raises(OracleFailure) as bad:
        Oracle(factory=OracleSpec("gfn2-xtb", max_scf_iterations=1))(water)
    assert bad.value.kind == "calculation_failed" and "converge" in str(bad.value).lower()


# --- the loop ----------------------------------------------------------------------------------
def test_loop_labels_retrains_and_survives_a_failing_oracle(tmp_path):
    torch.manual_seed(0)
    oracle = Oracle(FlakyEMT(fail_on=[5]))  # calls 0-3 are the starting data; query 2 fails
    store, committee = start_run(tmp_path, oracle, slab())
    gen0 = [torch.cat([p.detach().flatten().clone() for p in m.parameters()]) for m in committee.members]
    loop = ActiveLearning(committee, oracle, slab(), tiny_settings(replicas=2, subset_fraction=0.75), tmp_path, store)
    summary = loop.run()
    assert summary["status"] == "budget" and summary["oracle_calls"] == 4
    assert summary["failures"] == 1 and len(store.failures) == 1
    failed = store.failures[0]
    assert failed["kind"] == "exception" and os.path.exists(failed["configuration"])
    ids = store.ids
    assert len(ids) == len(set(ids)) == 4 + 3 and failed["label_id"] not in ids
    queries = [a for a in store.frames if a.info["source"] == "query"]
    assert all(a.info["d_eV_per_A"] > 0.05 for a in queries)
    # every label is the oracle's own answer for that configuration
    for a in queries:
        ref = a.copy()
        ref.calc = EMT()
        np.testing.assert_allclose(a.get_forces(), ref.get_forces(), atol=1e-6)  # extxyz keeps 8 decimals
    rows = loop.generations
    assert [r["generation"] for r in rows] == list(range(summary["generation"] + 1))
    assert rows[-1]["n_labels"] == 7 and summary["generation"] >= 2
    assert (tmp_path / "generations" / f"gen_{summary['generation']:03d}.safetensors").exists()
    # every member was fine-tuned (warm start: same architecture, moved weights)
    for m, w0 in zip(loop.committee.members, gen0):
        w = torch.cat([p.detach().flatten() for p in m.parameters()])
        assert w.shape == w0.shape and not torch.equal(w, w0)
    trace = np.atleast_1d(np.genfromtxt(tmp_path / "disagreement.csv", delimiter=",", names=True))
    assert trace["query"].sum() == 4 and set(trace["replica"]) == {0, 1}


def test_loop_stops_when_the_oracle_keeps_failing_and_resumes_with_a_working_one(tmp_path):
    tblite = pytest.importorskip("tblite", reason="the xTB oracle is the optional extra 'oracles'")
    del tblite
    water = molecule("H2O")
    good = Oracle(factory=OracleSpec("gfn2-xtb"))
    store, committee = start_run(tmp_path, good, water, species=("H", "O"))
    settings = tiny_settings(timestep_fs=0.5, max_consecutive_failures=2, max_oracle_calls=4)
    broken = Oracle(factory=OracleSpec("gfn2-xtb", max_scf_iterations=1))  # never converges
    with pytest.raises(ActiveLearningError, match="failed 2 times in a row"):
        ActiveLearning(committee, broken, water, settings, tmp_path, store).run()
    assert [f["kind"] for f in store.failures] == ["calculation_failed"] * 2
    failed_ids = {f["label_id"] for f in store.failures}
    resumed = ActiveLearning(committee, good, water, settings, tmp_path, LabelledStore(tmp_path), resume=True)
    summary = resumed.run()
    assert summary["oracle_calls"] == 4 and summary["failures"] == 2
    assert not failed_ids & set(resumed.store.ids)  # a failed configuration is never relabelled
    assert len(resumed.store) == 4 + 2


def test_committee_errors_rank_their_own_mistakes(model):
    """On EMT MD frames the shipped committee's d tracks its true error (Spearman > 0)."""
    frames = []
    atoms = slab().repeat((2, 2, 1))
    for k, a in enumerate(rattled(atoms, 12, scale=0.02)):
        a.positions += np.random.default_rng(k).normal(scale=0.02 * k, size=a.positions.shape)
        a.calc = EMT()
        frames.append(label(a, a.get_potential_energy(), a.get_forces()))
    e = committee_errors(model, frames)
    assert e.d.shape == e.max_error.shape == (12,)
    assert e.atom_error.shape == (12 * len(atoms),)
    assert spearman(e.d, e.max_error) > 0.5
    assert e.force_rmse >= e.force_mae > 0


# --- kill -9 and resume ------------------------------------------------------------------------
KILL_CASE = """
kind = "active_learning"
name = "kill_test"
threads = 1
[oracle]
name = "emt"
[structure]
element = "Cu"
surface = "fcc111"
size = [2, 2, 3]
a = 3.59
vacuum_A = 5.0
[model]
species = ["Cu"]
[model.descriptor]
cutoff = 4.5
n_radial = 6
angular_cutoff = 3.5
n_angular = 2
angular_terms = [[1, 1], [1, -1]]
[model.network]
hidden = [8]
[committee]
members = 2
[initial]
n_frames = 3
[training]
max_epochs = 10
progress = false
[loop]
timestep_fs = 2.0
check_every = 5
force_threshold_eV_A = 0.02
cooldown_steps = 5
max_oracle_calls = 10
replicas = 2
stages = [{temperature_K = 500.0, steps = 200}]
[loop.fine_tune]
max_epochs = 25
patience = 25
progress = false
[reference]
frames_per_temperature = 3
interval_steps = 5
equilibration_steps = 5
"""


def _records(path) -> int:
    return path.read_text().count("label_id=") if path.exists() else 0


def test_sigkill_at_any_moment_loses_no_label_and_labels_none_twice(tmp_path):
    case = tmp_path / "case.toml"
    case.write_text(KILL_CASE)
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "multiscale.cli", "run", str(case), "--output", str(out), "-q"]
    dataset = out / "dataset.extxyz"
    rng = np.random.default_rng(1)
    kills = 0
    for attempt in range(6):
        proc = subprocess.Popen(cmd + (["--resume"] if attempt else []), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        target = _records(dataset) + 1 + attempt % 2  # kill right after a label, or a little later
        while proc.poll() is None and _records(dataset) < target:
            time.sleep(0.02)
        if proc.poll() is not None:
            break
        time.sleep(rng.uniform(0.0, 1.5))  # during labelling, retraining or MD
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills >= 3, "the run finished before it could be interrupted three times"
    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    frames = read(dataset, ":")
    ids = [a.info["label_id"] for a in frames]
    assert len(ids) == len(set(ids)), "a label id was used twice"
    coords = {np.round(a.positions, 6).tobytes() for a in frames}
    assert len(coords) == len(frames), "a configuration was labelled twice"
    report = json.loads((out / "report.json").read_text())
    state = torch.load(out / "state.pt", weights_only=True)
    # every id ever handed out is in the dataset (none lost), and the oracle was asked exactly once each
    assert sorted(ids) == list(range(state["next_label_id"]))
    assert report["loop"]["oracle_calls"] == 10 == sum(a.info["source"] == "query" for a in frames)
    assert report["loop"]["generation"] == report["learning"][-1]["generation"]
    assert report["learning"][-1]["n_labels"] == len(frames)
    for a in frames:  # every record is whole and equals the oracle's label
        ref = a.copy()
        ref.calc = EMT()
        np.testing.assert_allclose(a.get_forces(), ref.get_forces(), atol=1e-6)  # extxyz keeps 8 decimals
