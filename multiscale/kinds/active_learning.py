"""kind = "active_learning": starting data -> generation 0 -> the loop -> how much it learned.

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

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
from ase import Atoms

from atomistic.active import ActiveLearning, ActiveSettings, LabelledStore, Oracle, OracleSpec
from atomistic.active.assessment import assess, reference_frames
from atomistic.active.loop import label_initial, train_generation_zero
from atomistic.potential.io import load_potential
from atomistic.training.data import prepare
from atomistic.training.trainer import TrainSettings

from ..common import ModelConfig, RunOutputConfig, StructureConfig, build_structures, check_threads, set_threads
from ..outputs import Report
from ..schema import CaseError
from . import Kind, RunContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InitialDataConfig:
    """The deliberately small starting dataset: ``n_frames`` copies of the structure displaced by
    Gaussian noise of ``rattle_A`` Å, labelled by the oracle."""

    n_frames: int = 6
    rattle_A: float = 0.05
    seed: int = 0

    def __post_init__(self):
        if self.n_frames < 2:
            raise ValueError(f"initial.n_frames must be >= 2, got {self.n_frames}")
        if not self.rattle_A > 0:
            raise ValueError(f"initial.rattle_A must be positive (Å), got {self.rattle_A}")


@dataclass(frozen=True)
class CommitteeConfig:
    """``members`` models, initialised from different seeds."""

    members: int = 4
    seed: int = 0

    def __post_init__(self):
        if self.members < 2:
            raise ValueError(f"committee.members must be >= 2 (a committee), got {self.members}")


@dataclass(frozen=True)
class ReferenceConfig:
    """Independent reference data from oracle MD (Langevin, ASE) at each stage temperature:
    after ``equilibration_steps``, ``frames_per_temperature`` frames ``interval_steps`` apart.
    The test error is measured on the frames at ``test_temperature_K`` (default: the last
    stage's). The calibration (d against the true error, for every generation) uses all of them
    plus frames at ``extra_temperatures_K``, hotter than the schedule: held-out configurations the
    committee was not trained near, where a useful uncertainty must grow with the error."""

    frames_per_temperature: int = 24
    interval_steps: int = 25
    equilibration_steps: int = 200
    test_temperature_K: float | None = None
    extra_temperatures_K: tuple[float, ...] = ()
    friction_time_fs: float = 50.0
    seed: int = 1

    def __post_init__(self):
        if self.frames_per_temperature < 3:
            raise ValueError(f"reference.frames_per_temperature must be >= 3, got {self.frames_per_temperature}")
        if self.interval_steps < 1 or self.equilibration_steps < 0:
            raise ValueError("reference.interval_steps must be >= 1 and equilibration_steps >= 0")
        if any(not t > 0 for t in self.extra_temperatures_K):
            raise ValueError(f"reference.extra_temperatures_K must be positive, got {list(self.extra_temperatures_K)}")
        if not self.friction_time_fs > 0:
            raise ValueError(f"reference.friction_time_fs must be positive, got {self.friction_time_fs}")


@dataclass(frozen=True)
class ActiveCase:
    """kind = "active_learning": on-the-fly training of a committee with an oracle."""

    kind: Literal["active_learning"]
    name: str
    oracle: OracleSpec
    structure: StructureConfig
    model: ModelConfig
    loop: ActiveSettings
    committee: CommitteeConfig = field(default_factory=CommitteeConfig)
    initial: InitialDataConfig = field(default_factory=InitialDataConfig)
    training: TrainSettings = field(default_factory=TrainSettings)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    output: RunOutputConfig = field(default_factory=RunOutputConfig)
    threads: int = 0

    def __post_init__(self):
        if self.structure.replicas != 1:
            raise ValueError("structure.replicas must be 1 here; the walkers are loop.replicas")
        temperatures = [s.temperature_K for s in self.loop.stages]
        t = self.reference.test_temperature_K
        if t is not None and t not in temperatures:
            raise ValueError(f"reference.test_temperature_K = {t} is not a stage temperature {temperatures}")
        for name, settings in (("training", self.training), ("loop.fine_tune", self.loop.fine_tune)):
            if settings.device.startswith("cuda"):
                import torch

                if not torch.cuda.is_available():
                    raise ValueError(f"{name}.device {settings.device!r}: CUDA is not available here")
        check_threads(self.threads)

    @property
    def test_temperature_K(self) -> float:
        return self.reference.test_temperature_K or self.loop.stages[-1].temperature_K



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


def run(case: ActiveCase, ctx: RunContext) -> dict:
    case_dir, out, resume, progress = ctx.case_dir, ctx.out, ctx.resume, ctx.progress
    envelope = Report(case)
    set_threads(case.threads)
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
            committee = train_generation_zero(prepare(store.frames, species, case.model.descriptor.cutoff), species,
                                        case.model.descriptor, case.model.network, training,
                                        case.committee.members, case.committee.seed, out / "checkpoints")
        loop = ActiveLearning(committee, oracle, start, settings, out, store, resume=resume, progress=progress)
        t_loop = time.perf_counter()
        summary = loop.run()
        loop_s = time.perf_counter() - t_loop
        oracle_s = oracle.seconds
    r = case.reference
    temperatures = sorted({s.temperature_K for s in case.loop.stages} | set(r.extra_temperatures_K))
    reference = reference_frames(start, case.oracle, temperatures, timestep_fs=case.loop.timestep_fs,
                                 friction_time_fs=r.friction_time_fs, equilibration_steps=r.equilibration_steps,
                                 frames_per_temperature=r.frames_per_temperature, interval_steps=r.interval_steps,
                                 seed=r.seed, path=out / "reference.extxyz")
    assessment = assess(loop, reference, test_temperature_K=case.test_temperature_K,
                        force_threshold_eV_A=case.loop.force_threshold_eV_A, out=out, title=case.name)
    envelope.timings_s.update(loop_this_run=loop_s, oracle_this_run=oracle_s)
    return envelope.write(out, {"loop": summary, "initial_labels": case.initial.n_frames,
                                "initial_oracle_calls_this_run": initial_calls, **assessment})




KIND = Kind("active_learning", ActiveCase, run, resumable=True)
