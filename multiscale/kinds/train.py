"""kind = "train": dataset -> committee training -> test errors, plots, validation table.

Outputs in the case's output folder:
    dataset.extxyz          the labelled frames (with info["family"])
    checkpoints/            per-member checkpoints (atomic, every epoch; ``--resume`` uses them)
    model.safetensors       the committee (safetensors + JSON header)
    metrics.json            test errors of the committee mean and of each member
    parity.png              test-set parity plot (energy per atom, force components)
    learning_curve.png      test error vs training-set size
    training_curves.png     losses and validation force error vs epoch, every member
    validation.md/.json     fcc properties of the model vs the reference calculator (DESIGN V6)
    report.json             all of the above in one place, with timings
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from atomistic import NNPCalculator, save_potential
from atomistic.analysis.properties import validation_table
from atomistic.plots import learning_curve, parity, training_curves
from atomistic.potential.committee import Committee, predict_committee
from atomistic.potential.forces import Prediction
from atomistic.potential.structure import UnknownSpeciesError
from atomistic.recipes import RECIPES as _RECIPES
from atomistic.training.batch import collate
from atomistic.training.committee import CommitteeSettings, split, train_committee
from atomistic.training.data import DatasetError, dataset_hash, prepare, read_frames
from atomistic.training.learning_curve import train_on_fractions
from atomistic.training.loss import Errors
from atomistic.training.trainer import TrainSettings

from ..common import ModelConfig, check_threads, set_threads
from ..outputs import Report, write_extxyz, write_json, write_text
from . import Kind, RunContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetConfig:
    """Where labelled frames come from: a named ``recipe`` or an extxyz/ASE-db ``path``
    (relative to the case file). ``size`` scales a recipe's frame counts."""

    recipe: str | None = None
    path: str | None = None
    size: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if (self.recipe is None) == (self.path is None):
            raise ValueError("give exactly one of 'recipe' or 'path'")
        if self.recipe is not None and self.recipe not in _RECIPES:
            raise ValueError(f"recipe {self.recipe!r} is not known (known: {', '.join(sorted(_RECIPES))})")
        if not self.size > 0:
            raise ValueError(f"size must be positive, got {self.size}")


@dataclass(frozen=True)
class LearningCurveConfig:
    """Fractions of the training pool for the test-error vs training-set-size curve (empty: none).
    The full-size point is the committee itself."""

    fractions: tuple[float, ...] = (0.125, 0.25, 0.5)

    def __post_init__(self):
        if any(not 0 < f < 1 for f in self.fractions):
            raise ValueError(f"fractions must lie in (0, 1), got {list(self.fractions)}")


@dataclass(frozen=True)
class ValidationConfig:
    """Compare the trained model with a reference calculator on fcc crystal properties."""

    reference: Literal["emt", "none"] = "emt"
    element: str = "Cu"
    lattice_guess: float = 3.6  # Å


@dataclass(frozen=True)
class OutputConfig:
    """``dir``: output folder, relative to the working directory (default runs/<name>)."""

    dir: str | None = None
    model_name: str = "model.safetensors"


@dataclass(frozen=True)
class TrainCase:
    """kind = "train": build or read a dataset, train a committee, report errors and validation."""

    kind: Literal["train"]
    name: str
    model: ModelConfig
    dataset: DatasetConfig
    training: TrainSettings = field(default_factory=TrainSettings)
    committee: CommitteeSettings = field(default_factory=CommitteeSettings)
    learning_curve: LearningCurveConfig = field(default_factory=LearningCurveConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    threads: int = 0  # torch CPU threads; 0 = torch's default

    def __post_init__(self):
        v = self.validation
        if v.reference != "none" and v.element not in self.model.species:
            raise ValueError(f"validation.element {v.element!r} is not among model.species "
                             f"{list(self.model.species)}")
        if self.training.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"training.device {self.training.device!r}: CUDA is not available here")
        check_threads(self.threads)


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
        frames = _RECIPES[d.recipe](seed=d.seed, size=d.size)
    write_extxyz(cached, frames)
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


def _test_errors(committee, frames, test_idx) -> tuple[dict, dict]:
    """Errors of the committee mean and of each member on the test frames; parity data."""
    if not len(test_idx):
        return {}, {}
    test = [frames[i] for i in test_idx]
    mean, members = Errors(), [Errors() for _ in committee.members]
    e_ref, e_pred, f_ref, f_pred = [], [], [], []
    for start in range(0, len(test), 32):
        b = collate(test[start:start + 32], committee.cutoff, committee.angular_cutoff)
        p = predict_committee(committee, b.structures, b.neighbors, stress=True)
        mean.add(p, b)
        for k, err in enumerate(members):
            err.add(Prediction(p.member_energy[k], p.energies, p.member_forces[k], p.member_stress[k]), b)
        n = b.n_atoms
        e_ref.append(b.energy / n)
        e_pred.append(p.energy / n)
        f_ref.append(b.forces)
        f_pred.append(p.forces)
    errors = {"committee": mean.summary(), "members": [m.summary() for m in members]}
    data = {k: torch.cat(v).numpy() for k, v in
            (("e_ref", e_ref), ("e_pred", e_pred), ("f_ref", f_ref), ("f_pred", f_pred))}
    return errors, data


