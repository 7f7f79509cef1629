"""Training: the loss falls, checkpoints resume exactly, committee members differ, the train case runs end to end."""

import json

import numpy as np
import pytest
import torch

from atomistic import Committee, load_potential
from atomistic.potential.descriptors import DescriptorSettings
from atomistic.potential.models import BPPotential, NetworkSettings
from atomistic.recipes import cu_emt
from atomistic.training.data import prepare, read_frames, write_frames
from atomistic.training.trainer import TrainSettings, fit, initialise

SPECIES = ["Cu"]
DESCRIPTOR = DescriptorSettings(cutoff=4.0, angular_cutoff=3.5, n_radial=6, n_angular=3)


@pytest.fixture(scope="module")
def frames():
    return cu_emt.build(seed=1, size=0.1, families=("strained_bulk", "eos", "md"))


@pytest.fixture(scope="module")
def prepared(frames):
    return prepare(frames, SPECIES, DESCRIPTOR.cutoff)


def _fresh(prepared, seed=0):
    torch.manual_seed(seed)
    model = BPPotential(SPECIES, DESCRIPTOR, NetworkSettings(hidden=(16,)))
    initialise(model, prepared)
    return model


def test_loss_falls(prepared):
    """Also on CUDA when MULTISCALE_TEST_DEVICE=cuda (the GPU check runs it)."""
    from atomistic.testing import TEST_DEVICE

    model = _fresh(prepared)
    h = fit(model, prepared[:-4], prepared[-4:],
            TrainSettings(max_epochs=15, batch_size=4, progress=False, device=TEST_DEVICE))
    assert h["train_loss"][-1] < 0.3 * h["train_loss"][0]
    assert min(h["valid_loss"]) < h["valid_loss"][0]


def test_resume_continues_exactly(prepared, tmp_path):
    settings = TrainSettings(max_epochs=4, batch_size=4, progress=False)
    straight = _fresh(prepared)
    fit(straight, prepared[:-4], prepared[-4:], settings, tmp_path / "a.ckpt", seed=3)
    interrupted = _fresh(prepared)
    fit(interrupted, prepared[:-4], prepared[-4:], TrainSettings(max_epochs=2, batch_size=4, progress=False),
        tmp_path / "b.ckpt", seed=3)
    resumed = _fresh(prepared)
    h = fit(resumed, prepared[:-4], prepared[-4:], settings, tmp_path / "b.ckpt", seed=3, resume=True)
    assert h["epoch"] == [0, 1, 2, 3]
    a = torch.load(tmp_path / "a.ckpt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b.ckpt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_ase_database_source(frames, tmp_path):
    import ase.db

    with ase.db.connect(str(tmp_path / "data.db")) as db:
        for a in frames[:5]:
            db.write(a)
    back = read_frames(tmp_path / "data.db")
    assert len(back) == 5
    np.testing.assert_allclose(back[2].get_forces(), frames[2].get_forces())
    write_frames(frames[:5], tmp_path / "data.extxyz")
    assert len(read_frames(tmp_path / "data.extxyz")) == 5


def test_shipped_train_case_in_a_tiny_variant_and_resume(tmp_path):
    """cases/cu_emt/train.toml itself, with a small dataset, two members and three epochs."""
    from dataclasses import replace

    from multiscale.api import run
    from multiscale.case_file import load_case

    from .conftest import ROOT

    shipped = ROOT / "cases" / "cu_emt" / "train.toml"
    case = load_case(shipped)
    case = replace(case, dataset=replace(case.dataset, size=0.05),
                   training=replace(case.training, max_epochs=3, progress=False),
                   committee=replace(case.committee, members=2),
                   learning_curve=replace(case.learning_curve, fractions=(0.5,)),
                   validation=replace(case.validation, reference="none"),
                   output=replace(case.output, model_name="model.safetensors"))
    out = tmp_path / "out"
    run(case, shipped.parent, output=out, progress=False)
    for name in ("dataset.extxyz", "model.safetensors", "metrics.json", "report.json", "parity.png",
                 "learning_curve.png", "training_curves.png", "checkpoints/member0.ckpt",
                 "checkpoints/member1.ckpt"):
        assert (out / name).exists(), name
    model = load_potential(out / "model.safetensors")
    assert isinstance(model, Committee) and len(model) == 2
    w0, w1 = (m.networks[0][0].weight for m in model.members)
    assert not torch.equal(w0, w1)  # different seeds and subsets
    report = json.loads((out / "report.json").read_text())
    assert report["test_errors"]["committee"]["force_mae_meV_per_A"] > 0
    assert [r["n_frames"] for r in report["learning_curve"]][-1] > report["learning_curve"][0]["n_frames"]
    # resume: finished members are not retrained, and the result is the same model
    run(case, shipped.parent, output=out, resume=True, progress=False)
    again = load_potential(out / "model.safetensors")
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # resuming with other settings is refused, not silently mixed
    from atomistic.training.trainer import CheckpointMismatch

    changed = replace(case, training=replace(case.training, lr=1e-4))
    with pytest.raises(CheckpointMismatch, match="other settings"):
        run(changed, shipped.parent, output=out, resume=True, progress=False)


def test_training_frames_drop_cross_body_edges():
    """Frames with body labels train on the masked graph, as the calculator evaluates them."""
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.arrays["body"] = (atoms.positions[:, 2] > 3.5).astype(int)
    atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=np.zeros((len(atoms), 3)))
    (frame,) = prepare([atoms], SPECIES, 5.0)
    i, j = frame.edges[0], frame.edges[1]
    body = torch.as_tensor(atoms.arrays["body"])
    assert bool((body[i] == body[j]).all()) and len(i) > 0
