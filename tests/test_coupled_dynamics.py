"""Coupled dynamics (coupling.dynamics): one Hamiltonian for the free atoms and the continuum.

A small Cu bar (its middle atomistic, a 5 Å C1 handshake on each side) with a strained continuum
and a thermal core: the Hamiltonian is conserved and the run is time reversible; with damping it
settles on the static solution of the same problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")

from continuum.boundary import Displacement  # noqa: E402
from continuum.errors import ContinuumInputError  # noqa: E402
from coupling.dynamics import (  # noqa: E402
    CoupledDynamics,
    Pulse,
    Stadium,
    Thermostat,
    VelocityLoad,
    crystal_density_amu_A3,
)
from coupling.errors import CouplingInputError  # noqa: E402
from coupling.problem import CoupledProblem  # noqa: E402
from multiscale.cli import main  # noqa: E402

from .conftest import ROOT, SHIPPED_MODEL  # noqa: E402
from .coupling_cases import CUTOFF_A, bar_atoms, bar_domain, bar_geometry, cu_crystal  # noqa: E402

MPI = pytest.importorskip("mpi4py.MPI")
COMM = MPI.COMM_WORLD
TIMESTEP_FS = 4.0


@pytest.fixture(scope="module")
def model():
    from atomistic import load_potential

    return load_potential(SHIPPED_MODEL)


def strained_bar(model, pull_A: float | None, continuum_cells: int = 2):
    """A bar 3 x 3 unit cells across, a core of 2 unit cells, ``continuum_cells`` unit cells of
    continuum at each end; xmin held, xmax displaced by ``pull_A`` along x (at load factor 1,
    solved), or free (None)."""
    material, a0 = cu_crystal(model)
    bar = bar_geometry(a0, handshake_A=CUTOFF_A, width_cells=3, continuum_cells=continuum_cells)
    domain = bar_domain(COMM, bar)
    bcs = (Displacement("xmin", (0.0, 0.0, 0.0), ramp=False),)
    if pull_A is not None:
        bcs += (Displacement("xmax", (pull_A, 0.0, 0.0)),)
    problem = CoupledProblem(domain, {"body1": material}, bar_atoms(bar), model, bar.handshake, bcs=bcs)
    problem.solve(1)
    return problem, crystal_density_amu_A3(63.546, "fcc", a0)


def test_the_coupled_hamiltonian_is_conserved_and_the_run_reverses(model):
    """Float64, no damping: the free atoms at 50 K in a bar strained by 0.5 %. Over 1000 steps of
    4 fs the Hamiltonian (lumped kinetic energy plus Pi) drifts by less than 1e-3 of the initial
    kinetic energy per ps, with no growing trend; 100 steps, velocities flipped, 100 steps: back
    at the start to 1e-8 Å."""
    problem, density = strained_bar(model, 0.005 * 30.0)
    dynamics = CoupledDynamics(problem, density, TIMESTEP_FS)
    dynamics.set_temperature(50.0, seed=3)
    assert dynamics.free_atom_temperature_K() == pytest.approx(50.0, rel=1e-12)
    start = problem.z.array_r.copy()
    dynamics.run(100)
    moved = float(np.abs(problem.z.array_r - start).max())
    dynamics.reverse()
    dynamics.run(100)
    assert moved > 1e-3
    assert float(np.abs(problem.z.array_r - start).max()) < 1e-8
    dynamics.reverse()
    kinetic0 = dynamics.kinetic_energy()
    times, energies = [], []
    for _ in range(20):
        dynamics.run(50)
        e = dynamics.energies()
        times.append(dynamics.time_fs * 1e-3)
        energies.append(e["hamiltonian"])
    h = np.array(energies) - energies[0]
    slope = np.polyfit(times, h, 1)[0]  # eV/ps
    print(f"H: spread {np.ptp(h):.3g} eV, slope {slope:.3g} eV/ps, initial kinetic {kinetic0:.4g} eV")
    assert abs(slope) < 1e-3 * kinetic0
    assert np.ptp(h) < 1e-2 * kinetic0
    first, last = np.ptp(h[:10]), np.ptp(h[10:])
    assert last < 3 * first + 1e-6 * kinetic0  # no trend growing with time


def test_the_automatic_time_step_resolves_the_shortest_period(model):
    """Without a time step, 1/20 of the coupled system's shortest period (the largest eigenvalue of
    M^-1 K by SLEPc): within 10 % of the perfect crystal's own (the blending neither stiffens nor
    lightens the handshake beyond the crystal's), and the run at it conserves H."""
    from ase.build import bulk

    from atomistic.analysis.timestep import suggest_timestep

    problem, density = strained_bar(model, 0.005 * 30.0)
    dynamics = CoupledDynamics(problem, density)
    crystal = suggest_timestep(model, bulk("Cu", "fcc", a=cu_crystal(model)[1], cubic=True).repeat(3), relax=False)
    print(f"automatic time step {dynamics.timestep_fs:.4g} fs; the perfect crystal's {crystal.timestep_fs:.4g} fs")
    assert dynamics.timestep_fs == pytest.approx(crystal.timestep_fs, rel=0.1)
    dynamics.set_temperature(50.0, seed=1)
    h0, kinetic0 = dynamics.energies()["hamiltonian"], dynamics.kinetic_energy()
    dynamics.run(300)
    assert abs(dynamics.energies()["hamiltonian"] - h0) < 1e-2 * kinetic0