def run(case: TrainCase, ctx: RunContext) -> dict:
    case_dir, out, resume, progress = ctx.case_dir, ctx.out, ctx.resume, ctx.progress
    report_ = Report(case)
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    set_threads(case.threads)
    frames = _frames(case, case_dir, out, resume)
    species = list(case.model.species)
    _check_dataset(frames, species, case.committee)
    timings = {"dataset_s": time.perf_counter() - t0}
    log.info("dataset: %d frames, %d atoms", len(frames), sum(len(a) for a in frames))

    t1 = time.perf_counter()
    prepared = prepare(frames, species, case.model.descriptor.cutoff)
    training = replace(case.training, progress=progress and case.training.progress)
    committee, histories, split = train_committee(
        prepared, species, case.model.descriptor, case.model.network, training, case.committee,
        out / "checkpoints", resume=resume)
    timings["training_s"] = time.perf_counter() - t1
    data_hash = dataset_hash(frames)
    model_path = save_potential(committee, out / case.output.model_name, dataset_hash=data_hash, provenance={
        "case": case.name, "n_frames": len(frames), "split_sizes": {k: len(v) for k, v in split.items()},
        "training": asdict(case.training), "committee": asdict(case.committee),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    log.info("model: wrote %s", model_path)

    errors, data = _test_errors(committee, prepared, split["test"])
    if errors:
        e = errors["committee"]
        stress = "-" if e["stress_mae_GPa"] is None else f"{e['stress_mae_GPa']:.3f}"
        log.info("test errors (committee mean): energy %.2f meV/atom, forces %.1f meV/Å, stress %s GPa",
                 e["energy_mae_meV_per_atom"], e["force_mae_meV_per_A"], stress)
        parity(out / "parity.png", data["e_ref"], data["e_pred"], data["f_ref"], data["f_pred"],
               title=f"{case.name}: test set, committee of {len(committee)}")
    training_curves(out / "training_curves.png", histories)
    curve = _learning_curve(case, prepared, split, errors, out, resume) if errors else []

    validation = []
    if case.validation.reference == "emt":
        from ase.calculators.emt import EMT

        t2 = time.perf_counter()
        rows = validation_table(NNPCalculator(committee), EMT(), case.validation.element,
                                case.validation.lattice_guess)
        timings["validation_s"] = time.perf_counter() - t2
        validation = [dict(asdict(r), relative_error=r.relative_error,
                           passed=None if r.tolerance is None else abs(r.relative_error) <= r.tolerance)
                      for r in rows]
        write_json(out / "validation.json", validation)
        write_text(out / "validation.md", validation_markdown(validation))
        log.info("validation against EMT:\n%s", validation_markdown(validation))

    report_.timings_s.update(timings)
    write_json(out / "metrics.json", errors)
    report = report_.write(out, {"model": str(model_path), "dataset_hash": data_hash, "n_frames": len(frames),
                                 "split_sizes": {k: len(v) for k, v in split.items()}, "test_errors": errors,
                                 "learning_curve": curve, "validation": validation})
    log.info("done in %.0f s; outputs in %s", report["wall_s"], out)
    return report


def _learning_curve(case: TrainCase, prepared, split: dict, errors: dict, out: Path, resume: bool) -> list[dict]:
    """Test errors of single models on nested fractions of the training pool, plus the members."""
    if not case.learning_curve.fractions:
        return []
    t = time.perf_counter()
    training = replace(case.training, progress=False)
    models = train_on_fractions(prepared, split["train"], split["valid"], case.learning_curve.fractions,
                                list(case.model.species), case.model.descriptor, case.model.network, training,
                                out / "checkpoints", seed=case.committee.seed, resume=resume)
    rows = []
    for n, model in models:
        e, _ = _test_errors(Committee([model]), prepared, split["test"])
        rows.append({"n_frames": n, **e["committee"]})
    n_member = max(1, int(round(case.committee.subset_fraction * len(split["train"]))))
    members = errors["members"]
    rows.append({"n_frames": n_member, "members": len(members),
                 **{k: float(np.mean([m[k] for m in members]))
                    for k in ("energy_mae_meV_per_atom", "force_mae_meV_per_A")}})
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


KIND = Kind("train", TrainCase, run, resumable=True)
