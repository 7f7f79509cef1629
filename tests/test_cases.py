"""Every simulation case in cases/ runs in CI in a tiny variant (the files are executable
documentation), and bad settings in them exit with code 2 and one line naming the setting."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from multiscale.case_file import load_case
from multiscale.cli import main

from .conftest import ROOT

CASES = ROOT / "cases"
RECORDED = ROOT / "tests" / "data" / "case_reports.json"


def tiny(case):
    """The same case, small enough for CI."""
    if case.kind == "md":
        md = replace(case.md, steps=120, log_every=5, trajectory_every=20, checkpoint_every=60)
        structure = replace(case.structure, repeat=(1, 1, 1), replicas=min(case.structure.replicas, 2))
        analysis = replace(case.analysis, equilibration_ps=0.0)
        return replace(case, md=md, structure=structure, analysis=analysis)
    if case.kind == "reaction":
        return replace(case, neb=replace(case.neb, n_images=5, fmax=0.05), irc=replace(case.irc, step=0.5, fmax=0.1),
                       rates=replace(case.rates, temperatures_K=(300.0, 600.0)))
    if case.kind == "coupled" and case.solver.control == "opening":
        # a section of 3 x 3 lattice constants (324 atoms instead of 900), 0.2 Å a step to 1 Å: through the
        # peak (at 0.42 Å) and into the snap-back
        lengths, upper, a0 = case.mesh.lengths_A, case.atoms.upper_A, case.mesh.lengths_A[1] / case.mesh.divisions[1]
        mesh = replace(case.mesh, lengths_A=(lengths[0], 3 * a0, 3 * a0), divisions=(case.mesh.divisions[0], 3, 3))
        atoms = replace(case.atoms, upper_A=(upper[0], 3 * a0 + 1.0, 3 * a0 + 1.0))
        return replace(case, mesh=mesh, atoms=atoms, solver=replace(case.solver, steps=5, opening_A=1.0))
    if case.kind == "coupled":
        return replace(case, solver=replace(case.solver, steps=2))
    if case.kind == "coupled_dynamics" and case.interface is not None and case.dynamics.velocity:
        # debonding: a section of 3 x 3 lattice constants, pulled 10 times faster (at 1 Å/ps the bar wave
        # the moved end sends, rho c_bar v = 2.6 GPa, is above the interface's strength: it parts in 3 ps)
        lengths, upper, a0 = case.mesh.lengths_A, case.atoms.upper_A, case.mesh.lengths_A[1] / case.mesh.divisions[1]
        mesh = replace(case.mesh, lengths_A=(lengths[0], 3 * a0, 3 * a0), divisions=(case.mesh.divisions[0], 3, 3))
        atoms = replace(case.atoms, upper_A=(upper[0], 3 * a0 + 1.0, 3 * a0 + 1.0))
        velocity = tuple(replace(v, velocity_A_ps=tuple(10.0 * c for c in v.velocity_A_ps))
                         for v in case.dynamics.velocity)
        return replace(case, mesh=mesh, atoms=atoms, dynamics=replace(case.dynamics, steps=1000, frames_every=500,
                                                                      log_every=10, velocity=velocity))
    if case.kind == "coupled_dynamics":
        return replace(case, dynamics=replace(case.dynamics, steps=200, frames_every=100, log_every=10))
    if case.kind == "active_learning":
        stages = tuple(replace(st, steps=30) for st in case.loop.stages[-2:])
        loop = replace(case.loop, stages=stages, max_oracle_calls=3, cooldown_steps=10, check_every=10,
                       fine_tune=replace(case.loop.fine_tune, max_epochs=3))
        structure = replace(case.structure, size=(2, 2, 3)) if case.structure.surface else case.structure
        return replace(case, loop=loop, structure=structure, committee=replace(case.committee, members=2),
                       initial=replace(case.initial, n_frames=3), training=replace(case.training, max_epochs=10),
                       reference=replace(case.reference, frames_per_temperature=3, interval_steps=5,
                                         equilibration_steps=5))
    if case.kind == "surface_hopping":
        model = case.model
        if model.train is not None:
            model = replace(model, train=replace(model.train, epochs=20))
        return replace(case, model=model, initial=replace(case.initial, trajectories=40),
                       run=replace(case.run, steps=min(case.run.steps, 100)))
    return case


def check_debonding(case, report: dict, rows: list[dict], out: Path) -> None:
    """A bar pulled apart at its end (the debonding case's CI variant): until the wave it sends
    comes back, the moved end feels the bar's impedance, ``A sqrt(rho E_x) v`` (a bar wave: free
    lateral surfaces); the force along the pull times the end's velocity is the rate of the
    boundary's work; the interface parts and takes up ``W_sep`` times its area."""
    from ase import units

    s, load = report["debonding"], case.dynamics.velocity[0]
    t = np.array([float(r["time_fs"]) for r in rows])
    force = np.array([float(r["reaction_xmax_x_eV_A"]) for r in rows])
    speed = np.minimum(t / load.ramp_fs, 1.0) * load.velocity_A_ps[0] * 1e-3  # Å/fs
    work = np.concatenate([[0.0], np.cumsum(0.5 * (force[1:] * speed[1:] + force[:-1] * speed[:-1]) * np.diff(t))])
    recorded = np.array([float(r["boundary_work_eV"]) for r in rows])
    print(f"boundary work {recorded[-1]:.4g} eV; from the force at the thermo lines {work[-1]:.4g} eV")
    assert work[-1] == pytest.approx(recorded[-1], rel=0.02)
    young = 1.0 / np.linalg.inv(np.asarray(report["C_GPa"]))[0, 0] * units.GPa  # eV/Å^3
    rho = report["density_amu_A3"] / (units.fs**2)  # eV fs^2 / Å^5
    c = np.sqrt(young / rho)  # Å/fs
    impedance = s["area_A2"] * np.sqrt(young * rho) * load.velocity_A_ps[0] * 1e-3  # eV/Å
    back = 2 * (case.mesh.lengths_A[0] - case.mesh.split_x_A) / c  # fs: to the interface and back
    window = (t > load.ramp_fs + 100.0) & (t < back)
    measured = float(np.mean(force[window] - force[0]))
    print(f"the moved end's force {measured:.4g} eV/Å from {load.ramp_fs + 100:g} to {back:.0f} fs; A sqrt(rho E) v "
          f"= {impedance:.4g} eV/Å; the law's peak times the area {s['law_peak_force_eV_A']:.4g} eV/Å")
    assert window.sum() >= 5 and measured == pytest.approx(impedance, rel=0.1)
    assert s["separated_at_fs"] is not None
    assert s["final_interface_energy_eV"] == pytest.approx(s["W_sep_times_area_eV"], rel=0.01)
    assert (out / "debonding.png").exists()