def test_damped_coupled_dynamics_settles_on_the_static_solution(model):
    """From rest at the unloaded positions with the end already pulled (the static problem's
    boundary values), damped dynamics settles on the static solution to 1e-4 Å."""
    problem, density = strained_bar(model, 0.15)
    static = problem.z.array_r.copy()
    fixed = problem.constrained_unknowns()
    values = np.zeros_like(static)
    values[fixed] = static[fixed]
    problem.z.array[:] = values
    dynamics = CoupledDynamics(problem, density, TIMESTEP_FS, damping_per_fs=0.004)
    dynamics.run(1500)
    error = float(np.abs(problem.z.array_r - static).max())
    print(f"{problem.regions()}, {problem.n_global} unknowns: settled to {error:.3g} Å of the static solution, "
          f"kinetic energy {dynamics.kinetic_energy():.3g} eV")
    assert error < 1e-4
    assert dynamics.kinetic_energy() < 1e-8


def test_dynamics_refuses_what_cannot_run(model):
    problem, density = strained_bar(model, 0.05)
    with pytest.raises(CouplingInputError, match="timestep_fs = -1"):
        CoupledDynamics(problem, density, -1.0)
    with pytest.raises(CouplingInputError, match="above the stable limit"):
        CoupledDynamics(problem, density, 50.0)
    with pytest.raises(CouplingInputError, match="stadium_A = 9 Å: wider than the handshake"):
        CoupledDynamics(problem, density, 2.0, stadium=Stadium(9.0), check_stability=False)
    with pytest.raises(ContinuumInputError, match="velocity load: boundary = 'top': no such boundary"):
        CoupledDynamics(problem, density, 2.0, loads=(VelocityLoad("top", (1.0, None, None)),), check_stability=False)
    with pytest.raises(CouplingInputError, match="not held by a displacement condition"):
        CoupledDynamics(problem, density, 2.0, loads=(VelocityLoad("ymax", (1.0, None, None)),),
                        check_stability=False)
    with pytest.raises(CouplingInputError, match="temperature_K = -5"):
        CoupledDynamics(problem, density, 2.0).set_temperature(-5.0)
    with pytest.raises(CouplingInputError, match="density_amu_A3"):
        CoupledDynamics(problem, {"body9": density}, 2.0)
    problem.z.array[problem.constrained_unknowns()] += 0.1
    with pytest.raises(CouplingInputError, match="from their Dirichlet values"):
        CoupledDynamics(problem, density, 2.0)


