"""kind = "surface_hopping" resumes: a swarm continued from its checkpoint takes the steps (and
draws the random numbers) of an uninterrupted one, bit for bit; a run SIGKILLed between two
checkpoints and continued with ``--resume`` writes the outputs of an uninterrupted run; a
checkpoint of other settings is refused with exit 2 and one line naming them; ``--resume`` of a
finished run rewrites its outputs unchanged, and with no checkpoint starts from step 0."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from multiscale.cli import main

from .conftest import ROOT

BOHR_A = 0.52917721067

# Tully's model 1 crossed by 40 trajectories in 130 steps (they all leave |x| < 6 bohr): about
# 13 hops up and 5 down, a checkpoint every 25 steps
TINY = """kind = "surface_hopping"
name = "tiny_tully1"
[model]
analytic = "tully1"
[initial]
trajectories = {trajectories}
x0_bohr = -6.0
momentum_au = 12.0
[fssh]
timestep_fs = 0.5
seed = {seed}
[run]
steps = 200
record_every = 10
exit_bohr = 6.0
checkpoint_every = 25
"""

# the CLI in a process that SIGKILLs itself right after step argv[1]: a kill at a known step
# between two checkpoints (the steps since the last one are lost, as in a real crash)
KILLED_AT = """
import os, signal, sys
from atomistic.multistate import fssh
step, kill_at = fssh.SurfaceHopping.step, int(sys.argv[1])
def stepped(self):
    step(self)
    if self.steps_done == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
