"""kind = "md": molecular dynamics with a trained model, and thermodynamics from it.

Outputs in the case's output folder:
    thermo.csv            step, time, energies, temperature, pressure, volume per structure
    trajectory.extxyz     frames every ``md.trajectory_every`` steps (positions, momenta, cell)
    checkpoint.pt         the state every ``md.checkpoint_every`` steps (``--resume`` continues)
    thermo.png            energies, temperature (and pressure) against time; with an analysis, the
                          equilibration it drops shaded and its end marked
    md.json               time step, rebuilds, throughput, NVE energy drift (counters over the whole
                          run, every ``--resume`` segment included; resuming a finished run
                          rewrites the same numbers)
    analysis.json         heat capacity / compressibility with error bars (if asked)
    report.json           all of the above in one place
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from ase.io import read

from atomistic.analysis.thermo import compressibility, heat_capacity, trajectory_model_noise
from atomistic.md import MolecularDynamics
from atomistic.md.settings import MDSettings
from atomistic.potential.committee import Committee
from atomistic.potential.io import load_potential

from ..common import PotentialConfig, RunOutputConfig, StructureConfig, build_structures, check_threads, set_threads
from ..outputs import Report, write_json
from ..schema import CaseError
from . import Kind, RunContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisConfig:
    """Thermodynamics from the logged fluctuations (every ``md.log_every`` steps), after
    ``equilibration_ps`` (ps) are dropped: ``heat_capacity`` (NVT: Cv from total-energy
    fluctuations, model noise from the trajectory frames subtracted) and ``compressibility``
    (NPT: kappa_T from volume fluctuations, with the bulk modulus it implies)."""

    equilibration_ps: float = 1.0
    heat_capacity: bool = False
    compressibility: bool = False

    def __post_init__(self):
        if self.equilibration_ps < 0:
            raise ValueError(f"analysis.equilibration_ps must be >= 0, got {self.equilibration_ps}")


ENGINES = ("native", "lammps")


@dataclass(frozen=True)
class EngineConfig:
    """Which MD engine runs the case. ``native``: ours (one process, CPU or one GPU, batched
    structures). ``lammps``: LAMMPS's domain decomposition over the ranks of ``mpiexec -n N``
    (the optional extra ``lammps``; one structure; see :mod:`atomistic.engines.lammps`).
    ``ghost_cutoff_A`` (lammps only): LAMMPS's communication cutoff, Å; default and minimum
    2 r_c + skin, the shell that makes each rank's forces exact."""

    name: str = "native"
    ghost_cutoff_A: float | None = None

    def __post_init__(self):
        if self.name not in ENGINES:
            raise ValueError(f"engine.name must be one of {ENGINES}, got {self.name!r}")
        if self.ghost_cutoff_A is not None:
            if self.name != "lammps":
                raise ValueError(f"engine.ghost_cutoff_A is a setting of engine 'lammps', not {self.name!r}")
            if not self.ghost_cutoff_A > 0:
                raise ValueError(f"engine.ghost_cutoff_A must be a positive length in Å, got {self.ghost_cutoff_A!r}")


