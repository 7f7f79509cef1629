"""The finite-element kinds resume: a run SIGKILLed after its first checkpoint and continued with
``--resume`` ends with the numbers of an uninterrupted run (load.csv, report.json, the atoms'
frames), on one rank (``coupled``) and on two (``continuum`` under mpiexec); a checkpoint from
other settings or another rank count is refused with exit 2, and resuming a finished run leaves
its results as they are."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT, SHIPPED_MODEL

pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")

BIN = Path(sys.executable).parent
RTOL, ATOL = 1e-10, 1e-12


def tiny_case(kind: str, folder: Path, **changes: str) -> Path:
    """The shipped case of ``kind`` in its CI size (as tests/test_cases.py::tiny), written to
    ``folder``; ``changes``: further ``key = value`` lines replaced (first match)."""
    source = {"continuum": "cu_continuum/bonded_blocks.toml", "coupled": "cu_coupled/bonded_bars.toml"}[kind]
    text = (ROOT / "cases" / source).read_text().replace('"../models/cu_emt.safetensors"', f'"{SHIPPED_MODEL}"')
    if kind == "coupled":  # and a section of 3 x 3 lattice constants (324 atoms instead of 900)
        changes = {"steps": "3", "opening_A": "0.45", "every": "2", "lengths_A": "[57.4352, 10.7691, 10.7691]",
                   "divisions": "[16, 3, 3]", "upper_A": "[39.486, 11.77, 11.77]", **changes}
    lines = text.splitlines()
    for key, value in changes.items():
        k = next(i for i, line in enumerate(lines) if line.split("=")[0].strip() == key)
        lines[k] = f"{key} = {value}"
    path = folder / f"{kind}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def command(case: Path, out: Path, *, ranks: int = 1, resume: bool = False) -> list[str]:
    cmd = [str(BIN / "multiscale"), "run", str(case), "--output", str(out), "-q"] + (["--resume"] if resume else [])
    return [str(BIN / "mpiexec"), "-n", str(ranks), *cmd] if ranks > 1 else cmd


def run(case: Path, out: Path, *, ranks: int = 1, resume: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command(case, out, ranks=ranks, resume=resume), env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def kill_when(cmd: list[str], ready, timeout_s: float = 300) -> tuple[int, str]:
    """Start ``cmd`` (one thread per process) in its own process group and SIGKILL the group as
    soon as ``ready()`` holds (a ``ready`` that cannot read its file yet counts as not ready);
    the return code and stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if ready():
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
    return proc.returncode, stderr


def run_killed(case: Path, out: Path, *, ranks: int = 1, after_steps: int = 1) -> None:
    """Start the run and SIGKILL its whole process group once report.json counts ``after_steps``
    load steps (it is written last in a step, after the checkpoint and load.csv): the run is
    stopped part way, and leaves its load curve so far."""
    returncode, stderr = kill_when(command(case, out, ranks=ranks),
                                   lambda: json.loads((out / "report.json").read_text())["steps"] >= after_steps)
    assert returncode == -signal.SIGKILL, f"the run was not killed part way: {stderr[-2000:]}"
    report = json.loads((out / "report.json").read_text())
    assert report["finished"] is False  # the load curve so far, marked unfinished
    rows = len((out / "load.csv").read_text().splitlines()) - 1
    assert after_steps <= report["steps"] <= rows <= report["steps"] + 1


def table(path: Path) -> np.ndarray:
    return np.atleast_2d(np.loadtxt(path, delimiter=",", skiprows=1))