fssh.SurfaceHopping.step = stepped
from multiscale.cli import main
sys.exit(main(sys.argv[2:]))
"""

OUTPUTS = ("populations.csv", "hops.csv", "hops_vs_time.csv", "final.extxyz")
#: report entries that are wall times
CLOCKS = ("wall_s", "timings_s", "step_us_per_trajectory")


def tiny_case(folder: Path, trajectories: int = 40, seed: int = 1) -> Path:
    path = folder / f"tiny_{trajectories}_{seed}.toml"
    path.write_text(TINY.format(trajectories=trajectories, seed=seed))
    return path


def numbers(out: Path) -> dict:
    """report.json without its wall times (the training's too)."""
    report = json.loads((out / "report.json").read_text())
    report.get("training", {}).pop("seconds", None)
    return {k: v for k, v in report.items() if k not in CLOCKS}


def assert_same_outputs(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).read_text() == (b / name).read_text(), name
    assert numbers(a) == numbers(b)


def assert_same(x, y, where: str = "") -> None:
    """Nested dicts of tensors and plain values, equal to the last bit."""
    if isinstance(x, dict):
        assert x.keys() == y.keys(), where
        for k in x:
            assert_same(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, torch.Tensor):
        assert x.dtype == y.dtype and torch.equal(x, y), where
    else:
        assert x == y, where


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny case run in one go: (case file, output folder)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    case = tiny_case(folder)
    assert main(["run", str(case), "--output", str(folder / "out"), "-q"]) == 0
    return case, folder / "out"


# --- the swarm --------------------------------------------------------------------------------


def test_swarm_continues_bit_for_bit_from_its_checkpoint(tmp_path):
    """k steps, a checkpoint, a fresh swarm from it, N - k more steps: every tensor of the state,
    the records and the hop generator's next draws equal those of N uninterrupted steps."""
    from atomistic.multistate import AU_MOMENTUM, TULLY_MASS_AMU, FSSHSettings, SurfaceHopping, TullySimple
    from atomistic.multistate.fssh import load_checkpoint, save_checkpoint

    def swarm():
        pos = torch.zeros(16, 1, 3, dtype=torch.float64)
        pos[:, 0, 0] = -4.0 * BOHR_A
        mom = torch.zeros_like(pos)
        mom[:, 0, 0] = 20.0 * AU_MOMENTUM
        return SurfaceHopping.start(TullySimple(), pos, mom, [TULLY_MASS_AMU], 0,
                                    FSSHSettings(timestep_fs=0.5, seed=3, decoherence="edc", frustrated="reverse"))

    whole = swarm()
    records = whole.run(150, record_every=8)
    assert whole.hops.accepted.sum() > 0  # hops happened: the generator's draws decided something

    part = swarm()
    path = tmp_path / "checkpoint.pt"
    part.run(40, record_every=8, checkpoint_every=40, checkpoint=lambda s, h: save_checkpoint(path, s, h))
    saved = load_checkpoint(path)
    resumed = SurfaceHopping.from_state_dict(TullySimple(), saved["swarm"])
    assert resumed.steps_done == 40
    continued = resumed.run(150, record_every=8, history=saved["history"])

    assert continued == records
    assert_same(resumed.state_dict(), whole.state_dict())
    assert torch.equal(torch.rand(8, generator=resumed.generator, dtype=torch.float64),
                       torch.rand(8, generator=whole.generator, dtype=torch.float64))


# --- the case kind ----------------------------------------------------------------------------


def test_killed_run_resumes_to_the_uninterrupted_outputs(tmp_path, uninterrupted):
    case, whole = uninterrupted
    assert sum(map(sum, numbers(whole)["hops"]["accepted"])) > 0
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = subprocess.run([sys.executable, "-c", KILLED_AT, "60", "run", str(case), "--output", str(out), "-q"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (out / "report.json").exists()
    from atomistic.multistate.fssh import load_checkpoint

    first = load_checkpoint(out / "checkpoint.pt")
    assert first["swarm"]["steps_done"] == 50 and not first["extra"]["finished"]

    assert main(["run", str(case), "--output", str(out), "--resume", "-q"]) == 0
    assert_same_outputs(whole, out)
    a, b = load_checkpoint(whole / "checkpoint.pt"), load_checkpoint(out / "checkpoint.pt")
    assert_same(a["swarm"], b["swarm"])
    assert_same(a["history"], b["history"])
    assert b["extra"]["finished"]
    report = json.loads((out / "report.json").read_text())  # the clocks cover both segments
    assert report["wall_s"] > first["extra"]["wall_s"] and report["timings_s"]["fssh"] > first["extra"]["fssh_s"]


@pytest.mark.parametrize("changes, words", [({"seed": 2}, "fssh.seed 1 -> 2"),
                                            ({"trajectories": 30}, "initial.trajectories 40 -> 30")])
def test_resume_with_other_settings_is_refused(tmp_path, capsys, uninterrupted, changes, words):
    _, whole = uninterrupted
    out = tmp_path / "out"
    shutil.copytree(whole, out)
    before = (out / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    assert main(["run", str(tiny_case(tmp_path, **changes)), "--output", str(out), "--resume", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "without --resume" in err[0], err
    assert (out / "checkpoint.pt").read_bytes() == before


def test_resume_of_a_finished_run_rewrites_the_same_outputs(tmp_path, uninterrupted, caplog):
    case, whole = uninterrupted
    out = tmp_path / "out"
    shutil.copytree(whole, out)
    for name in OUTPUTS:
        (out / name).unlink()
    with caplog.at_level(logging.WARNING, logger="multiscale.kinds.surface_hopping"):
        assert main(["run", str(case), "--output", str(out), "--resume", "-q"]) == 0
    assert "already finished" in caplog.text
    assert_same_outputs(whole, out)
    a, b = (json.loads((d / "report.json").read_text()) for d in (whole, out))
    assert a["timings_s"] == b["timings_s"] and b["wall_s"] == pytest.approx(a["wall_s"], abs=0.05)


def test_resume_without_a_checkpoint_starts_from_step_0(tmp_path, uninterrupted, caplog):
    case, whole = uninterrupted
    with caplog.at_level(logging.WARNING, logger="multiscale.kinds.surface_hopping"):
        assert main(["run", str(case), "--output", str(tmp_path / "out"), "--resume", "-q"]) == 0
    assert "no checkpoint" in caplog.text and "step 0" in caplog.text
    assert_same_outputs(whole, tmp_path / "out")


def test_trained_model_run_resumes_without_training_again(tmp_path, monkeypatch):
    """[model.train]: the resumed run loads the model the first segment trained and saved (the
    same numbers as the model in memory) and keeps its training report; dissociation records
    travel in the checkpoint."""
    from atomistic.multistate import SurfaceHopping
    from multiscale.api import run
    from multiscale.case_file import load_case
    from multiscale.kinds import surface_hopping

    cases = ROOT / "cases" / "multistate"
    text = (cases / "lif_photodissociation.toml").read_text().replace("epochs = 2000", "epochs = 30")
    text = text.replace("trajectories = 1000", "trajectories = 16").replace("steps = 1200", "steps = 48")
    text = text.replace('"lif_sa_casscf.extxyz"', f'"{cases / "lif_sa_casscf.extxyz"}"') + "checkpoint_every = 20\n"
    (tmp_path / "lif.toml").write_text(text)
    case = load_case(tmp_path / "lif.toml")
    run(case, tmp_path, output=tmp_path / "whole", progress=False)

    class Killed(Exception):
        pass

    step = SurfaceHopping.step

    def stepped(self):
        step(self)
        if self.steps_done == 30:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(SurfaceHopping, "step", stepped)
        with pytest.raises(Killed):
            run(case, tmp_path, output=tmp_path / "part", progress=False)
    monkeypatch.setattr(surface_hopping, "train_diabatic", lambda *args: pytest.fail("trained again"))
    run(case, tmp_path, output=tmp_path / "part", resume=True, progress=False)

    assert_same_outputs(tmp_path / "whole", tmp_path / "part")
    assert "dissociation" in numbers(tmp_path / "part") and "training" in numbers(tmp_path / "part")
    assert (tmp_path / "part" / "dissociation.csv").read_text() == (tmp_path / "whole" / "dissociation.csv").read_text()