def run_tiny(path: Path, out: Path) -> dict:
    """Run the case file at ``path`` in its CI-sized variant, outputs in ``out``; its report."""
    from multiscale.api import run

    return run(tiny(load_case(path)), path.parent, output=out, progress=False)


@pytest.mark.parametrize("path", sorted(p.relative_to(CASES) for p in [*CASES.glob("cu_*/*.toml"),
                                                                         *CASES.glob("dynamics/*.toml"),
                                                                         *CASES.glob("active_learning/*.toml"),
                                                                         *CASES.glob("multistate/*.toml")]
                                        if "cu_emt" not in str(p)), ids=str)
def test_case_runs(path, tmp_path):
    raw = (CASES / path).read_text()
    if 'name = "gfn' in raw:
        pytest.importorskip("tblite", reason="the xTB oracle is the optional extra 'oracles'")
    case = tiny(load_case(CASES / path))
    if case.kind in ("continuum", "coupled"):
        pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the recorded numbers were made on one thread (reductions in one order)
    try:
        report = run_tiny(CASES / path, tmp_path)
    finally:
        torch.set_num_threads(threads)
    recorded = json.loads(RECORDED.read_text()).get(str(path))
    if recorded is not None:  # the same numbers as when they were recorded (scripts/case_reports.py)
        from scripts.case_reports import compare, numbers

        assert compare({str(path): recorded}, {str(path): numbers(report)}) == []
    assert (tmp_path / "report.json").exists()
    assert json.loads((tmp_path / "report.json").read_text())["name"] == case.name
    if case.kind == "md":
        assert (tmp_path / "thermo.csv").exists() and (tmp_path / "trajectory.extxyz").exists()
        if case.analysis.heat_capacity:
            assert report["analysis"]["heat_capacity"]["per_atom_kB"] > 0
        if case.analysis.compressibility:
            assert report["analysis"]["compressibility"]["bulk_modulus_GPa"] > 0
    if case.kind == "continuum":
        assert (tmp_path / "load.csv").exists() and (tmp_path / "load.png").exists()
        assert (tmp_path / "fields" / "displacement.bp").is_dir()
        if case.interface is not None and case.interface.law == "uber":  # pulled apart: W_sep A dissipated
            from continuum.units import J_per_m2

            area = case.mesh.lengths_A[1] * case.mesh.lengths_A[2]
            stored = report["final_energies_eV"]["interface:interface_eV"]
            assert stored == pytest.approx(case.interface.W_sep_J_m2 * J_per_m2 * area, rel=0.01)
    if case.kind == "coupled":
        from ase.io import read

        frames = read(tmp_path / "atoms.extxyz", index=":")
        rows = list(csv.DictReader(open(tmp_path / "load.csv")))
        assert frames[0].info["load_factor"] == 0
        assert frames[-1].info["load_factor"] == pytest.approx(float(rows[-1]["load_factor"]))
        assert set(frames[0].arrays["region"]) == {0, 1, 2}
        pull = [float(r["reaction_xmax_x_eV_A"]) for r in rows]
        assert frames[-1].positions[:, 0].max() > frames[0].positions[:, 0].max()
        if case.solver.control == "opening":  # through the peak: the ends move back while the interface opens
            lam = [float(r["load_factor"]) for r in rows]
            assert [float(r["opening_A"]) for r in rows][-1] == pytest.approx(1.0)
            assert pull[-1] < max(pull) and lam[-1] < max(lam)
            summary = report["pull_off"]
            assert summary["peak_reaction_eV_A"] == pytest.approx(summary["series_peak_reaction_eV_A"], rel=0.05)
        else:
            assert frames[-1].info["load_factor"] == 1
            assert 0 < pull[0] < pull[1]  # the bars resist the pull, more as it grows
        if case.interface is not None and case.interface.law == "model":
            assert report["interface_law"]["W_sep_eV_A2"] == pytest.approx(0.1432, rel=0.01)
    if case.kind == "coupled_dynamics":  # Hamiltonian dynamics: H stays put while energy flows between the parts
        from ase.io import read

        rows = list(csv.DictReader(open(tmp_path / "thermo.csv")))
        drift = np.array([float(r["drift_eV"]) for r in rows])
        d = case.dynamics
        assert len(rows) == d.steps // d.log_every + 1
        assert np.abs(drift).max() < 1e-2 * max(report["initial_kinetic_eV"], report["boundary_work_eV"])
        assert float(rows[0]["free_atoms_K"]) == pytest.approx(d.temperature_K)
        frames = read(tmp_path / "atoms.extxyz", index=":")
        assert len(frames) == d.steps // d.frames_every + 1 and np.abs(frames[-1].get_velocities()).max() > 0
        if "debonding" in report:
            check_debonding(case, report, rows, tmp_path)
        assert (tmp_path / "energy.png").exists() and (tmp_path / "fields" / "displacement.bp").is_dir()
        if case.dynamics.thermostat != "none":  # the bath's exchange is in the conserved energy; the profile is drawn
            assert abs(report["bath_eV"]) > 10 * np.abs(drift).max()
            assert (tmp_path / "temperature.png").exists() and report["temperature_profile"]["samples"] > 0
    if case.kind == "active_learning":
        assert report["loop"]["oracle_calls"] <= 3 and len(report["learning"]) == report["loop"]["generation"] + 1
        for name in ("dataset.extxyz", "disagreement.png", "learning.png", "calibration.png", "learning.csv",
                     "reference.extxyz"):
            assert (tmp_path / name).exists(), name
    if case.kind == "surface_hopping":
        for name in ("populations.csv", "populations.png", "hops.csv", "hops_vs_time.csv", "hops.png",
                     "final.extxyz"):
            assert (tmp_path / name).exists(), name
        assert sum(report["final_surface_populations"]) == pytest.approx(1.0)
        assert report["max_energy_change_eV"] < 0.01
        if case.model.train is not None:
            from atomistic.multistate.files import load_diabatic

            assert load_diabatic(tmp_path / "model.safetensors").n_states == report["n_states"]
    if case.kind == "reaction":
        assert report["saddle"]["barrier_eV"] > 0.1 and (tmp_path / "arrhenius.png").exists()
        assert (tmp_path / "irc.png").exists() and (tmp_path / "rates.csv").exists()


