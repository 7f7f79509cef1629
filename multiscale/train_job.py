"""The ``train`` case: dataset -> ensemble training -> test errors, plots, validation table.

Outputs in the case's output folder:
    dataset.extxyz          the labelled frames (with info["family"])
    checkpoints/            per-member checkpoints (atomic, every epoch; ``--resume`` uses them)
    model.safetensors       the ensemble (safetensors + JSON header)
    metrics.json            test errors of the ensemble mean and of each member
    parity.png              test-set parity plot (energy per atom, force components)
    learning_curve.png      test error vs training-set size
    training_curves.png     losses and validation force error vs epoch, every member
    validation.md/.json     fcc properties of the model vs the reference calculator (DESIGN V6)
    report.json             all of the above in one place, with timings
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from atomistic import NNPCalculator, save_potential
from atomistic.data import DatasetError, dataset_hash, prepare, read_frames, write_frames
from atomistic.forces import Prediction
from atomistic.ensemble import Ensemble, predict_ensemble
from atomistic.plots import learning_curve, parity, training_curves
from atomistic.training.learning_curve import train_on_fractions
from atomistic.properties import validation_table
from atomistic.recipes import RECIPES
from atomistic.structure import UnknownSpeciesError
from atomistic.training.batch import collate
from atomistic.training.ensemble import split, train_ensemble
from atomistic.training.loss import Errors

from .config import TrainCase

log = logging.getLogger(__name__)


def _frames(case: TrainCase, case_dir: Path, out: Path, resume: bool):
    cached = out / "dataset.extxyz"
    if resume and cached.exists():
        log.info("dataset: reusing %s", cached)
        return read_frames(cached)
    d = case.dataset
    if d.path is not None:
        frames = read_frames(case_dir / d.path)
    else:
        log.info("dataset: generating recipe %r (size %.2f)", d.recipe, d.size)
        frames = RECIPES[d.recipe](seed=d.seed, size=d.size)
    write_frames(frames, cached)
    return read_frames(cached)  # train on exactly what is on disk, so --resume sees the same data


def _check_dataset(frames, species: list[str], settings) -> None:
    present = {s for a in frames for s in a.get_chemical_symbols()}
    unknown = sorted(present - set(species))
    if unknown:
        raise UnknownSpeciesError(f"dataset: element(s) {', '.join(unknown)} not in model.species "
                                  f"({', '.join(species)})")
    missing = [s for s in species if s not in present]
    if missing:
        raise DatasetError(f"dataset: no atoms of {', '.join(missing)} (model.species lists them)")
    train, _, _ = split(len(frames), settings)
    if len(train) < 1:
        raise DatasetError(f"dataset: {len(frames)} frames are too few to split into train/validation/test")


def _test_errors(ensemble, frames, test_idx) -> tuple[dict, dict]:
    """Errors of the ensemble mean and of each member on the test frames; parity data."""
    if not len(test_idx):
        return {}, {}
    test = [frames[i] for i in test_idx]
    mean, members = Errors(), [Errors() for _ in ensemble.members]
    e_ref, e_pred, f_ref, f_pred = [], [], [], []
    for start in range(0, len(test), 32):
        b = collate(test[start:start + 32], ensemble.cutoff, ensemble.angular_cutoff)
        p = predict_ensemble(ensemble, b.structures, b.neighbors, stress=True)
        mean.add(p, b)
        for k, err in enumerate(members):
            err.add(Prediction(p.member_energy[k], p.energies, p.member_forces[k], p.member_stress[k]), b)
        n = b.n_atoms
        e_ref.append(b.energy / n)
        e_pred.append(p.energy / n)
        f_ref.append(b.forces)
        f_pred.append(p.forces)
    errors = {"ensemble": mean.summary(), "members": [m.summary() for m in members]}
    data = {k: torch.cat(v).numpy() for k, v in
            (("e_ref", e_ref), ("e_pred", e_pred), ("f_ref", f_ref), ("f_pred", f_pred))}
    return errors, data


def run_train(case: TrainCase, case_dir: Path, out: Path, *, resume: bool = False, progress: bool = True) -> dict:
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if case.threads:
        torch.set_num_threads(case.threads)
    frames = _frames(case, case_dir, out, resume)
    species = list(case.model.species)
    _check_dataset(frames, species, case.ensemble)
    timings = {"dataset_s": time.perf_counter() - t0}
    log.info("dataset: %d frames, %d atoms", len(frames), sum(len(a) for a in frames))

    t1 = time.perf_counter()
    prepared = prepare(frames, species, case.model.descriptor.cutoff)
    training = replace(case.training, progress=progress and case.training.progress)
    ensemble, histories, split = train_ensemble(
        prepared, species, case.model.descriptor, case.model.network, training, case.ensemble,
        out / "checkpoints", resume=resume)
    timings["training_s"] = time.perf_counter() - t1
    data_hash = dataset_hash(frames)
    model_path = save_potential(ensemble, out / case.output.model_name, dataset_hash=data_hash, provenance={
        "case": case.name, "n_frames": len(frames), "split_sizes": {k: len(v) for k, v in split.items()},
        "training": asdict(case.training), "ensemble": asdict(case.ensemble),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    log.info("model: wrote %s", model_path)

    errors, data = _test_errors(ensemble, prepared, split["test"])
    if errors:
        e = errors["ensemble"]
        stress = "-" if e["stress_mae_GPa"] is None else f"{e['stress_mae_GPa']:.3f}"
        log.info("test errors (ensemble mean): energy %.2f meV/atom, forces %.1f meV/Å, stress %s GPa",
                 e["energy_mae_meV_per_atom"], e["force_mae_meV_per_A"], stress)
        parity(out / "parity.png", data["e_ref"], data["e_pred"], data["f_ref"], data["f_pred"],
               title=f"{case.name}: test set, ensemble of {len(ensemble)}")
    training_curves(out / "training_curves.png", histories)
    curve = _learning_curve(case, prepared, split, errors, out, resume) if errors else []

    validation = []
    if case.validation.reference == "emt":
        from ase.calculators.emt import EMT

        t2 = time.perf_counter()
        rows = validation_table(NNPCalculator(ensemble), EMT(), case.validation.element,
                                case.validation.lattice_guess)
        timings["validation_s"] = time.perf_counter() - t2
        validation = [dict(asdict(r), relative_error=r.relative_error,
                           passed=None if r.tolerance is None else abs(r.relative_error) <= r.tolerance)
                      for r in rows]
        (out / "validation.json").write_text(json.dumps(validation, indent=2))
        (out / "validation.md").write_text(validation_markdown(validation))
        log.info("validation against EMT:\n%s", validation_markdown(validation))

    timings["total_s"] = time.perf_counter() - t0
    report = {"case": case.name, "model": str(model_path), "dataset_hash": data_hash,
              "n_frames": len(frames), "split_sizes": {k: len(v) for k, v in split.items()},
              "test_errors": errors, "learning_curve": curve, "validation": validation, "timings": timings}
    (out / "metrics.json").write_text(json.dumps(errors, indent=2))
    (out / "report.json").write_text(json.dumps(report, indent=2))
    log.info("done in %.0f s; outputs in %s", timings["total_s"], out)
    return report


def _learning_curve(case: TrainCase, prepared, split: dict, errors: dict, out: Path, resume: bool) -> list[dict]:
    """Test errors of single models on nested fractions of the training pool, plus the members."""
    if not case.learning_curve.fractions:
        return []
    t = time.perf_counter()
    training = replace(case.training, progress=False)
    models = train_on_fractions(prepared, split["train"], split["valid"], case.learning_curve.fractions,
                                list(case.model.species), case.model.descriptor, case.model.network, training,
                                out / "checkpoints", seed=case.ensemble.seed, resume=resume)
    rows = []
    for n, model in models:
        e, _ = _test_errors(Ensemble([model]), prepared, split["test"])
        rows.append({"n_frames": n, **e["ensemble"]})
    n_member = max(1, int(round(case.ensemble.subset_fraction * len(split["train"]))))
    members = errors["members"]
    rows.append({"n_frames": n_member, "members": len(members),
                 **{k: float(np.mean([m[k] for m in members])) for k in ("energy_mae_meV_per_atom", "force_mae_meV_per_A")}})
    learning_curve(out / "learning_curve.png", [r["n_frames"] for r in rows],
                   [r["energy_mae_meV_per_atom"] for r in rows], [r["force_mae_meV_per_A"] for r in rows],
                   title=f"{case.name}: test error vs training-set size (last point: mean of the members)")
    log.info("learning curve (%.0f s): %s", time.perf_counter() - t,
             ", ".join(f"{r['n_frames']} frames: {r['force_mae_meV_per_A']:.1f} meV/Å" for r in rows))
    return rows


def validation_markdown(rows: list[dict]) -> str:
    lines = ["| property | unit | NN-PES | EMT | rel. error | tolerance | pass |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        tol = "-" if r["tolerance"] is None else f"{100 * r['tolerance']:.0f} %"
        ok = "-" if r["passed"] is None else ("yes" if r["passed"] else "NO")
        lines.append(f"| {r['name']} | {r['unit']} | {r['model']:.4g} | {r['reference']:.4g} | "
                     f"{100 * r['relative_error']:+.2f} % | {tol} | {ok} |")
    return "\n".join(lines) + "\n"