@pytest.mark.parametrize("kind", ["langevin", "bussi"])
def test_the_thermostat_holds_the_core_at_its_temperature(model, kind):
    """The free atoms thermostatted at 300 K (time constant 50 fs, a 4 Å stadium at the same
    temperature): from 300 K, their mean temperature over the second half of 1000 steps of 4 fs
    is within 5 % of the target (one seed; the 10^4-step run is in docs/verification.md), and
    H + bath stays constant to 1 % of what the bath exchanged."""
    problem, density = strained_bar(model, 0.005 * 30.0)
    stadium = Stadium(4.0)
    dynamics = CoupledDynamics(problem, density, TIMESTEP_FS, thermostat=Thermostat(kind, 300.0, 50.0),
                               stadium=stadium, seed=11, check_stability=False)
    dynamics.set_temperature(300.0, seed=2)
    c0 = dynamics.energies()["conserved"]
    temperatures, exchanged = [], 0.0
    for k in range(100):
        dynamics.run(10)
        if k >= 50:
            temperatures.append(dynamics.free_atom_temperature_K())
        exchanged = max(exchanged, abs(dynamics.energies()["bath"]))
    e = dynamics.energies()
    mean = float(np.mean(temperatures))
    print(f"{kind}: mean {mean:.1f} K over the second half; bath exchanged up to {exchanged:.3g} eV, drift of "
          f"H + bath {e['conserved'] - c0:.3g} eV")
    assert mean == pytest.approx(300.0, rel=0.05)
    assert exchanged > 0.05
    assert abs(e["conserved"] - c0) < 1e-2 * exchanged + 1e-3


def test_a_moving_boundary_does_the_work_the_energy_gains(model):
    """No bath: the far end pulled at 0.5 Å/ps (reached over 200 fs) for 400 steps of 4 fs.
    H rises by the work the boundary does, int dPi/dz_b . dz_b: H - work stays constant to 1 %
    of the work, and the moved nodes are where the velocity history puts them."""
    problem, density = strained_bar(model, 0.005 * 30.0)
    dynamics = CoupledDynamics(problem, density, TIMESTEP_FS, loads=(VelocityLoad("xmax", (0.5, None, None),
                                                                                 ramp_fs=200.0),),
                               check_stability=False)
    moved, start = dynamics._moved, problem.z.array_r[dynamics._moved].copy()
    e0 = dynamics.energies()
    dynamics.run(400)
    e = dynamics.energies()
    travel = 0.5e-3 * (1600.0 - 100.0)
    print(f"boundary work {e['boundary_work']:.4g} eV; H changed by {e['hamiltonian'] - e0['hamiltonian']:.4g} eV")
    assert e["boundary_work"] > 0.1
    assert abs(e["conserved"] - e0["conserved"]) < 1e-2 * e["boundary_work"]
    np.testing.assert_allclose(problem.z.array_r[moved] - start, travel, rtol=1e-12)
    np.testing.assert_allclose(dynamics.nodal_velocity()[moved], 0.5e-3, rtol=1e-12)  # shown, not integrated


def test_dashpots_let_a_wave_leave_the_model(model):
    """A broadband longitudinal bar wave (Gaussian, sigma 1.5 unit cells, with its lateral
    contraction) launched in the continuum
    towards the free far end: with dashpots there (Lysmer: impedance sqrt(rho C11) normal,
    sqrt(rho C44) shear, per area) 12 % of its energy is left in the model once it has passed the
    face (15 % asserted: a bar wave's impedance is sqrt(rho E), not sqrt(rho C11), so 5 % comes
    back, and the shortest components of the pulse lag behind); without them it all stays."""
    from ase import units

    left = {}
    for dashpots in ((), ("xmax",)):
        problem, density = strained_bar(model, None, continuum_cells=14)
        material, a0 = cu_crystal(model)
        C, S = material.tensor.C, np.linalg.inv(material.tensor.C)
        speed = float(np.sqrt(units.GPa / S[0, 0] / density) * units.fs)  # bar wave, Å/fs
        length = COMM.allreduce(float(problem.domain.mesh.geometry.x[:, 0].max()), op=MPI.MAX)
        dynamics = CoupledDynamics(problem, density, TIMESTEP_FS, dashpots=dashpots, elastic_constants_GPa=C,
                                   check_stability=False)
        h_static = dynamics.energies()["hamiltonian"]
        width = 3 * a0
        dynamics.launch(Pulse(0, length - 7 * a0, 1.5 * a0, 0.02, lateral=tuple(S[0, :3] / S[0, 0]),
                              lateral_centre_A=(0.0, width / 2, width / 2)), speed)
        pulse = dynamics.energies()["hamiltonian"] - h_static
        dynamics.run(int(2 * 12 * a0 / speed / TIMESTEP_FS))
        e = dynamics.energies()
        left[dashpots] = (e["hamiltonian"] - h_static) / pulse
        print(f"dashpots {list(dashpots)}: pulse {pulse:.4g} eV at {speed:.4g} Å/fs; left in the model "
              f"{left[dashpots]:.3g}, taken out by the dashpots {e['bath'] / pulse:.3g}")
    assert left[()] > 0.9
    assert left[("xmax",)] < 0.15


