"""The ``surface_hopping`` case: FSSH on a multi-state model, many trajectories batched.

``[model]`` names an analytic model (``analytic``), a trained diabatic model file (``path``), or
a dataset to train one on first (``[model.train]``: frames labelled by a multi-state oracle,
e.g. ``cases/multistate/lif_sa_casscf.extxyz``). ``[fssh]`` is an
:class:`~atomistic.multistate.FSSHSettings`. Particle models (Tully's three, the three-state
chain, the conical intersection) start every trajectory at (``x0_bohr``, ``y0_bohr``) with
``momentum_au`` along x; molecular models start from ``[structure]`` with Maxwell–Boltzmann
momenta at ``temperature_K``, drawn per trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from atomistic.multistate import FSSHSettings

from .config import RunOutputConfig, StructureConfig

#: analytic models that move one particle of Tully's mass (2000 m_e)
PARTICLE_MODELS = ("tully1", "tully2", "tully3", "three_state", "conical_intersection")
#: analytic models of a molecule (need [structure])
MOLECULAR_MODELS = ("diatomic_crossing",)


@dataclass(frozen=True)
class DiabaticTrainingConfig:
    """Train a :class:`~atomistic.multistate.DiabaticPotential` on ``dataset`` (extxyz of frames
    labelled by :func:`~atomistic.multistate.casscf.label_states`, relative to the case file;
    frames with ``split = "test"`` are held out and scored): ``hidden`` layer widths,
    ``cutoff_A``, ``n_radial`` radial functions from ``r_min_A``, ``epochs`` of full-batch Adam at
    ``lr``, ``coupling_weight`` of the phase-free coupling term, ``seed``."""

    dataset: str
    hidden: tuple[int, ...] = (32, 32)
    cutoff_A: float = 6.5
    n_radial: int = 12
    r_min_A: float = 1.0
    epochs: int = 2000
    lr: float = 5e-3
    coupling_weight: float = 3.0
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1 or not self.lr > 0 or self.coupling_weight < 0:
            raise ValueError(f"model.train: epochs must be >= 1, lr > 0 and coupling_weight >= 0, got "
                             f"{self.epochs}, {self.lr}, {self.coupling_weight}")
        if not self.cutoff_A > self.r_min_A >= 0 or self.n_radial < 1:
            raise ValueError(f"model.train: need cutoff_A > r_min_A >= 0 and n_radial >= 1, got "
                             f"{self.cutoff_A}, {self.r_min_A}, {self.n_radial}")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"model.train.hidden must be positive widths, got {list(self.hidden)}")


@dataclass(frozen=True)
class MultiStateModelConfig:
    """Exactly one of ``analytic`` (one of :data:`PARTICLE_MODELS` or :data:`MOLECULAR_MODELS`),
    ``path`` (a diabatic model file, relative to the case file) or ``train``; ``device``."""

    analytic: str | None = None
    path: str | None = None
    train: DiabaticTrainingConfig | None = None
    device: str = "cpu"

    def __post_init__(self):
        if sum(x is not None for x in (self.analytic, self.path, self.train)) != 1:
            raise ValueError("model: give exactly one of 'analytic', 'path' or a [model.train] table")
        if self.analytic is not None and self.analytic not in PARTICLE_MODELS + MOLECULAR_MODELS:
            raise ValueError(f"model.analytic must be one of {list(PARTICLE_MODELS + MOLECULAR_MODELS)}, "
                             f"got {self.analytic!r}")

    @property
    def particle(self) -> bool:
        return self.analytic in PARTICLE_MODELS


@dataclass(frozen=True)
class InitialConditionsConfig:
    """``trajectories`` starting on adiabatic ``state``. Particle models: at ``x0_bohr``,
    ``y0_bohr`` with ``momentum_au`` (ħ/bohr) along x. Molecules: at [structure] with
    Maxwell–Boltzmann momenta at ``temperature_K`` (0: at rest), ``seed``."""

    trajectories: int = 1000
    state: int = 0
    x0_bohr: float = -10.0
    y0_bohr: float = 0.0
    momentum_au: float = 20.0
    temperature_K: float = 0.0
    seed: int = 0

    def __post_init__(self):
        if self.trajectories < 1:
            raise ValueError(f"initial.trajectories must be >= 1, got {self.trajectories}")
        if self.state < 0:
            raise ValueError(f"initial.state must be >= 0, got {self.state}")
        if self.temperature_K < 0:
            raise ValueError(f"initial.temperature_K must be >= 0, got {self.temperature_K}")


@dataclass(frozen=True)
class HoppingRunConfig:
    """``steps`` of ``fssh.timestep_fs``, populations recorded every ``record_every``; particle
    models stop early once every trajectory is beyond ``exit_bohr`` from the origin along x
    (scattering: transmitted or reflected)."""

    steps: int = 2000
    record_every: int = 10
    exit_bohr: float | None = None

    def __post_init__(self):
        if self.steps < 1 or self.record_every < 1:
            raise ValueError(f"run.steps and run.record_every must be >= 1, got {self.steps}, {self.record_every}")
        if self.exit_bohr is not None and not self.exit_bohr > 0:
            raise ValueError(f"run.exit_bohr must be positive, got {self.exit_bohr}")


@dataclass(frozen=True)
class SurfaceHoppingCase:
    """kind = "surface_hopping": populations and hops of FSSH trajectories on a multi-state model."""

    kind: Literal["surface_hopping"]
    name: str
    model: MultiStateModelConfig
    initial: InitialConditionsConfig = field(default_factory=InitialConditionsConfig)
    fssh: FSSHSettings = field(default_factory=FSSHSettings)
    run: HoppingRunConfig = field(default_factory=HoppingRunConfig)
    structure: StructureConfig | None = None
    output: RunOutputConfig = field(default_factory=RunOutputConfig)
    threads: int = 0

    def __post_init__(self):
        if self.model.particle and self.structure is not None:
            raise ValueError(f"structure: model.analytic = {self.model.analytic!r} moves one particle; "
                             "remove [structure] and use initial.x0_bohr / momentum_au")
        if not self.model.particle and self.structure is None:
            raise ValueError("structure: a molecular multi-state model needs a [structure] table")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