MD_CASE = """
kind = "md"
name = "bad"
[potential]
path = "{model}"
[structure]
{structure}
[md]
ensemble = "{ensemble}"
steps = 10
timestep_fs = {dt}
[md.thermostat]
temperature_K = {t}
{barostat}
"""


@pytest.mark.parametrize("fields, message", [
    ({"t": -5.0}, "temperature_K"),
    ({"dt": 0.0}, "timestep_fs"),
    ({"ensemble": "npt", "barostat": "[md.barostat]\npressure_GPa = 0.0",
      "structure": 'file = "{mol}"'}, "barostat needs a periodic cell"),
])
def test_bad_md_settings_exit_2(fields, message, tmp_path, capsys):
    from ase.build import molecule
    from ase.io import write

    mol = molecule("CH4")
    mol.set_chemical_symbols(["Cu"] * 5)
    mol.positions *= 2.0
    write(tmp_path / "mol.xyz", mol)
    values = {"model": CASES / "models" / "cu_emt.safetensors", "structure": 'element = "Cu"\na = 3.6',
              "ensemble": "nvt", "dt": 2.0, "t": 300.0, "barostat": ""}
    values.update(fields)
    values["structure"] = values["structure"].format(mol=tmp_path / "mol.xyz")
    path = tmp_path / "case.toml"
    path.write_text(MD_CASE.format(**values))
    code = main(["run", str(path), "--output", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_irc_from_a_minimum_is_refused(tmp_path, capsys):
    """A 'reaction' whose two endpoints are the same minimum has no saddle: exit 2, one line."""
    from ase.build import bulk
    from ase.io import write

    a = bulk("Cu", "fcc", a=3.59, cubic=True)
    write(tmp_path / "a.extxyz", a)
    path = tmp_path / "case.toml"
    path.write_text(f"""
kind = "reaction"
name = "none"
[potential]
path = "{CASES / 'models' / 'cu_emt.safetensors'}"
[endpoints]
initial = "a.extxyz"
final = "a.extxyz"
[neb]
n_images = 3
""")
    code = main(["run", str(path), "--output", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "imaginary" in err and "Traceback" not in err


def test_paths_are_relative_to_the_case(tmp_path):
    assert Path(load_case(CASES / "cu_md" / "nvt.toml").potential.path).name == "cu_emt.safetensors"


def test_continuum_case_gives_the_same_energy_on_two_ranks(tmp_path):
    """DESIGN V11 through the command line: ``mpiexec -n 2 multiscale run`` against one process."""
    import os
    import subprocess
    import sys

    pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")
    bindir = Path(sys.executable).parent
    if not (bindir / "mpiexec").exists() or not (bindir / "multiscale").exists():
        pytest.skip("no mpiexec or multiscale script beside this Python")
    case = CASES / "cu_continuum" / "bonded_blocks.toml"
    totals = []
    for ranks in (1, 2):
        out = tmp_path / f"n{ranks}"
        subprocess.run([str(bindir / "mpiexec"), "-n", str(ranks), str(bindir / "multiscale"), "run", str(case),
                        "--output", str(out), "-q"], check=True, timeout=600, capture_output=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
        report = json.loads((out / "report.json").read_text())
        assert report["ranks"] == ranks
        totals.append(report["final_energies_eV"]["total_eV"])
    assert totals[1] == pytest.approx(totals[0], rel=1e-8)


def test_bad_continuum_case_exits_2(tmp_path, capsys):
    pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")
    text = (CASES / "cu_continuum" / "bonded_blocks.toml").read_text()
    text = text.replace('path = "../models/cu_emt.safetensors"', f'path = "{CASES / "models" / "cu_emt.safetensors"}"')
    path = tmp_path / "case.toml"
    path.write_text(text.replace('name = "ymax"', 'name = "top"'))
    code = main(["run", str(path), "--output", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "'top'" in err and "a box's faces are" in err and "Traceback" not in err
    path.write_text(text.replace("split_x_A = 4.0", "split_x_A = 4.3"))
    code = main(["run", str(path), "--output", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "not an interior grid plane" in err


def test_continuum_case_with_a_tabulated_law_matches_the_law_it_samples(tmp_path):
    """The same pull-off with the UBER law given as a table (opening in Å, energy in J/m^2)."""
    pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")
    import numpy as np

    from continuum.cohesive import UBER
    from continuum.units import J_per_m2
    from multiscale.api import run

    case = load_case(CASES / "cu_continuum" / "bonded_blocks.toml")
    uber = UBER(case.interface.W_sep_J_m2 * J_per_m2, case.interface.length_A)
    d = np.linspace(0.0, 16.0, 161)
    np.savetxt(tmp_path / "law.csv", np.column_stack([d, uber.evaluate(d, 0 * d).phi / J_per_m2]), delimiter=",",
               header="opening_A,energy_J_m2")
    tabulated = replace(case, interface=replace(case.interface, law="table", table=str(tmp_path / "law.csv"),
                                                W_sep_J_m2=None, length_A=None),
                        solver=replace(case.solver, steps=20))
    reference = replace(case, solver=replace(case.solver, steps=20))
    base = CASES / "cu_continuum"
    a = run(reference, base, output=tmp_path / "uber", progress=False)["final_energies_eV"]
    b = run(tabulated, base, output=tmp_path / "table", progress=False)["final_energies_eV"]
    assert b["total_eV"] == pytest.approx(a["total_eV"], rel=2e-3)
    assert b["reaction_xmax_x_eV_A"] == pytest.approx(a["reaction_xmax_x_eV_A"], rel=2e-2)


ONE_RANK_FAILS = """
import sys
from mpi4py import MPI
import continuum.problem
from multiscale.case_file import load_case
from multiscale.api import run

original = continuum.problem.StaticProblem.energies

def energies(self):  # a fault on rank 1 only, in the middle of the load steps
    if MPI.COMM_WORLD.rank == 1 and self.load_factor > 0.3:
        raise RuntimeError("simulated fault on rank 1")
    return original(self)

continuum.problem.StaticProblem.energies = energies
case = load_case(sys.argv[1])
run(case, __import__("pathlib").Path(sys.argv[1]).parent, output=sys.argv[2], progress=False)
"""


def test_an_error_on_one_rank_ends_all_ranks(tmp_path):
    """The other rank would wait forever in the next collective; the job must abort instead."""
    import os
    import subprocess
    import sys
    import time

    pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip("no mpiexec beside this Python")
    script = tmp_path / "fault.py"
    script.write_text(ONE_RANK_FAILS)
    t0 = time.perf_counter()
    done = subprocess.run([str(mpiexec), "-n", "2", sys.executable, str(script),
                           str(CASES / "cu_continuum" / "bonded_blocks.toml"), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode != 0
    assert "simulated fault on rank 1" in done.stderr + done.stdout
    assert "aborting all ranks" in done.stderr + done.stdout
    print(f"aborted after {time.perf_counter() - t0:.1f} s")


def test_bad_coupled_case_exits_2(tmp_path, capsys):
    pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")
    text = (CASES / "cu_coupled" / "bonded_bars.toml").read_text()
    text = text.replace('path = "../models/cu_emt.safetensors"', f'path = "{CASES / "models" / "cu_emt.safetensors"}"')
    path = tmp_path / "case.toml"
    for old, new, message in (("pad_A = 5.2", "pad_A = 3.0", "thinner than the model's cutoff"),
                              ('coupled_faces = ["xmin", "xmax"]', 'coupled_faces = ["xmin", "left"]', "'left'"),
                              ('law = "cauchy-born"', 'law = "linear"', "material.law"),
                              ("orientation_x = [1, 0, 0]", "orientation_x = [1, 2, 0]", "<100>, <110> or <111>")):
        path.write_text(text.replace(old, new) if old != "orientation_x = [1, 0, 0]" else  # the model's law needs
                        text.replace(old, new).replace("orientation_y = [0, 1, 0]", "orientation_y = [-2, 1, 0]")
                        .replace('law = "uber"', 'law = "model"'))  # a low-index plane
        code = main(["run", str(path), "--output", str(tmp_path / "out"), "-q"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, (new, err)


def test_bad_active_learning_case_exits_2(tmp_path, capsys):
    text = (CASES / "active_learning" / "cu_premelting.toml").read_text()
    path = tmp_path / "case.toml"
    for old, new, message in (('name = "emt"', 'name = "dft"', "oracle.name"),
                              ("{temperature_K = 400.0, steps = 300}", "{temperature_K = -4.0, steps = 300}",
                               "temperature_K must be positive"),
                              ("force_threshold_eV_A = 0.3", "force_threshold_eV_A = 0", "force_threshold_eV_A"),
                              ("members = 4", "members = 1", "committee.members"),
                              ('species = ["Cu"]', 'species = ["Cu", "Ag"]', "elements of the structure"),
                              ('surface = "fcc111"', 'surface = "bcc110"', "structure.surface")):
        assert old in text, old
        path.write_text(text.replace(old, new))
        code = main(["run", str(path), "--output", str(tmp_path / "out"), "-q"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, (new, err)
