"""The ``active_learning`` case: starting data -> generation 0 -> the loop -> how much it learned.

Outputs in the case's output folder:
    dataset.extxyz              the labelled frames, append-only (label_id, source, generation, d)
    failures.jsonl, failed/     labels the oracle could not give, and their configurations
    generations/gen_NNN.safetensors   every committee generation
    state.pt                    the loop's state (``--resume`` continues after any interruption)
    disagreement.csv            d and energy spread per replica at every MD check
    reference.extxyz            independent oracle MD frames at each stage temperature
    learning.csv                per generation: labels, oracle calls, fine-tuning s, test errors
    disagreement.png            d vs MD time with the threshold, the queries and the temperature
    learning.png                test force error vs oracle calls
    calibration.png             disagreement vs true force error on the reference frames
    report.json                 all numbers in one place
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units
from ase.io import read

from atomistic.active import ActiveLearning, ActiveLearningError, LabelledStore, Oracle, committee_errors, spearman
from atomistic.active.loop import label_initial, train_committee
from atomistic.atomic_files import write_text
from atomistic.data import label, prepare, write_frames
from atomistic.io import load_potential
from atomistic.plots import calibration_plot, disagreement_plot, learning_progress_plot

from .active_config import ActiveCase
from .schema import CaseError
from .structures import build_structures

log = logging.getLogger(__name__)


def _start(case: ActiveCase, case_dir: Path) -> Atoms:
    atoms = build_structures(case.structure, case_dir)[0]
    present = set(atoms.get_chemical_symbols())
    species = set(case.model.species)
    if present - species or species - present:
        raise CaseError(f"model.species {list(case.model.species)} must be the elements of the structure "
                        f"{sorted(present)}")
    atoms.calc = None
    return atoms


def _initial_frames(case: ActiveCase, start: Atoms) -> list[Atoms]:
    rng = np.random.default_rng(case.initial.seed)
    frames = []
    for _ in range(case.initial.n_frames):
        a = start.copy()
        a.positions += rng.normal(scale=case.initial.rattle_A, size=a.positions.shape)
        frames.append(a)
    return frames


def reference_frames(case: ActiveCase, start: Atoms, out: Path) -> list[Atoms]:
    """Oracle Langevin MD at every stage temperature and the extra ones (``reference.extxyz``,
    made once)."""
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import thermalize_momenta

    path = out / "reference.extxyz"
    if path.exists():
        return read(path, ":")
    r = case.reference
    frames = []
    t0 = time.perf_counter()
    temperatures = sorted({s.temperature_K for s in case.loop.stages} | set(r.extra_temperatures_K))
    for k, temperature in enumerate(temperatures):
        atoms = start.copy()
        atoms.calc = case.oracle()
        thermalize_momenta(atoms, temperature, rng=np.random.default_rng(r.seed + k))
        dyn = Langevin(atoms, case.loop.timestep_fs * units.fs, temperature_K=temperature,
                       friction=1.0 / (r.friction_time_fs * units.fs), rng=np.random.default_rng(r.seed + 100 + k),
                       fixcm=False)
        try:
            dyn.run(r.equilibration_steps)
            for _ in range(r.frames_per_temperature):
                dyn.run(r.interval_steps)
                labelled = label(atoms, atoms.get_potential_energy(), atoms.get_forces())
                labelled.info["temperature_K"] = temperature
                frames.append(labelled)
        except Exception as exc:  # the oracle's own MD must not end in a traceback
            raise ActiveLearningError(f"reference MD at {temperature:g} K: the oracle failed "
                                      f"({type(exc).__name__}: {exc}); the loop's results are kept in {out}") from exc
    write_frames(frames, path)
    log.info("reference data: %d oracle MD frames at %s K in %.1f s", len(frames),
             ", ".join(f"{t:g}" for t in temperatures), time.perf_counter() - t0)
    return read(path, ":")


def run_active(case: ActiveCase, case_dir: Path, out: Path, *, resume: bool = False, progress: bool = True) -> dict:
    if case.threads:
        torch.set_num_threads(case.threads)
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if (out / "state.pt").exists() and not resume:
        raise CaseError(f"{out} holds an active-learning run: continue it with --resume, or choose another "
                        "output folder")
    start = _start(case, case_dir)
    species = list(case.model.species)
    training = replace(case.training, progress=progress and case.training.progress)
    settings = replace(case.loop, fine_tune=replace(case.loop.fine_tune, progress=False))
    with Oracle(factory=case.oracle, timeout_s=case.oracle.timeout_s, name=case.oracle.name) as oracle:
        store = LabelledStore(out)
        initial_calls = label_initial(store, oracle, _initial_frames(case, start))
        if len(store) < 2:
            raise CaseError("initial: fewer than 2 starting configurations could be labelled (see failures.jsonl)")
        if (out / "state.pt").exists():
            committee = load_potential(out / "generations" / "gen_000.safetensors")
        else:
            log.info("generation 0: %d members on %d starting frames", case.committee.members, len(store))
            committee = train_committee(prepare(store.frames, species, case.model.descriptor.cutoff), species,
                                        case.model.descriptor, case.model.network, training,
                                        case.committee.members, case.committee.seed, out / "checkpoints")
        loop = ActiveLearning(committee, oracle, start, settings, out, store, resume=resume, progress=progress)
        t_loop = time.perf_counter()
        summary = loop.run()
        loop_s = time.perf_counter() - t_loop
        oracle_s = oracle.seconds
    reference = reference_frames(case, start, out)
    report = {"name": case.name, "loop": summary, "initial_labels": case.initial.n_frames,
              "initial_oracle_calls_this_run": initial_calls, "oracle_seconds_this_run": oracle_s,
              "loop_s_this_run": loop_s, **assess(case, loop, reference, out)}
    report["wall_s"] = time.perf_counter() - t0
    write_text(out / "report.json", json.dumps(report, indent=2, default=float))
    return report


def assess(case: ActiveCase, loop: ActiveLearning, reference: list[Atoms], out: Path) -> dict:
    """Every generation on the reference frames: test error at the target temperature, and d
    against the true error (calibration: per generation, and pooled over generations, which is
    what the loop's fixed threshold relies on); plots."""
    target = case.test_temperature_K
    test = [a.info["temperature_K"] == target for a in reference]
    rows, d_all, err_all, atom_d, atom_err = [], [], [], [], []
    first = last = None
    for g in loop.generations:
        e = committee_errors(load_potential(loop.generation_path(g["generation"])), reference)
        ref, pred = (x.reshape(len(reference), -1)[test] for x in e.force_components)
        rows.append({**{k: g[k] for k in ("generation", "n_labels", "oracle_calls", "fine_tune_s")},
                     "test_force_mae_meV_per_A": 1e3 * float(np.abs(pred - ref).mean()),
                     "test_force_rmse_meV_per_A": 1e3 * float(np.sqrt(((pred - ref) ** 2).mean())),
                     "test_energy_mae_meV_per_atom": 1e3 * float(np.abs(e.energy_error_per_atom[test]).mean()),
                     "spearman_d_error": spearman(e.d, e.max_error)})
        d_all.append(e.d)
        err_all.append(e.max_error)
        atom_d.append(e.atom_disagreement)
        atom_err.append(e.atom_error)
        first = first or e
        last = e
    with open(out / "learning.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ratio = rows[-1]["test_force_rmse_meV_per_A"] / rows[0]["test_force_rmse_meV_per_A"]
    pooled = spearman(np.concatenate(d_all), np.concatenate(err_all))
    calibration = {"pooled_over_generations": {
                       "spearman": pooled, "n_pairs": int(sum(len(d) for d in d_all)),
                       "spearman_atoms": spearman(np.concatenate(atom_d), np.concatenate(atom_err))},
                   "initial": first.summary(), "final": last.summary()}
    log.info("test force RMSE at %g K: %.1f -> %.1f meV/Å (x%.2f) with %d oracle calls; Spearman(d, error): "
             "pooled %.2f, generation 0 %.2f, last %.2f", target, rows[0]["test_force_rmse_meV_per_A"],
             rows[-1]["test_force_rmse_meV_per_A"], ratio, rows[-1]["oracle_calls"], pooled,
             calibration["initial"]["spearman_structures"], calibration["final"]["spearman_structures"])
    trace = np.atleast_1d(np.genfromtxt(out / "disagreement.csv", delimiter=",", names=True))
    plots = {
        "disagreement": disagreement_plot(out / "disagreement.png", trace, case.loop.force_threshold_eV_A,
                                          title=case.name),
        "learning": learning_progress_plot(out / "learning.png", [r["oracle_calls"] for r in rows],
                                           [r["test_force_rmse_meV_per_A"] for r in rows],
                                           [r["test_force_mae_meV_per_A"] for r in rows],
                                           title=f"{case.name}: test set at {target:g} K"),
        "calibration": calibration_plot(out / "calibration.png", {
            "generation 0": (first.d, first.max_error), f"generation {rows[-1]['generation']}": (last.d, last.max_error),
            }, pooled=pooled, title=f"{case.name}: reference frames (held out)"),
    }
    return {"test_temperature_K": target, "test_frames": int(sum(test)), "reference_frames": len(reference),
            "learning": rows, "test_rmse_ratio": ratio, "calibration": calibration,
            "plots": {k: str(v) for k, v in plots.items()}}
