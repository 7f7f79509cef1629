"""What a new user's trial found, each held by a test: bad input that `multiscale check` must
catch before anything runs (exit 2, one line naming the field), files users can share, and
one-process kinds under mpiexec."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from multiscale.cli import main

from .conftest import ROOT, SHIPPED_MODEL

CASES = ROOT / "cases"


def _check(tmp_path: Path, text: str, capsys, name: str = "case.toml") -> tuple[int, str]:
    path = tmp_path / name
    path.write_text(text)
    code = main(["check", str(path)])
    return code, capsys.readouterr().err


def _continuum(**swap) -> str:
    text = (CASES / "cu_continuum" / "bonded_blocks.toml").read_text()
    text = text.replace('path = "../models/cu_emt.safetensors"', f'path = "{swap.pop("model", SHIPPED_MODEL)}"')
    for old, new in swap.values():
        assert old in text, old
        text = text.replace(old, new)
    return text


def _coupled(*swaps) -> str:
    text = (CASES / "cu_coupled" / "bonded_bars.toml").read_text()
    text = text.replace('path = "../models/cu_emt.safetensors"', f'path = "{SHIPPED_MODEL}"')
    for old, new in swaps:
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize("text, expected", [
    (_continuum(a=("divisions = [8, 4, 4]", "divisions = [8, 0, 4]")), "mesh.divisions"),
    (_continuum(a=('name = "ymax"', 'name = "top"')), "boundary[3].name = 'top'"),
    (_continuum(a=('value_A = [8.0, "free", "free"]', 'value_A = [nan, "free", "free"]')), "finite displacements"),
    (_continuum(a=("W_sep_J_m2 = 2.6", "W_sep_J_m2 = -2.6")), "interface.W_sep_J_m2 = -2.6"),
    (_continuum(a=("split_x_A = 4.0", "split_x_A = 9.0")), "mesh.split_x_A = 9.0"),
    (_continuum(a=("orientation_y = [0, 1, 0]", "orientation_y = [2, 0, 0]")), "material.orientation_y"),
    (_coupled(("lower_A = [17.949, -1.0, -1.0]", "lower_A = [70.0, -1.0, -1.0]")), "atoms.lower_A[0]"),
    (_coupled(("lower_A = [17.949, -1.0, -1.0]", "lower_A = [3.0, -1.0, -1.0]")),
     "the pad beyond the coupled face xmin"),
    (_coupled(("upper_A = [39.486, 18.949, 18.949]", "upper_A = [39.486, 18.949, -5.0]")), "atoms.lower_A[2]"),
], ids=["zero-divisions", "unknown-boundary", "nan-displacement", "negative-W_sep", "split-outside",
        "parallel-orientation", "box-outside-mesh", "pad-outside-mesh", "lower-above-upper"])
def test_check_catches_what_can_be_known_without_solving(text, expected, tmp_path, capsys):
    code, err = _check(tmp_path, text, capsys)
    assert code == 2 and expected in err and "Traceback" not in err, err


def _model_file(tmp_path: Path, what: str) -> Path:
    path = tmp_path / "model.safetensors"
    if what == "missing":
        return path
    if what == "folder":
        path.mkdir()
    elif what == "empty":
        path.write_bytes(b"")
    elif what == "truncated":
        path.write_bytes(SHIPPED_MODEL.read_bytes()[:5000])
    elif what == "pickled":
        import torch

        torch.save({"weights": torch.zeros(3)}, path)
    return path


@pytest.mark.parametrize("what, expected", [("missing", "no such model file"), ("folder", "is a folder"),
                                            ("empty", "model.safetensors"), ("truncated", "model.safetensors"),
                                            ("pickled", "unpickle")])
def test_check_opens_the_model_file(what, expected, tmp_path, capsys):
    model = _model_file(tmp_path, what)
    code, err = _check(tmp_path, _continuum(model=model), capsys)
    assert code == 2 and expected in err and "Traceback" not in err, err


@pytest.mark.parametrize("what, expected", [("missing", "not found"), ("folder", "is a folder")])
def test_check_reads_the_structure_file(what, expected, tmp_path, capsys):
    if what == "folder":
        (tmp_path / "cu.xyz").mkdir()
    text = (CASES / "cu_md" / "nve.toml").read_text().replace('path = "../models/cu_emt.safetensors"',
                                                             f'path = "{SHIPPED_MODEL}"')
    start = text.index("[structure]")
    end = text.index("\n[", start + 1)
    text = text[:start] + '[structure]\nfile = "cu.xyz"\n' + text[end:]
    code, err = _check(tmp_path, text, capsys)
    assert code == 2 and expected in err and "structure.file" in err, err


def test_a_folder_given_as_the_case_says_so(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


TRAIN = """
kind = "train"
name = "tiny"
[model]
species = ["Cu"]
[dataset]
recipe = "cu_emt"
[validation]
reference = "none"
"""


@pytest.mark.parametrize("extra, expected", [("[training.weights]\nforces = -0.1", "weights.forces = -0.1"),
                                             ("[training]\nlr = nan", "lr = nan")])
def test_training_settings_name_the_bad_value(extra, expected, tmp_path, capsys):
    code, err = _check(tmp_path, TRAIN + extra + "\n", capsys)
    assert code == 2 and expected in err, err


def test_one_process_kinds_refuse_mpiexec(tmp_path, capsys, monkeypatch):
    """Under mpiexec every rank would run the same MD and write the same files: refused."""
    monkeypatch.setenv("PMI_SIZE", "2")
    text = (CASES / "cu_md" / "nve.toml").read_text().replace('path = "../models/cu_emt.safetensors"',
                                                             f'path = "{SHIPPED_MODEL}"')
    (tmp_path / "md.toml").write_text(text)
    code = main(["run", str(tmp_path / "md.toml"), "--output", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "runs in one process" in err and not (tmp_path / "out").exists(), err


def test_written_files_are_shareable_and_csv_ends_lines_with_newline(tmp_path):
    from atomistic.atomic_files import write_csv, write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "report.json", "{}")
        write_csv(tmp_path / "table.csv", ["a", "b"], [(1, 2)])
    finally:
        os.umask(old)
    for name in ("report.json", "table.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    assert (tmp_path / "table.csv").read_bytes() == b"a,b\n1,2\n"


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and ":func:" not in out and "Exit codes" in out


def test_a_calculator_never_converts_the_callers_model(model):
    """NNPCalculator(model, dtype=float32) used to turn the caller's model into float32 in place:
    an earlier calculator on it changed precision and a coupled problem refused it afterwards."""
    import torch
    from ase.build import bulk

    from atomistic import NNPCalculator
    from atomistic.md import MolecularDynamics
    from atomistic.md.settings import MDSettings

    before = {k: v.clone() for k, v in model.state_dict().items()}
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.calc = NNPCalculator(model)
    e64 = atoms.get_potential_energy()
    fast = NNPCalculator(model, dtype=torch.float32)
    assert fast.model is not model and fast.model.dtype == torch.float32
    MolecularDynamics(model, [atoms.copy()], MDSettings(steps=1, timestep_fs=1.0, precision="float32"))
    assert model.dtype == torch.float64 and NNPCalculator(model).model is model
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    atoms.calc = NNPCalculator(model)
    assert atoms.get_potential_energy() == e64


def test_overlapping_atoms_are_refused_before_any_expensive_work(tmp_path, capsys):
    """`structure.a = 0.5` used to sit for minutes in the time-step Hessian; a file with
    overlapping atoms ended in "try a smaller timestep". Both are bad input: exit 2, naming the
    atoms and their distance, at once."""
    import time

    from ase import Atoms
    from ase.io import write

    text = (CASES / "cu_md" / "nve.toml").read_text().replace('path = "../models/cu_emt.safetensors"',
                                                             f'path = "{SHIPPED_MODEL}"')
    start = text.index("[structure]")
    end = text.index("\n[", start + 1)
    write(tmp_path / "overlap.xyz", Atoms("Cu3", positions=[(0, 0, 0), (0.2, 0, 0), (3, 0, 0)]))
    for structure, expected in (('element = "Cu"\na = 0.5\nrepeat = [2, 2, 2]', "Å apart"),
                                ('file = "overlap.xyz"', "atoms 0 (Cu) and 1 (Cu) are 0.2 Å apart")):
        (tmp_path / "md.toml").write_text(text[:start] + f"[structure]\n{structure}\n" + text[end:])
        t0 = time.perf_counter()
        code = main(["run", str(tmp_path / "md.toml"), "--output", str(tmp_path / "out"), "-q"])
        err = capsys.readouterr().err
        assert code == 2 and expected in err and "Traceback" not in err, err
        assert time.perf_counter() - t0 < 60


def test_vibrations_of_one_atom_or_of_overlapping_atoms_are_refused(model):
    from ase import Atoms

    from atomistic import normal_modes
    from atomistic.errors import InputMismatch

    with pytest.raises(InputMismatch, match="single atom"):
        normal_modes(model, Atoms("Cu", positions=[(0, 0, 0)]))
    with pytest.raises(InputMismatch, match="apart"):
        normal_modes(model, Atoms("Cu2", positions=[(0, 0, 0), (0.1, 0, 0)]))


def test_too_few_samples_for_the_analysis_is_refused_before_the_md(tmp_path, capsys):
    text = (CASES / "cu_md" / "nvt.toml").read_text().replace('path = "../models/cu_emt.safetensors"',
                                                             f'path = "{SHIPPED_MODEL}"')
    assert "heat_capacity = true" in text and "equilibration_ps = 2.0" in text
    text = text.replace("equilibration_ps = 2.0", "equilibration_ps = 1000.0", 1)
    (tmp_path / "nvt.toml").write_text(text)
    code = main(["run", str(tmp_path / "nvt.toml"), "--output", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "analysis.equilibration_ps" in err, err
    thermo = tmp_path / "out" / "thermo.csv"
    assert not thermo.exists() or len(thermo.read_text().splitlines()) <= 1  # refused before the first step


def test_label_initial_stops_when_every_label_failed(tmp_path):
    """The README's snippet run as a plain script used to go on with 0 labels and die in training
    on an empty torch.cat; now the first step says what happened."""
    from ase.build import bulk

    from atomistic.active import LabelledStore, Oracle
    from atomistic.active.loop import label_initial
    from atomistic.errors import ActiveLearningError

    from .oracle_doubles import NaNCalculator

    frames = [bulk("Cu", "fcc", a=3.6, cubic=True) for _ in range(2)]
    with Oracle(calculator=NaNCalculator()) as oracle:
        with pytest.raises(ActiveLearningError, match="failed on all 2 starting configurations"):
            label_initial(LabelledStore(tmp_path), oracle, frames)
