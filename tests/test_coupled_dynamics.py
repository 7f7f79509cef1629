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
from coupling.dynamics import CoupledDynamics, crystal_density_amu_A3  # noqa: E402
from coupling.errors import CouplingInputError  # noqa: E402
from coupling.problem import CoupledProblem  # noqa: E402
from multiscale.cli import main  # noqa: E402

from .conftest import ROOT, SHIPPED_MODEL  # noqa: E402
from .coupling_cases import CUTOFF_A, bar_atoms, bar_domain, bar_geometry, cu_crystal  # noqa: E402

COMM = pytest.importorskip("mpi4py.MPI").COMM_WORLD
TIMESTEP_FS = 4.0


@pytest.fixture(scope="module")
def model():
    from atomistic import load_potential

    return load_potential(SHIPPED_MODEL)


def strained_bar(model, pull_A: float):
    """A bar 3 x 3 unit cells across, a core of 2 unit cells, 2 unit cells of continuum at each
    end; xmin held, xmax displaced by ``pull_A`` along x (at load factor 1, solved)."""
    material, a0 = cu_crystal(model)
    bar = bar_geometry(a0, handshake_A=CUTOFF_A, width_cells=3, continuum_cells=2)
    domain = bar_domain(COMM, bar)
    bcs = (Displacement("xmin", (0.0, 0.0, 0.0), ramp=False), Displacement("xmax", (pull_A, 0.0, 0.0)))
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
    with pytest.raises(CouplingInputError, match="temperature_K = -5"):
        CoupledDynamics(problem, density, 2.0).set_temperature(-5.0)
    with pytest.raises(CouplingInputError, match="density_amu_A3"):
        CoupledDynamics(problem, {"body9": density}, 2.0)
    problem.z.array[problem.constrained_unknowns()] += 0.1
    with pytest.raises(CouplingInputError, match="from their Dirichlet values"):
        CoupledDynamics(problem, density, 2.0)


def _case(tmp_path, *swaps) -> Path:
    """``cases/cu_dynamics/thermal_bar.toml`` with 100 steps (and ``swaps``), written to ``tmp_path``."""
    text = (ROOT / "cases" / "cu_dynamics" / "thermal_bar.toml").read_text()
    text = text.replace('"../models/cu_emt.safetensors"', f'"{SHIPPED_MODEL}"')
    for old, new in (("steps = 2500 ", "steps = 100 "), *swaps):
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "case.toml"
    path.write_text(text)
    return path


def test_one_rank_and_two_give_the_same_run(tmp_path):
    """The case file's run (100 steps of 4 fs from 50 K) serially and under ``mpiexec -n 2``: the
    same thermo.csv to 1e-9 relative (the ranks' sums differ at round-off)."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "mpiexec").exists():
        pytest.skip("no mpiexec beside this Python")
    case = _case(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(bin_dir / "multiscale"), "run", str(case), "-q", "--output"]
    for ranks, out in ((1, "one"), (2, "two")):
        launcher = [str(bin_dir / "mpiexec"), "-n", "2"] if ranks == 2 else []
        done = subprocess.run([*launcher, *command, str(tmp_path / out)], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    one, two = (np.loadtxt(tmp_path / out / "thermo.csv", delimiter=",", skiprows=1) for out in ("one", "two"))
    assert one.shape == two.shape == (11, len(open(tmp_path / "one" / "thermo.csv").readline().split(",")))
    np.testing.assert_allclose(two, one, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("swap, message", [
    (("timestep_fs = 4.0", "timestep_fs = -1.0"), "dynamics.timestep_fs = -1.0"),
    (("temperature_K = 50.0", "temperature_K = -3.0"), "dynamics.temperature_K = -3.0"),
    (("log_every = 10", "log_every = 0"), "dynamics.log_every = 0"),
    (("[solver]\n", '[solver]\ncontrol = "opening"\nopening_A = 1.0\n'), "solver.control"),
])
def test_bad_dynamics_input_exits_2(tmp_path, capsys, swap, message):
    code = main(["check", str(_case(tmp_path, swap))])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
