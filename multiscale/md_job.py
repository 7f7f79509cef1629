"""The ``md`` case: molecular dynamics with a trained model, and thermodynamics from it.

Outputs in the case's output folder:
    thermo.csv            step, time, energies, temperature, pressure, volume per structure
    trajectory.extxyz     frames every ``md.trajectory_every`` steps (positions, momenta, cell)
    checkpoint.pt         the state every ``md.checkpoint_every`` steps (``--resume`` continues)
    thermo.png            energies, temperature (and pressure) against time
    md.json               time step, rebuilds, throughput, NVE energy drift
    analysis.json         heat capacity / compressibility with error bars (if asked)
    report.json           all of the above in one place
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from ase.io import read

from atomistic.atomic_files import CheckpointMismatch, write_text
from atomistic.ensemble import Ensemble
from atomistic.io import load_potential
from atomistic.md import MolecularDynamics
from atomistic.thermo import compressibility, heat_capacity, model_noise_variance

from .config import MDCase
from .schema import CaseError
from .structures import build_structures

log = logging.getLogger(__name__)


def _write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, default=float))


def run_md(case: MDCase, case_dir: Path, out: Path, *, resume: bool = False, progress: bool = True) -> dict:
    if case.threads:
        torch.set_num_threads(case.threads)
    t0 = time.perf_counter()
    model = load_potential(case_dir / case.potential.path, device=case.potential.device)
    frames = build_structures(case.structure, case_dir)
    try:
        md = MolecularDynamics(model, frames, case.md, device=case.potential.device, output=out, resume=resume,
                               progress=progress)
    except (ValueError, FileNotFoundError) as exc:  # settings that do not fit these structures
        if isinstance(exc, CheckpointMismatch):
            raise
        raise CaseError(str(exc)) from None
    log.info("%s: %d structure(s), %d atoms, %s, dt = %.3g fs, %d steps", case.name, len(frames),
             sum(len(a) for a in frames), case.md.ensemble.upper(), md.timestep_fs, case.md.steps)
    result = md.run()
    report = {"name": case.name, "md": result.summary(), "wall_s": time.perf_counter() - t0}
    if case.analysis.heat_capacity or case.analysis.compressibility:
        report["analysis"] = analyse(case, md, out)
        _write_json(out / "analysis.json", report["analysis"])
    _write_json(out / "report.json", report)
    return report


def _samples(case: MDCase, out: Path) -> dict[str, np.ndarray]:
    """Logged columns after equilibration, as (n_samples, n_structures) arrays."""
    data = np.atleast_1d(np.genfromtxt(out / "thermo.csv", delimiter=",", names=True))
    keep = data["time_fs"] >= case.analysis.equilibration_ps * 1000.0
    data = data[keep]
    n_structures = int(data["structure"].max()) + 1 if len(data) else 0
    if len(data) < 20 * max(n_structures, 1):  # at least 20 samples per structure
        raise ValueError(f"analysis: only {len(data)} logged samples after analysis.equilibration_ps = "
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
        if isinstance(md.model, Ensemble):
            noise = _model_noise(md, out, case.analysis.equilibration_ps)
        cv = heat_capacity(s["total_energy_eV"], t, n_atoms[0], model_noise_variance=noise, n_blocks=n_blocks)
        result["heat_capacity"] = cv.as_dict() if hasattr(cv, "as_dict") else cv
    if case.analysis.compressibility:
        kappa = compressibility(s["volume_A3"], t, n_blocks=n_blocks)
        result["compressibility"] = kappa.as_dict() if hasattr(kappa, "as_dict") else kappa
    log.info("analysis: %s", json.dumps(result, default=float))
    return result


def _model_noise(md: MolecularDynamics, out: Path, equilibration_ps: float) -> float:
    """Variance (eV^2) that the committee's disagreement adds to the energy, from the frames."""
    from atomistic.ensemble import predict_ensemble
    from atomistic.neighbors import build_neighbors
    from atomistic.structure import from_atoms

    frames = [a for a in read(out / "trajectory.extxyz", ":") if a.info.get("time_fs", 0.0) >= equilibration_ps * 1e3]
    if not frames:
        log.warning("no trajectory frames after equilibration: model noise not subtracted")
        return 0.0
    model = md.model
    members = []
    for k in range(0, len(frames), 64):
        s = from_atoms(frames[k:k + 64], model.species, device=md.device, dtype=md.dtype)
        p = predict_ensemble(model, s, build_neighbors(s, model.cutoff, model.angular_cutoff))
        members.append(p.member_energy.detach().cpu().numpy())
    return float(model_noise_variance(np.concatenate(members, axis=1)))

