"""Every simulation case in cases/ runs in CI in a tiny variant (the files are executable
documentation), and bad settings in them exit with code 2 and one line naming the setting."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from multiscale.case_file import load_case
from multiscale.cli import main

from .conftest import ROOT

CASES = ROOT / "cases"


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
    return case


@pytest.mark.parametrize("path", sorted(p.relative_to(CASES) for p in CASES.glob("cu_*/*.toml")
                                        if "cu_emt" not in str(p)), ids=str)
def test_case_runs(path, tmp_path):
    from multiscale import analysis_jobs, md_job

    case = tiny(load_case(CASES / path))
    run = {"md": md_job.run_md, "vibrations": analysis_jobs.run_vibrations,
           "reaction": analysis_jobs.run_reaction}[case.kind]
    report = run(case, (CASES / path).parent, tmp_path, progress=False)
    assert (tmp_path / "report.json").exists()
    assert json.loads((tmp_path / "report.json").read_text())["name"] == case.name
    if case.kind == "md":
        assert (tmp_path / "thermo.csv").exists() and (tmp_path / "trajectory.extxyz").exists()
        if case.analysis.heat_capacity:
            assert report["analysis"]["heat_capacity"]["per_atom_kB"] > 0
        if case.analysis.compressibility:
            assert report["analysis"]["compressibility"]["bulk_modulus_GPa"] > 0
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
