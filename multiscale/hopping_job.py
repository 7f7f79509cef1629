"""The ``surface_hopping`` case: build (or train) the multi-state model, run batched FSSH, write

    populations.csv / .png   fraction of trajectories on each state and mean |c_k|^2 vs time (fs)
    hops.csv                 accepted and frustrated hops, from -> to, in total
    hops_vs_time.csv / .png  the same, cumulative, at every record
    final.extxyz             every trajectory's last geometry, its active state in info["state"]
    model.safetensors        the trained diabatic model ([model.train] only)
    report.json              final populations, hops, energy conservation, scattering branching
                             (particle models), held-out errors of a trained model
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units
from ase.io import read

from atomistic import DescriptorSettings, NetworkSettings
from atomistic.atomic_files import write_csv, write_text
from atomistic.io import ModelFileError
from atomistic.md.output import write_atoms
from atomistic.multistate import (AU_MOMENTUM, TULLY_MASS_AMU, ConicalIntersection, DiabaticPotential,
                                  DiatomicCrossing, MultiStateData, SurfaceHopping, ThreeState, TullyDual,
                                  TullyExtended, TullySimple, adiabatic_states, fit_multistate)
from atomistic.multistate.files import load_diabatic, save_diabatic
from atomistic.plots import hops_plot, population_plot

from .hopping_config import SurfaceHoppingCase
from .schema import CaseError
from .structures import build_structures

log = logging.getLogger(__name__)

ANALYTIC = {"tully1": TullySimple, "tully2": TullyDual, "tully3": TullyExtended, "three_state": ThreeState,
            "conical_intersection": ConicalIntersection, "diatomic_crossing": DiatomicCrossing}


def train_diabatic(case: SurfaceHoppingCase, case_dir: Path, out: Path) -> tuple[DiabaticPotential, dict]:
    """Train on ``[model.train].dataset`` and save the model; returns it and a report with its
    held-out errors (energy MAE eV, force MAE eV/Å, coupling |d| relative L1)."""
    cfg = case.model.train
    path = case_dir / cfg.dataset
    if not path.is_file():
        raise CaseError(f"model.train.dataset: {path} not found")
    try:
        frames = read(str(path), index=":")
        train = [f for f in frames if f.info.get("split", "train") != "test"]
        test = [f for f in frames if f.info.get("split") == "test"]
        data = MultiStateData.from_frames(train)
        held_out = MultiStateData.from_frames(test) if test else None
    except (ValueError, KeyError, OSError) as exc:
        raise CaseError(f"model.train.dataset: {path} is not a multi-state dataset ({exc})") from None
    template = train[0]
    species = sorted(set(template.get_chemical_symbols()))
    torch.manual_seed(cfg.seed)
    angular = 0 if len(template) < 3 else DescriptorSettings().n_angular  # a diatomic has no angles
    model = DiabaticPotential(species, data.energies.shape[1],
                              DescriptorSettings(cutoff=cfg.cutoff_A, n_radial=cfg.n_radial, r_min=cfg.r_min_A,
                                                 angular_cutoff=min(3.0, cfg.cutoff_A), n_angular=angular),
                              NetworkSettings(hidden=cfg.hidden))
    t0 = time.perf_counter()
    history = fit_multistate(model, template, data, epochs=cfg.epochs, batch_size=len(train), lr=cfg.lr,
                             weights=(1.0, 1.0, cfg.coupling_weight), seed=cfg.seed)
    report = {"dataset": str(path), "train_frames": len(train), "test_frames": len(test),
              "final_loss": history[-1], "seconds": time.perf_counter() - t0}
    if held_out is not None:
        got = adiabatic_states(model.bind(template), held_out.positions)
        report["test_energy_mae_eV"] = float((got.energies - held_out.energies).abs().mean())
        report["test_force_mae_eV_A"] = float((got.forces - held_out.forces).abs().mean())
        if held_out.couplings is not None:
            n = held_out.energies.shape[1]
            rows, cols = torch.triu_indices(n, n, 1)
            gap = held_out.energies[:, cols] - held_out.energies[:, rows]
            d_ref = torch.linalg.vector_norm(held_out.couplings[:, rows, cols].flatten(2), dim=-1) / gap
            d = torch.linalg.vector_norm(got.couplings[:, rows, cols].flatten(2), dim=-1)
            report["test_coupling_rel_l1"] = float((d - d_ref).abs().sum() / d_ref.sum())
    save_diabatic(model, out / "model.safetensors", provenance={"case": case.name, "dataset": cfg.dataset})
    log.info("trained a %d-state diabatic model on %d frames: %s", model.n_states, len(train),
             {k: v for k, v in report.items() if k.startswith("test_")})
    return model, report


def _model(case: SurfaceHoppingCase, case_dir: Path, out: Path):
    """(the model's ``diabatic`` module, the starting geometry or None for a particle model,
    the training report or None)."""
    cfg = case.model
    if cfg.analytic is not None:
        model = ANALYTIC[cfg.analytic]()
        return model, None if cfg.particle else build_structures(case.structure, case_dir)[0], None
    if cfg.path is not None:
        try:
            trained = load_diabatic(case_dir / cfg.path, device=cfg.device)
        except ModelFileError as exc:
            raise CaseError(f"model.path: {exc}") from None
        report = None
    else:
        trained, report = train_diabatic(case, case_dir, out)
        trained = trained.to(cfg.device)
    atoms = build_structures(case.structure, case_dir)[0]
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(trained.species))
    if unknown:
        raise CaseError(f"structure: elements {unknown} are not in the model's species {trained.species}")
    return trained.bind(atoms), atoms, report


def _initial(case: SurfaceHoppingCase, atoms: Atoms | None, device) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Positions (T, N, 3) Å, momenta (T, N, 3) amu Å/fs and masses (N,) amu."""
    ini, t = case.initial, case.initial.trajectories
    if atoms is None:  # one particle of Tully's mass
        pos = torch.zeros(t, 1, 3, dtype=torch.float64, device=device)
        pos[:, 0, 0], pos[:, 0, 1] = ini.x0_bohr * units.Bohr, ini.y0_bohr * units.Bohr
        mom = torch.zeros_like(pos)
        mom[:, 0, 0] = ini.momentum_au * AU_MOMENTUM
        return pos, mom, np.array([TULLY_MASS_AMU])
    rng = np.random.default_rng(ini.seed)
    m = atoms.get_masses()
    p = rng.normal(size=(t, len(m), 3)) * np.sqrt(m * units.kB * ini.temperature_K)[None, :, None]
    p -= m[None, :, None] * (p.sum(1, keepdims=True) / m.sum())  # no centre-of-mass drift
    pos = torch.as_tensor(np.broadcast_to(atoms.positions, (t, len(m), 3)).copy(), dtype=torch.float64, device=device)
    return pos, torch.as_tensor(p * units.fs, dtype=torch.float64, device=device), m


