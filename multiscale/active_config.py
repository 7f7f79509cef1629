"""The ``active_learning`` case: committee MD with an oracle, from a small starting dataset.

Tables map 1:1 onto the library's own classes: ``[oracle]`` is an
:class:`~atomistic.active.OracleSpec`, ``[loop]`` an :class:`~atomistic.active.ActiveSettings`
(its ``stages`` an array of ``{temperature_K, steps}`` tables, ``[loop.fine_tune]`` a
:class:`~atomistic.training.trainer.TrainSettings`), ``[training]`` trains generation 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from atomistic.active import ActiveSettings, OracleSpec
from atomistic.training.trainer import TrainSettings

from .config import ModelConfig, RunOutputConfig, StructureConfig


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
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")

    @property
    def test_temperature_K(self) -> float:
        return self.reference.test_temperature_K or self.loop.stages[-1].temperature_K