@dataclass(frozen=True)
class MDCase:
    """kind = "md": molecular dynamics of a structure with a trained model."""

    kind: Literal["md"]
    name: str
    potential: PotentialConfig
    structure: StructureConfig
    md: MDSettings
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    output: RunOutputConfig = field(default_factory=RunOutputConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    threads: int = 0

    def __post_init__(self):
        if self.engine.name == "lammps" and (self.analysis.heat_capacity or self.analysis.compressibility):
            raise ValueError("analysis: the fluctuation analysis runs on engine 'native' only (it needs our "
                             "thermostat's and barostat's ensembles); drop [analysis] or the [engine] table")
        if self.analysis.heat_capacity and self.md.ensemble != "nvt":
            raise ValueError(f"analysis.heat_capacity needs md.ensemble = 'nvt', got {self.md.ensemble!r}")
        if self.analysis.compressibility and self.md.ensemble != "npt":
            raise ValueError(f"analysis.compressibility needs md.ensemble = 'npt', got {self.md.ensemble!r}")
        if (self.analysis.heat_capacity or self.analysis.compressibility) and not self.md.log_every:
            raise ValueError("analysis needs logged samples: set md.log_every > 0")
        check_threads(self.threads)


def run(case: MDCase, ctx: RunContext) -> dict:
    case_dir, out, resume, progress = ctx.case_dir, ctx.out, ctx.resume, ctx.progress
    report = Report(case)
    set_threads(case.threads)
    if case.engine.name == "lammps":  # every rank loads on the CPU, then moves to its own device
        model = load_potential(case_dir / case.potential.path, device="cpu")
        return _run_lammps(case, model, build_structures(case.structure, case_dir), ctx, report)
    model = load_potential(case_dir / case.potential.path, device=case.potential.device)
    frames = build_structures(case.structure, case_dir)
    md = MolecularDynamics(model, frames, case.md, device=case.potential.device, output=out, resume=resume,
                           progress=progress)
    log.info("%s: %d structure(s), %d atoms, %s, dt = %.3g fs, %d steps", case.name, len(frames),
             sum(len(a) for a in frames), case.md.ensemble.upper(), md.timestep_fs, case.md.steps)
    analysed = case.analysis.heat_capacity or case.analysis.compressibility
    if analysed:
        _check_enough_samples(case, md.timestep_fs)
    result = md.run(equilibration_ps=case.analysis.equilibration_ps if analysed else None)
    body = {"md": result.summary()}
    if case.analysis.heat_capacity or case.analysis.compressibility:
        body["analysis"] = analyse(case, md, out)
        write_json(out / "analysis.json", body["analysis"])
    return report.write(out, body)


def _run_lammps(case: MDCase, model, frames, ctx: RunContext, report: Report) -> dict:
    """The case under LAMMPS, on every rank of mpiexec; rank 0 writes the files. ``potential.device``
    "cuda" without an index gives each rank the GPU ``local rank % count``."""
    from atomistic.engines.lammps import load_lammps
    from atomistic.engines.lammps_md import run_lammps_md

    from ..fe_build import abort_other_ranks

    _, MPI = load_lammps()
    if len(frames) != 1:
        raise CaseError(f"engine 'lammps' runs one structure; the case's structure gives {len(frames)} frames")
    with abort_other_ranks(MPI.COMM_WORLD):  # rank 0 writes the files: its failure must not leave the others waiting
        result = run_lammps_md(model, frames[0], case.md, output=ctx.out, resume=ctx.resume,
                               device=None if case.potential.device == "cuda" else case.potential.device,
                               progress=ctx.progress, ghost_cutoff_A=case.engine.ghost_cutoff_A)
    log.info("%s: %d atoms on %d LAMMPS rank(s), %s, dt = %.3g fs, %d steps, %.3g atom-steps/s", case.name,
             len(frames[0]), result.ranks, case.md.ensemble.upper(), result.timestep_fs, case.md.steps,
             result.atom_steps_per_s)
    return report.write(ctx.out, {"md": result.summary()}, on_this_rank=MPI.COMM_WORLD.Get_rank() == 0)


#: logged samples per structure that the fluctuation analysis needs after equilibration
MIN_SAMPLES = 20


def _check_enough_samples(case: MDCase, timestep_fs: float) -> None:
    """Before the MD: will enough logged samples remain after equilibration for the analysis?"""
    logged_fs = np.arange(0, case.md.steps + 1, case.md.log_every) * timestep_fs
    n = int((logged_fs >= case.analysis.equilibration_ps * 1e3).sum())
    if n < MIN_SAMPLES:
        raise CaseError(f"analysis: {n} logged samples would remain after analysis.equilibration_ps = "
                        f"{case.analysis.equilibration_ps} ps (md.steps = {case.md.steps}, md.log_every = "
                        f"{case.md.log_every}, dt = {timestep_fs:.3g} fs); the analysis needs at least {MIN_SAMPLES}: "
                        "run longer, log more often or equilibrate for less")


def _samples(case: MDCase, out: Path) -> dict[str, np.ndarray]:
    """Logged columns after equilibration, as (n_samples, n_structures) arrays."""
    data = np.atleast_1d(np.genfromtxt(out / "thermo.csv", delimiter=",", names=True))
    keep = data["time_fs"] >= case.analysis.equilibration_ps * 1000.0
    data = data[keep]
    n_structures = int(data["structure"].max()) + 1 if len(data) else 0
    if len(data) < MIN_SAMPLES * max(n_structures, 1):
        raise CaseError(f"analysis: only {len(data)} logged samples after analysis.equilibration_ps = "
                         f"{case.analysis.equilibration_ps} ps; run longer or log more often")
    return {k: data[k].reshape(-1, n_structures) for k in ("time_fs", "total_energy_eV", "volume_A3")}


def analyse(case: MDCase, md: MolecularDynamics, out: Path) -> dict:
    """Heat capacity and/or compressibility from the logged fluctuations, with error bars."""
    s = _samples(case, out)
    t = case.md.thermostat.temperature_K
    n_atoms = [len(a) for a in md.frames]
    n = int(s["time_fs"].shape[0])
    n_blocks = max(2, min(20, n // 10))  # blocks of at least 10 samples, at most 20 blocks
    result = {"temperature_K": t, "samples": n, "blocks": n_blocks}
    if case.analysis.heat_capacity:
        noise = 0.0
        if isinstance(md.model, Committee):
            noise = _model_noise(md, out, case.analysis.equilibration_ps)
        cv = heat_capacity(s["total_energy_eV"], t, n_atoms[0], model_noise_variance=noise, n_blocks=n_blocks)
        result["heat_capacity"] = cv.as_dict() if hasattr(cv, "as_dict") else cv
    if case.analysis.compressibility:
        kappa = compressibility(s["volume_A3"], t, n_blocks=n_blocks)
        result["compressibility"] = kappa.as_dict() if hasattr(kappa, "as_dict") else kappa
    log.info("analysis: %s", json.dumps(result, default=float))
    return result


def _model_noise(md: MolecularDynamics, out: Path, equilibration_ps: float) -> float:
    """Variance (eV^2) that the committee's disagreement adds to the energy, from the frames after
    equilibration."""
    frames = [a for a in read(out / "trajectory.extxyz", ":") if a.info.get("time_fs", 0.0) >= equilibration_ps * 1e3]
    if not frames:
        log.warning("no trajectory frames after equilibration: model noise not subtracted")
        return 0.0
    return float(trajectory_model_noise(md.model, frames, device=md.device, dtype=md.dtype))


def _on_ranks(case: MDCase) -> bool:
    return case.engine.name == "lammps"


KIND = Kind("md", MDCase, run, resumable=True, parallel=_on_ranks, parallel_note="with [engine] name = 'lammps'")