def run_hopping(case: SurfaceHoppingCase, case_dir: Path, out: Path, *, progress: bool = True) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    if case.threads:
        torch.set_num_threads(case.threads)
    model, atoms, training = _model(case, case_dir, out)
    device = torch.device(case.model.device)
    pos, mom, masses = _initial(case, atoms, device)
    n_states = int(model.diabatic(pos[:1]).shape[1])
    if case.initial.state >= n_states:
        raise CaseError(f"initial.state: {case.initial.state} is not a state of this {n_states}-state model")
    sim = SurfaceHopping.start(model, pos, mom, masses, case.initial.state, case.fssh)
    e0 = sim.total_energy()
    until = None
    if case.model.particle and case.run.exit_bohr is not None:
        edge = case.run.exit_bohr * units.Bohr
        until = lambda s: bool((s.positions[:, 0, 0].abs() > edge).all())  # noqa: E731
    t0 = time.perf_counter()
    history = sim.run(case.run.steps, case.run.record_every, until=until, progress=progress)
    seconds = time.perf_counter() - t0
    drift = (sim.total_energy() - e0).abs()

    header = ["time_fs"] + [f"surface_{k}" for k in range(n_states)] + [f"electronic_{k}" for k in range(n_states)]
    write_csv(out / "populations.csv", header,
              ([t, *s, *e] for t, s, e in zip(history["time_fs"], history["surface"], history["electronic"])))
    population_plot(out / "populations.png", history, title=f"{case.name}: {case.initial.trajectories} trajectories")
    hops = history["hops"]
    pairs = [(a, b) for a in range(n_states) for b in range(n_states) if a != b]
    write_csv(out / "hops.csv", ["from", "to", "accepted", "frustrated"],
              ([a, b, hops["accepted"][a][b], hops["frustrated"][a][b]] for a, b in pairs))
    write_csv(out / "hops_vs_time.csv",
              ["time_fs"] + [f"accepted_{a}_{b}" for a, b in pairs] + [f"frustrated_{a}_{b}" for a, b in pairs],
              ([t] + [acc[a][b] for a, b in pairs] + [fr[a][b] for a, b in pairs]
               for t, acc, fr in zip(history["time_fs"], history["accepted"], history["frustrated"])))
    hops_plot(out / "hops.png", history, title=f"{case.name}: surface hops")
    symbols = atoms.get_chemical_symbols() if atoms is not None else ["X"]
    final = []
    for xyz, state in zip(sim.positions.detach().cpu().numpy(), sim.active.cpu().tolist()):
        frame = Atoms(symbols, positions=xyz)
        frame.info["state"] = state
        final.append(frame)
    write_atoms(out / "final.extxyz", final)

    surface, electronic = sim.populations()
    report = {"name": case.name, "trajectories": case.initial.trajectories, "n_states": n_states,
              "time_fs": sim.time_fs, "seconds": seconds,
              "step_us_per_trajectory": 1e6 * seconds / max(1, len(history["time_fs"]) - 1) / case.run.record_every
              / case.initial.trajectories,
              "final_surface_populations": surface.tolist(), "final_electronic_populations": electronic.tolist(),
              "hops": hops, "max_energy_change_eV": float(drift.max()), "mean_energy_change_eV": float(drift.mean())}
    if case.model.particle:
        x = sim.positions[:, 0, 0]
        report["branching"] = {
            "reflected": [float(((x < 0) & (sim.active == k)).double().mean()) for k in range(n_states)],
            "transmitted": [float(((x > 0) & (sim.active == k)).double().mean()) for k in range(n_states)]}
    if training is not None:
        report["training"] = training
    write_text(out / "report.json", json.dumps(report, indent=2, default=float))
    log.info("surface hopping %s: final populations %s after %.1f fs (%.1f s)", case.name,
             [round(p, 4) for p in surface.tolist()], sim.time_fs, seconds)
    return report
