"""Follow-ups from a new user's trial: whole-run MD counters across ``--resume``, resuming with
no checkpoint, the README's active-learning snippet, the plots and references of the MD, reaction
and surface-hopping kinds, one error line under mpiexec, and resumable surface hopping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from multiscale.cli import main

from .conftest import ROOT, SHIPPED_MODEL

# --- 1. MD counters cover the whole run across resumed segments -------------------------------


def _md_case(tmp_path: Path, steps: int = 40, checkpoint_every: int = 20) -> Path:
    path = tmp_path / "md.toml"
    path.write_text(f"""kind = "md"
name = "tiny_md"
[potential]
path = "{SHIPPED_MODEL}"
[structure]
element = "Cu"
a = 3.59
repeat = [1, 1, 1]
[md]
ensemble = "nve"
steps = {steps}
timestep_fs = 4.0
initial_temperature_K = 300.0
log_every = 5
check_every = 7
checkpoint_every = {checkpoint_every}
""")
    return path


def test_md_counters_cover_the_whole_run_after_a_kill(model, tmp_path):
    """Killed between checkpoints and resumed: steps, rebuilds, replays as in the uninterrupted run;
    wall time and throughput over both segments."""
    from atomistic.md import MDSettings, MolecularDynamics, Thermostat
    from tests.test_md import cu_crystal

    atoms = cu_crystal(1)
    s = MDSettings(ensemble="nvt", steps=60, timestep_fs=4.0, checkpoint_every=20, log_every=5, check_every=7,
                   thermostat=Thermostat("langevin", 400.0, 50.0))
    whole = MolecularDynamics(model, atoms, s, output=tmp_path / "whole").run()
    part = MolecularDynamics(model, atoms, s, output=tmp_path / "part")
    for state in part.irun():
        if state.step >= 50:  # killed at step 50: the checkpoint at step 40 is what survives
            break
    import torch

    at_40 = json.loads(torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)["extra"])["counters"]
    assert at_40["timed_steps"] == 40 and at_40["segments"] == 1 and at_40["wall_s"] > 0
    resumed = MolecularDynamics(model, atoms, s, output=tmp_path / "part", resume=True).run()
    assert resumed.steps == whole.steps == 60
    assert (resumed.rebuilds, resumed.replays) == (whole.rebuilds, whole.replays)
    assert resumed.segments == 2 and whole.segments == 1
    assert 0 < resumed.wall_s and resumed.atom_steps_per_s > 0
    assert resumed.wall_s > at_40["wall_s"]  # the first segment's time (up to its checkpoint) is in it
    saved = json.loads((tmp_path / "part" / "md.json").read_text())
    assert saved["segments"] == 2 and saved["atom_steps_per_s"] == resumed.atom_steps_per_s


def test_md_resume_of_a_finished_run_keeps_its_numbers(tmp_path):
    """``--resume`` of a run that finished rewrites md.json and report.json with the same counters."""
    case = _md_case(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(case), "--output", str(out), "-q"]) == 0
    before = json.loads((out / "md.json").read_text())
    report_before = json.loads((out / "report.json").read_text())["md"]
    assert before["atom_steps_per_s"] > 0
    assert main(["run", str(case), "--output", str(out), "--resume", "-q"]) == 0
    after = json.loads((out / "md.json").read_text())
    assert after == before
    assert json.loads((out / "report.json").read_text())["md"] == report_before


# --- 2. --resume with nothing to resume from says so ------------------------------------------


def test_shipped_md_cases_checkpoint():
    from multiscale.case_file import load_case

    for name in ("nve", "npt", "nvt"):
        case = load_case(ROOT / "cases" / "cu_md" / f"{name}.toml")
        assert 0 < case.md.checkpoint_every < case.md.steps, name
        assert "checkpoint_every" in (ROOT / "cases" / "cu_md" / f"{name}.toml").read_text(), name


@pytest.mark.parametrize("checkpoint_every, words", [(0, "checkpointing is off"), (20, "no checkpoint at")])
def test_md_resume_without_a_checkpoint_is_refused(tmp_path, capsys, checkpoint_every, words):
    """Asked to resume where there is nothing to resume from: exit 2 and one line saying why,
    not a silent start from step 0."""
    case = _md_case(tmp_path, checkpoint_every=checkpoint_every)
    out = tmp_path / "out"
    assert main(["run", str(case), "--output", str(out), "--resume", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "without --resume" in err[0]
    assert not (out / "thermo.csv").exists()


# --- 4. the README's active-learning script runs as a plain script ---------------------------

#: shrinks the README's active-learning script for a test run: imported first in every process
#: (sitecustomize), it wraps the settings classes the script imports so that they come out tiny
_TINY_AL = '''
import atomistic.active as active
import atomistic.training.trainer as trainer
from dataclasses import replace

_Train, _Stage, _Active = trainer.TrainSettings, active.Stage, active.ActiveSettings
trainer.TrainSettings = lambda **kw: _Train(**{**kw, "max_epochs": 2, "progress": False})
active.Stage = lambda temperature_K, steps: _Stage(temperature_K, 10)
active.ActiveSettings = lambda **kw: _Active(**{**kw, "max_oracle_calls": 1, "check_every": 5,
                                                "cooldown_steps": 5, "fine_tune": _Train(max_epochs=2, progress=False)})
'''


def readme_al_script() -> str:
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Active learning"):text.index("## Multi-state models")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "README's active-learning section should hold one Python script"
    return blocks[0]


def test_readme_active_learning_script_has_its_guard_and_imports():
    import ast
    import importlib

    source = readme_al_script()
    tree = ast.parse(source)
    guard = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "__name__ == '__main__'"]
    assert guard, "the script needs an `if __name__ == '__main__':` guard (the oracle's workers import it)"
    # at module level only imports, definitions and the guard: nothing runs when a worker imports it
    assert all(isinstance(n, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.If) for n in tree.body)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
    # every name the script uses is defined by it or is a builtin
    defined = {a.asname or a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)
               for a in n.names} | {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assigned = {t.id for n in ast.walk(tree) for t in (n.targets if isinstance(n, ast.Assign) else
                [n.target] if isinstance(n, ast.For | ast.withitem) and hasattr(n, "target") else [])
                if isinstance(t, ast.Name)}
    assigned |= {n.optional_vars.id for n in ast.walk(tree) if isinstance(n, ast.withitem)
                 and isinstance(n.optional_vars, ast.Name)}
    assigned |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) for a in n.args.args}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    import builtins

    assert used - defined - assigned - set(dir(builtins)) == set()


def test_readme_active_learning_script_runs_as_a_plain_script(tmp_path):
    """``python script.py`` with the oracle in spawned workers, shrunk to seconds by a sitecustomize
    that wraps the settings classes (the script's text is run unchanged)."""
    import os
    import subprocess
    import sys

    script = tmp_path / "al_script.py"
    script.write_text(readme_al_script())
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(_TINY_AL)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs" / "al" / "dataset.extxyz").exists()
    assert "generation" in done.stdout


# --- 5. exact quantum reference for Tully's models --------------------------------------------


def test_wavepacket_is_unitary_without_absorbers():
    from atomistic.multistate.exact import wavepacket_scattering
    from atomistic.multistate.models import TullySimple

    r = wavepacket_scattering(TullySimple(), k_au=20.0, absorb=False, max_time_au=800.0)
    assert r.norm_error < 1e-10 and r.left_on_grid == pytest.approx(1.0, abs=1e-10)


def test_wavepacket_limits_of_tully_model_1():
    """Independent of the solver: a closed channel stays empty, an uncoupled packet stays on its
    diabat (the upper adiabat beyond the crossing), and at high momentum the upper-state
    transmission approaches Landau–Zener, exp(-2 pi C^2 / (v |dV11/dx - dV22/dx|)) at x = 0, and
    the exact scattering value tabulated in docs/references/tully_models.md (Subotnik group)."""
    from atomistic.multistate.exact import wavepacket_scattering
    from atomistic.multistate.models import TullySimple

    model = TullySimple()
    # k = 8: k^2 / 2m = 0.016 hartree < 0.02, the upper asymptote above the lower: closed
    closed = wavepacket_scattering(model, k_au=8.0, tolerance=1e-3)
    assert closed.transmitted[1] + closed.reflected[1] < 1e-3

    class Uncoupled(TullySimple):
        C = 0.0

    diabatic = wavepacket_scattering(Uncoupled(), k_au=30.0)
    assert diabatic.transmitted[1] == pytest.approx(1.0, abs=1e-3)

    fast = wavepacket_scattering(model, k_au=30.0)
    v = 30.0 / 2000.0
    landau_zener = np.exp(-2 * np.pi * model.C**2 / (v * 2 * model.A * model.B))
    assert fast.transmitted[1] == pytest.approx(landau_zener, abs=0.02)
    assert fast.transmitted[1] == pytest.approx(0.7154, abs=0.005)  # exact, k = 30 (plane wave)
    finer = wavepacket_scattering(model, k_au=30.0, dt_au=fast.dt_au / 2)  # converged in the time step
    assert finer.transmitted[1] == pytest.approx(fast.transmitted[1], abs=1e-3)


# --- 5. plots: every line labelled, the analysis window marked, references drawn --------------


@pytest.fixture
def figures(monkeypatch):
    """The figures the plotting functions would save, kept open for inspection."""
    import atomistic.plots as plots

    kept = []

    def keep(fig, path, dpi=110):
        kept.append(fig)
        return Path(path)

    monkeypatch.setattr(plots, "save_png", keep)
    yield kept
    for fig in kept:
        plots.plt.close(fig)


def _labelled(ax) -> bool:
    """Every line and filled area on ``ax`` carries a legend label, and the legend shows them."""
    artists = [*ax.lines, *ax.collections]
    legend = ax.get_legend()
    shown = {t.get_text() for t in legend.get_texts()} if legend else set()
    return all(not a.get_label().startswith("_") and a.get_label() in shown for a in artists)


def test_arrhenius_plot_labels_every_line(figures):
    from atomistic.analysis.rates import RateBand, arrhenius_plot

    t = np.array([300.0, 450.0, 600.0])
    members = np.array([1e3, 1e6, 1e8]) * np.array([[1.0], [2.0], [0.5]])
    band = RateBand(temperatures_K=t, rate=members.mean(0), lower=members.min(0), upper=members.max(0),
                    member_rates=members, member_barriers_eV=np.array([0.40, 0.38, 0.42]), confidence=0.95,
                    quantum=False)
    arrhenius_plot("unused.png", band)
    ax = figures[0].axes[0]
    assert _labelled(ax) and len(ax.lines) == 4
    assert "(1/K)" in ax.get_xlabel() and "(1/s)" in ax.get_ylabel()
    assert any(a.get_xlabel() == "T (K)" for a in ax.child_axes)


def test_md_thermo_plot_marks_the_equilibration_the_analysis_drops(tmp_path, figures, monkeypatch):
    """The md kind hands ``analysis.equilibration_ps`` to the plot, which shades it and marks its end."""
    from dataclasses import replace

    import atomistic.md.driver as driver
    from multiscale.api import run
    from multiscale.case_file import load_case

    seen = {}
    original = driver.thermo_plot

    def spy(csv_path, png_path, equilibration_ps=None):
        seen["equilibration_ps"] = equilibration_ps
        return original(csv_path, png_path, equilibration_ps=equilibration_ps)

    monkeypatch.setattr(driver, "thermo_plot", spy)
    case = load_case(ROOT / "cases" / "cu_md" / "nvt.toml")
    case = replace(case, md=replace(case.md, steps=130, log_every=5, trajectory_every=20, checkpoint_every=0),
                   structure=replace(case.structure, repeat=(1, 1, 1)),
                   analysis=replace(case.analysis, equilibration_ps=0.1))
    run(case, ROOT / "cases" / "cu_md", output=tmp_path, progress=False)
    assert seen["equilibration_ps"] == 0.1
    ax = figures[-1].axes[0]
    assert any(np.allclose(line.get_xdata(), 0.1) for line in ax.lines)  # the end of equilibration
    assert any("equilibration" in t.get_text() for t in ax.get_legend().get_texts())


def test_population_plot_draws_the_reference_and_the_change(figures):
    from atomistic.plots import population_plot

    history = {"time_fs": [0.0, 1.0, 2.0], "surface": [[0.0, 1.0], [0.01, 0.99], [0.02, 0.98]],
               "electronic": [[0.0, 1.0], [0.015, 0.985], [0.02, 0.98]]}
    population_plot("unused.png", history, reference={"label": "exact", "populations": [0.6, 0.4]})
    top, change = figures[0].axes
    assert _labelled(top) and _labelled(change)
    assert any(t.get_text() == "state 0: exact" for t in top.get_legend().get_texts())
    assert change.get_ylim()[1] < 0.1  # the change is on a scale that shows it


def test_tully1_case_reports_the_exact_reference(tmp_path):
    """The shipped Tully-1 case (tiny FSSH) reports the wavepacket's branching: at k = 16 the
    exact upper-state transmission is 0.359 (docs/references/tully_models.md)."""
    from tests.test_cases import CASES, run_tiny

    report = run_tiny(CASES / "multistate" / "tully1_fssh.toml", tmp_path)
    exact = report["exact_reference"]
    assert exact["transmitted"][1] == pytest.approx(0.359, abs=0.005)
    assert sum(exact["transmitted"]) + sum(exact["reflected"]) == pytest.approx(1.0, abs=1e-8)
    assert (tmp_path / "populations.png").exists()


def test_lif_case_reports_the_dissociated_fraction(tmp_path):
    from tests.test_cases import CASES, run_tiny

    report = run_tiny(CASES / "multistate" / "lif_photodissociation.toml", tmp_path)
    d = report["dissociation"]
    assert d["threshold_A"] == 5.0 and d["trajectories"] == 40
    assert 0 <= d["fraction"] <= 1 and d["wilson_95"][0] <= d["fraction"] <= d["wilson_95"][1]
    assert d["standard_error"] == pytest.approx(np.sqrt(d["fraction"] * (1 - d["fraction"]) / 40))
    rows = np.genfromtxt(tmp_path / "dissociation.csv", delimiter=",", names=True)
    assert len(rows) == len(np.genfromtxt(tmp_path / "populations.csv", delimiter=",", names=True))
    assert (tmp_path / "dissociation.png").exists()


def test_binomial_fraction_and_its_interval():
    from multiscale.kinds.surface_hopping import _binomial

    none = _binomial(0, 1000)
    assert none["fraction"] == 0 and none["standard_error"] == 0
    assert none["wilson_95"][1] == pytest.approx(3.84 / 1003.84, rel=1e-3)  # nothing seen: still a bound
    half = _binomial(500, 1000)
    assert half["standard_error"] == pytest.approx(np.sqrt(0.25 / 1000))


# --- 3. under mpiexec only rank 0 prints the error -------------------------------------------


@pytest.mark.parametrize("bad", ["missing model file", "unknown key"])
def test_mpi_error_is_printed_once(tmp_path, bad):
    """A continuum case that fails on every rank (a model file that is not there, found when the
    run starts; a key the schema does not know): exit 2 on every rank, the message once."""
    import os
    import shutil
    import subprocess

    mpiexec = ROOT / ".venv" / "bin" / "mpiexec"
    if not mpiexec.exists() or shutil.which("multiscale", path=str(ROOT / ".venv" / "bin")) is None:
        pytest.skip("needs the venv's mpiexec and multiscale")
    text = (ROOT / "cases" / "cu_continuum" / "bonded_blocks.toml").read_text()
    if bad == "missing model file":
        text = text.replace('path = "../models/cu_emt.safetensors"', f'path = "{tmp_path / "nowhere.safetensors"}"')
        words = "no such model file"
    else:
        text = text.replace("[mesh]\n", "[mesh]\ncolour = 3\n")
        words = "colour"
    case = tmp_path / "bad.toml"
    case.write_text(text)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(mpiexec), "-n", "2", str(ROOT / ".venv" / "bin" / "multiscale"), "run", str(case),
                           "--output", str(tmp_path / "out"), "-q"], capture_output=True, text=True, timeout=180,
                          env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and words in lines[0], done.stderr[-2000:]
    assert done.stderr.count("error:") == 1