def close(x, y) -> np.ndarray:
    """Equal to 1e-10 relative, or within 1e-12 (eV, eV/Å) for numbers that are round-off: a
    reaction component that is zero in exact arithmetic comes out near 1e-16, and under MPI
    (MUMPS's parallel factorisation) its last bits differ between two uninterrupted runs too."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return np.abs(x - y) <= RTOL * np.maximum(np.abs(x), np.abs(y)) + ATOL


def assert_same_results(a: Path, b: Path) -> float:
    """load.csv and the numbers of report.json (wall times left out) of runs ``a`` and ``b`` agree
    (:func:`close`); returns the largest relative difference of load.csv beyond round-off."""
    from scripts.case_reports import numbers

    assert (a / "load.csv").read_text().splitlines()[0] == (b / "load.csv").read_text().splitlines()[0]
    x, y = table(a / "load.csv"), table(b / "load.csv")
    assert x.shape == y.shape and close(x, y).all()
    ra, rb = (numbers(json.loads((p / "report.json").read_text())) for p in (a, b))
    assert ra["finished"] == rb["finished"] == 1.0
    assert set(ra) == set(rb)
    assert [k for k in ra if not close(ra[k], rb[k])] == []
    big = np.maximum(np.abs(x), np.abs(y)) > 1e3 * ATOL
    return float((np.abs(x - y)[big] / np.maximum(np.abs(x), np.abs(y))[big]).max(initial=0.0))


def test_continuum_resumes_on_two_ranks(tmp_path):
    """mpiexec -n 2: killed part way, resumed: the numbers of an uninterrupted run; resuming with
    another rank count, or from other settings, exits 2; a finished run is left as it is."""
    if not (BIN / "mpiexec").exists() or not (BIN / "multiscale").exists():
        pytest.skip("no mpiexec or multiscale script beside this Python")
    from multiscale.cli import main

    case = tiny_case("continuum", tmp_path)
    whole, parted = tmp_path / "whole", tmp_path / "parted"
    run(case, whole, ranks=2)
    run_killed(case, parted, ranks=2, after_steps=3)
    run(case, parted, ranks=2, resume=True)
    worst = assert_same_results(whole, parted)
    print(f"continuum, 2 ranks: largest relative difference {worst:.2g}")
    files = sorted(p.relative_to(parted) for p in (parted / "fields").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(whole) for p in (whole / "fields").rglob("*") if p.is_file())
    for name in files:  # rewritten from the kept states: the same steps (values equal up to MPI's round-off)
        if name.name != "profiling.json":
            assert (parted / name).stat().st_size == (whole / name).stat().st_size, name

    # another rank count, other settings, no checkpoint: one line, exit 2, nothing changed
    before = (parted / "report.json").read_text()
    assert main(["run", str(case), "--output", str(parted), "--resume", "-q"]) == 2
    (tmp_path / "other").mkdir()
    other = tiny_case("continuum", tmp_path / "other", W_sep_J_m2="2.5")
    assert subprocess.run(command(other, parted, ranks=2, resume=True), capture_output=True).returncode == 2
    assert main(["run", str(case), "--output", str(tmp_path / "empty"), "--resume", "-q"]) == 2
    assert (parted / "report.json").read_text() == before

    # a finished run: said so, left as it is
    stamps = {p: p.stat().st_mtime_ns for p in parted.rglob("*") if p.is_file()}
    done = run(case, parted, ranks=2, resume=True)
    assert "already finished" in done.stderr
    assert {p: p.stat().st_mtime_ns for p in parted.rglob("*") if p.is_file()} == stamps


def test_coupled_resumes_with_the_same_frames(tmp_path):
    """One rank: killed after its first load step, resumed: the same load curve, report and atoms'
    frames (none twice) as an uninterrupted run."""
    from ase.io import read

    from multiscale.errors import INPUT_ERRORS

    case = tiny_case("coupled", tmp_path)
    whole, parted = tmp_path / "whole", tmp_path / "parted"
    run(case, whole)
    run_killed(case, parted, after_steps=1)
    run(case, parted, resume=True)
    worst = assert_same_results(whole, parted)
    print(f"coupled, 1 rank: largest relative difference {worst:.2g}")
    a, b = (read(p / "atoms.extxyz", index=":") for p in (whole, parted))
    applied = [float(r) for r in np.atleast_1d(table(whole / "load.csv")[:, 0])]  # under opening control
    assert [f.info["load_factor"] for f in a] == [f.info["load_factor"] for f in b]
    assert len(a) == 3 and a[0].info["load_factor"] == 0.0 and a[-1].info["load_factor"] == applied[-1]
    for fa, fb in zip(a, b):
        np.testing.assert_allclose(fb.positions, fa.positions, rtol=RTOL, atol=0)
        np.testing.assert_allclose(fb.get_forces(), fa.get_forces(), rtol=RTOL, atol=ATOL)
    # the field files are rewritten from the kept states: byte for byte those of the uninterrupted
    # run on one rank (ADIOS2's profiling.json holds timings)
    files = sorted(p.relative_to(whole) for p in (whole / "fields").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(parted) for p in (parted / "fields").rglob("*") if p.is_file())
    for name in files:
        if name.name != "profiling.json":
            assert (whole / name).read_bytes() == (parted / name).read_bytes(), name

    # other settings: refused before anything is built
    from dataclasses import replace

    from multiscale.api import run as run_case
    from multiscale.case_file import load_case

    other = load_case(case)
    other = replace(other, atoms=replace(other.atoms, handshake_A=4.0))
    with pytest.raises(INPUT_ERRORS, match="other case settings"):
        run_case(other, case.parent, resume=True, output=parted, progress=False)