def _case(tmp_path, *swaps) -> Path:
    """``cases/dynamics/thermal_bar.toml`` with 100 steps (and ``swaps``), written to ``tmp_path``."""
    text = (ROOT / "cases" / "dynamics" / "thermal_bar.toml").read_text()
    text = text.replace('"../models/cu_emt.safetensors"', f'"{SHIPPED_MODEL}"')
    for old, new in (("steps = 2500 ", "steps = 100 "), *swaps):
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "case.toml"
    path.write_text(text)
    return path


def test_one_rank_and_two_give_the_same_run(tmp_path):
    """The case file's run (100 steps of 4 fs from 50 K, a Langevin thermostat and a stadium: the
    noise is drawn on the atom rank alone) serially and under ``mpiexec -n 2``: the same
    thermo.csv to 1e-9 relative (the ranks' sums differ at round-off)."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "mpiexec").exists():
        pytest.skip("no mpiexec beside this Python")
    case = _case(tmp_path, ("temperature_K = 50.0", 'temperature_K = 50.0\nthermostat = "langevin"\nstadium_A = 4.0'))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(bin_dir / "multiscale"), "run", str(case), "-q", "--output"]
    for ranks, out in ((1, "one"), (2, "two")):
        launcher = [str(bin_dir / "mpiexec"), "-n", "2"] if ranks == 2 else []
        done = subprocess.run([*launcher, *command, str(tmp_path / out)], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    one, two = (np.loadtxt(tmp_path / out / "thermo.csv", delimiter=",", skiprows=1) for out in ("one", "two"))
    assert one.shape == two.shape == (11, len(open(tmp_path / "one" / "thermo.csv").readline().split(",")))
    # atol: the reactions' y and z components are sums of forces that cancel to ~1e-12 eV/Å
    np.testing.assert_allclose(two, one, rtol=1e-9, atol=1e-10)


def test_a_case_with_a_pulse_and_a_moving_end_runs(tmp_path):
    """From a case file: at 0 K, a bar-wave packet launched in the core and the far end pulled at
    0.2 Å/ps. The run's conserved energy (H + bath - work) holds to 1 % of the boundary's work, the
    packet's energy is the initial kinetic energy."""
    import json

    from ase.io import read

    swaps = (("temperature_K = 50.0", "temperature_K = 0.0"), ("steps = 100 ", "steps = 60 "),
             ("frames_every = 250", "frames_every = 60"),
             ("[output]", '[dynamics.pulse]\ncentre_A = 28.7\nwidth_A = 3.0\namplitude_A = 0.02\nwavelength_A = 7.2\n'
              'wave = "bar"\n\n[[dynamics.velocity]]\nboundary = "xmax"\nvelocity_A_ps = [0.2, 0.0, 0.0]\n\n[output]'))
    case = _case(tmp_path, *swaps)
    assert main(["run", str(case), "--output", str(tmp_path / "out"), "-q"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    print(f"pulse {report['initial_kinetic_eV']:.4g} eV; boundary work {report['boundary_work_eV']:.4g} eV, largest "
          f"drift of H + bath - work {report['drift']['largest_eV']:.3g} eV")
    assert report["initial_kinetic_eV"] > 1e-3
    assert report["boundary_work_eV"] > 0
    assert report["drift"]["largest_eV"] < 1e-2 * max(report["boundary_work_eV"], report["initial_kinetic_eV"])
    last = read(tmp_path / "out" / "atoms.extxyz", index=-1)
    assert last.info["time_fs"] == pytest.approx(240.0)


def test_a_killed_run_resumes_bit_for_bit(tmp_path):
    """The case file's run with a Langevin thermostat and a stadium (200 steps, checkpoints every 50
    steps and at every field output), SIGKILLed after a checkpoint and resumed with --resume:
    thermo.csv, the atoms' frames and the report's numbers equal those of an uninterrupted run
    bit for bit (the thermostat's noise generator is restored with the state); the field files
    are rewritten to the same sizes; resuming with other settings exits 2."""
    import json
    import signal

    from .test_fe_resume import kill_when

    bin_dir = Path(sys.executable).parent
    swaps = (("temperature_K = 50.0", 'temperature_K = 300.0\nthermostat = "langevin"\nstadium_A = 4.0\n'
              "checkpoint_every = 50"), ("steps = 100 ", "steps = 200 "), ("every = 25 ", "every = 7 "),
             ("frames_every = 250", "frames_every = 30"))
    case = _case(tmp_path, *swaps)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(bin_dir / "multiscale"), "run", str(case), "-q", "--output"]
    whole, parted = tmp_path / "whole", tmp_path / "parted"
    done = subprocess.run([*command, str(whole)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    meta = parted / "checkpoint" / "checkpoint.json"
    returncode, _ = kill_when([*command, str(parted)], lambda: json.loads(meta.read_text())["step"] >= 100)
    assert returncode == -signal.SIGKILL, "the run was not killed part way"
    step = json.loads(meta.read_text())["step"]
    done = subprocess.run([*command, str(parted), "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    print(f"killed after the checkpoint of step {step}, resumed")
    assert step < 200
    for name in ("thermo.csv", "atoms.extxyz"):
        assert (parted / name).read_bytes() == (whole / name).read_bytes(), name
    a, b = (json.loads((p / "report.json").read_text()) for p in (whole, parted))
    for key in ("final", "drift", "free_atoms_K_second_half", "bath_eV", "temperature_profile", "steps"):
        assert a[key] == b[key], key
    files = sorted(p.relative_to(parted) for p in (parted / "fields").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(whole) for p in (whole / "fields").rglob("*") if p.is_file())
    for name in files:
        if name.name != "profiling.json":
            assert (parted / name).stat().st_size == (whole / name).stat().st_size, name
    (tmp_path / "other").mkdir()
    other = _case(tmp_path / "other", *swaps[1:])  # no thermostat: other settings
    assert main(["run", str(other), "--output", str(parted), "--resume", "-q"]) == 2


@pytest.mark.parametrize("swap, message", [
    (("timestep_fs = 4.0", "timestep_fs = -1.0"), "dynamics.timestep_fs = -1.0"),
    (("temperature_K = 50.0", "temperature_K = -3.0"), "dynamics.temperature_K = -3.0"),
    (("log_every = 10", "log_every = 0"), "dynamics.log_every = 0"),
    (("[solver]\n", '[solver]\ncontrol = "opening"\nopening_A = 1.0\n'), "solver.control"),
    (("log_every = 10", "log_every = 10\nstadium_A = 6.0"), "dynamics.stadium_A = 6 Å: wider than the handshake"),
    (("log_every = 10", 'log_every = 10\nthermostat = "nose"'), "dynamics.thermostat"),
    (("log_every = 10", 'log_every = 10\ndashpots = ["xmax"]'), "['xmax'] are held in all three components"),
    (("log_every = 10", "log_every = 10\nseed = -4"), "dynamics.seed = -4"),
    (("frames_every = 250", "frames_every = 25"), "dynamics.frames_every = 25: expected a multiple"),
    (("[output]", '[[dynamics.velocity]]\nboundary = "ymin"\nvelocity_A_ps = [1.0, 0, 0]\n\n[output]'),
     "dynamics.velocity: boundary 'ymin' has no displacement condition"),
])
def test_bad_dynamics_input_exits_2(tmp_path, capsys, swap, message):
    code = main(["check", str(_case(tmp_path, swap))])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err


def test_irun_yields_every_thermo_line_and_stops_where_it_is_left(tmp_path):
    """The Python API's ``irun``: one output step per thermo line (t = 0 included) with the row
    thermo.csv gets and the live dynamics; the report once exhausted, equal to ``run``'s. Leaving
    the loop early stops the run, and ``resume=True`` ends it with the uninterrupted numbers; a
    kind without output steps is refused."""
    import json

    from multiscale import CaseError, irun, load_case, run

    case = load_case(_case(tmp_path, ("steps = 100 ", "steps = 40 ")))
    steps = irun(case, tmp_path, output=tmp_path / "whole", progress=False)
    seen = [(step.step, step.time_fs, step.thermo["hamiltonian_eV"], len(step.state.atoms())) for step in steps]
    assert [s[0] for s in seen] == [0, 10, 20, 30, 40]
    assert [s[1] for s in seen] == pytest.approx([0.0, 40.0, 80.0, 120.0, 160.0])
    rows = np.loadtxt(tmp_path / "whole" / "thermo.csv", delimiter=",", skiprows=1)
    header = open(tmp_path / "whole" / "thermo.csv").readline().strip().split(",")
    np.testing.assert_array_equal(rows[:, header.index("hamiltonian_eV")], [s[2] for s in seen])
    written = json.loads((tmp_path / "whole" / "report.json").read_text())
    assert steps.report["final"] == written["final"] and steps.report["steps"] == written["steps"] == 40
    with irun(case, tmp_path, output=tmp_path / "parted", progress=False) as parted:
        for step in parted:
            if step.step == 20:
                break
    assert not (tmp_path / "parted" / "report.json").exists()
    resumed = run(case, tmp_path, output=tmp_path / "parted", resume=True, progress=False)
    assert resumed["final"] == steps.report["final"]
    with pytest.raises(CaseError, match="irun: kind 'continuum'"):
        irun(load_case(ROOT / "cases" / "cu_continuum" / "bonded_blocks.toml"), ROOT / "cases" / "cu_continuum")


def test_coupled_dynamics_approaches_full_md_as_the_core_grows(model):
    """Against full MD of the same bar with the same model (``tests/full_md_cases.py``, whose
    table in docs/verification.md follows the pulse to the held end and back): a bar-wave pulse
    launched from the middle of a bar 16 unit cells long runs out through the core, the handshake
    and the continuum. The displacement history of the middle atoms until the pulse reaches the
    end differs from full MD's less with a core of 6 unit cells than with one of 2, and within
    the bounds."""
    from .full_md_cases import coupled_history, error, full_history, setting

    st = setting(model, length_cells=16, round_trip=False)
    full = full_history(model, st)
    runs = {core: coupled_history(model, core, st) for core in (2, 6)}
    errors = {core: error(run, full) for core, run in runs.items()}
    print(f"full MD {1e3 * full['step_s']:.1f} ms per step; " + "; ".join(
        f"core {core} a0: error {errors[core]:.3g}, {1e3 * run['step_s']:.1f} ms per step"
        for core, run in runs.items()))
    assert errors[6] < errors[2] < 0.2  # measured 0.134 and 0.054
    assert errors[6] < 0.08


def test_the_handshake_sends_back_little_of_a_long_wave_and_the_stadium_takes_the_short_ones(model):
    """Wave transmission (``tests/wave_cases.py``; the curve from lambda = 4 h to 10 h, other
    handshakes and stadiums are in docs/verification.md): a longitudinal packet of lambda = 10 h
    launched in the core of a Cu wire 3 unit cells across (at its own rest positions) leaves
    through a 5 Å handshake into the continuum. What it sends back into the core, its difference
    from the same pulse in a fully atomistic wire, is below 1 % of its energy. A broadband pulse
    holding wavelengths down to two lattice spacings, which the mesh cannot carry (16 % come back
    through a 10 Å handshake alone, in the table), sends back below 2 % through a 10 Å stadium
    (50 fs) beside it. Steps
    of 20 fs here (the table's 10 fs gives the same to 2 %: 0.00687 and 0.0161)."""
    from .wave_cases import broadband, packet, reflection

    long_wave = reflection(model, packet(10, timestep_fs=20.0))
    assert abs(long_wave["prestrain"]) < 1e-4  # the core at the wire's rest state: the runs start as one motion
    assert long_wave["reflected"] < 0.01  # measured 0.00697
    short = reflection(model, broadband(handshake_A=10.0, stadium_A=10.0, stadium_time_fs=50.0, timestep_fs=20.0))
    assert short["reflected"] < 0.02  # measured 0.0164
    assert short["absorbed"] > 0.2  # what the stadium took out: measured 0.35
