"""Bad input gets one clear line and exit code 2, never a traceback."""

import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from multiscale.cli import main

GOOD = """
kind = "train"
name = "tiny"
threads = 1
[model]
species = ["Cu"]
[model.descriptor]
cutoff = 4.0
angular_cutoff = 3.5
n_radial = 6
n_angular = 3
[model.network]
hidden = [8]
[dataset]
{dataset}
[training]
max_epochs = 2
progress = false
[committee]
members = 2
[validation]
reference = "none"
"""


def _case(tmp_path, text, name="case.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _run(args, capsys):
    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("edit, expected", [
    (lambda t: t.replace("[model.network]", "[model.network]\nwidth = 3"), "model.network.width: unknown key"),
    (lambda t: t.replace("cutoff = 4.0", "cutoff = \"four\""),
     "model.descriptor.cutoff: expected a number, got 'four'"),
    (lambda t: t.replace("cutoff = 4.0", "cutoff = -4.0"), "cutoff must be positive, got -4.0"),
    (lambda t: t.replace("max_epochs = 2", "max_epochs = 2.5"), "training.max_epochs: expected an integer, got 2.5"),
    (lambda t: t.replace('kind = "train"', 'kind = "bake"'), "kind: expected one of"),
    (lambda t: t.replace('species = ["Cu"]', 'species = ["Qq"]'), "species must be chemical symbols"),
    (lambda t: t + "\nsurprise = 1\n", "surprise: unknown key"),
    (lambda t: t.replace('species = ["Cu"]', 'species = ["Cu", "Cu"]'), "species must not repeat"),
    (lambda t: t.replace('reference = "none"', 'reference = "emt"\nelement = "Ag"'),
     "validation.element 'Ag' is not among model.species"),
])
def test_case_file_errors_name_key_and_value(tmp_path, capsys, edit, expected):
    path = _case(tmp_path, edit(GOOD.format(dataset='recipe = "cu_emt"')))
    code, err = _run(["run", str(path)], capsys)
    assert code == 2
    assert expected in err and "Traceback" not in err
    assert str(path) in err


def _frames_file(tmp_path, breaker):
    frames = []
    for k in range(3):
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
        a.rattle(0.05, seed=k)
        a.calc = EMT()
        e, f = a.get_potential_energy(), a.get_forces()
        a.calc = SinglePointCalculator(a, **breaker(k, e, f))
        frames.append(a)
    path = tmp_path / "data.extxyz"
    write(path, frames)
    return path


@pytest.mark.parametrize("breaker, expected", [
    (lambda k, e, f: {"energy": e} if k == 1 else {"energy": e, "forces": f}, "frame 1: no forces label"),
    (lambda k, e, f: {"energy": e, "forces": np.where(k == 2, np.nan, f)}, "frame 2: forces contain NaN"),
])
def test_dataset_errors_name_file_and_frame(tmp_path, capsys, breaker, expected):
    data = _frames_file(tmp_path, breaker)
    path = _case(tmp_path, GOOD.format(dataset='path = "data.extxyz"'))
    code, err = _run(["run", str(path), "--output", str(tmp_path / "out")], capsys)
    assert code == 2 and expected in err and str(data) in err


def test_dataset_with_unknown_element_is_named(tmp_path, capsys):
    a = molecule("H2O")
    a.center(vacuum=3)
    a.calc = SinglePointCalculator(a, energy=0.0, forces=np.zeros((3, 3)))
    write(tmp_path / "data.extxyz", [a])
    path = _case(tmp_path, GOOD.format(dataset='path = "data.extxyz"'))
    code, err = _run(["run", str(path), "--output", str(tmp_path / "out")], capsys)
    assert code == 2 and "H, O" in err and "Cu" in err


def test_cli_subprocess_exit_code(tmp_path):
    path = _case(tmp_path, GOOD.format(dataset='recipe = "cu_emt"').replace("n_radial = 6", "n_radial = 6\nfoo = 1"))
    proc = subprocess.run([sys.executable, "-m", "multiscale.cli", "run", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "model.descriptor.foo: unknown key" in proc.stderr and "Traceback" not in proc.stderr


def test_check_command_accepts_shipped_case(capsys):
    from .conftest import ROOT

    assert main(["check", str(ROOT / "cases" / "cu_emt" / "train.toml")]) == 0


def test_too_few_frames_is_a_dataset_error(tmp_path, capsys):
    _frames_file(tmp_path, lambda k, e, f: {"energy": e, "forces": f})  # 3 frames
    path = _case(tmp_path, GOOD.format(dataset='path = "data.extxyz"').replace(
        "[committee]", "[committee]\nvalid_fraction = 0.5\ntest_fraction = 0.45"))
    code, err = _run(["run", str(path), "--output", str(tmp_path / "out")], capsys)
    assert code == 2 and "too few" in err


def test_a_bug_is_not_reported_as_bad_input(tmp_path, monkeypatch):
    """A ValueError from deep inside the library (a bug) is not turned into "bad case file"
    (exit 2): it propagates with its traceback. Settings that do not fit the structures are a
    named error (InputMismatch) and do exit 2."""
    from atomistic.md import driver

    from .conftest import SHIPPED_MODEL

    path = _case(tmp_path, f'kind = "md"\nname = "bug"\n[potential]\npath = "{SHIPPED_MODEL}"\n[structure]\n'
                           'element = "Cu"\na = 3.6\n[md]\nensemble = "nve"\nsteps = 2\ntimestep_fs = 1.0\n')

    def broken(self, *args, **kwargs):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(driver.MolecularDynamics, "__init__", broken)
    with pytest.raises(ValueError, match="internal inconsistency"):
        main(["run", str(path), "--output", str(tmp_path / "out"), "-q"])
