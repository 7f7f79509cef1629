"""Settings of a molecular-dynamics run: frozen dataclasses, checked when they are made.

Units are in the names: ``timestep_fs``, ``temperature_K``, ``pressure_GPa``, ``time_fs`` ...
Every error names the setting, its value and what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

THERMOSTATS = ("langevin", "bussi")
BAROSTATS = ("isotropic", "anisotropic")
ENSEMBLES = ("nve", "nvt", "npt")
PRECISIONS = ("float64", "float32")


def _positive(name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return
    if value is None or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class Thermostat:
    """``langevin``: BAOAB Langevin dynamics with friction 1/``time_fs`` (Leimkuhler–Matthews).
    ``bussi``: stochastic velocity rescaling with relaxation time ``time_fs`` (Bussi et al. 2007).
    """

    kind: str = "langevin"
    temperature_K: float = 300.0
    time_fs: float = 100.0  #: Langevin: 1 / friction; Bussi: kinetic-energy relaxation time

    def __post_init__(self):
        if self.kind not in THERMOSTATS:
            raise ValueError(f"thermostat.kind must be one of {THERMOSTATS}, got {self.kind!r}")
        if not (isinstance(self.temperature_K, (int, float)) and self.temperature_K >= 0
                and math.isfinite(self.temperature_K)):
            raise ValueError(f"thermostat.temperature_K must be a temperature >= 0 K, got {self.temperature_K!r}")
        _positive("thermostat.time_fs", self.time_fs)


@dataclass(frozen=True)
class Barostat:
    """Stochastic cell rescaling (Bernetti & Bussi 2020), first order, no barostat mass.

    ``isotropic`` scales the cell uniformly; ``anisotropic`` scales the three Cartesian axes
    independently (no shear). ``compressibility_per_GPa`` only sets how fast the volume relaxes
    (with ``time_fs``); the sampled ensemble does not depend on it.
    """

    kind: str = "isotropic"
    pressure_GPa: float = 0.0
    time_fs: float = 1000.0
    compressibility_per_GPa: float = 0.01

    def __post_init__(self):
        if self.kind not in BAROSTATS:
            raise ValueError(f"barostat.kind must be one of {BAROSTATS}, got {self.kind!r}")
        if not (isinstance(self.pressure_GPa, (int, float)) and math.isfinite(self.pressure_GPa)):
            raise ValueError(f"barostat.pressure_GPa must be a finite number, got {self.pressure_GPa!r}")
        _positive("barostat.time_fs", self.time_fs)
        _positive("barostat.compressibility_per_GPa", self.compressibility_per_GPa)


@dataclass(frozen=True)
class Safety:
    """When a run counts as blown up. ``max_force_eV_A``: largest force on any atom;
    ``min_distance_A``: closest approach of two atoms (checked at every host check)."""

    max_force_eV_A: float = 50.0
    min_distance_A: float = 0.5

    def __post_init__(self):
        _positive("safety.max_force_eV_A", self.max_force_eV_A)
        _positive("safety.min_distance_A", self.min_distance_A)


@dataclass(frozen=True)
class MDSettings:
    """One MD run.

    ensemble            "nve", "nvt" (needs ``thermostat``) or "npt" (needs both, periodic cell)
    steps               number of time steps
    timestep_fs         None: suggested from the Hessian (T_min / 20, DESIGN §3) and logged
    initial_temperature_K  Maxwell–Boltzmann momenta at this temperature; None keeps the atoms'
                        momenta (or uses the thermostat's temperature when they have none)
    skin_A              Verlet-list skin; the list is rebuilt only when an atom could have
                        crossed it (see :mod:`atomistic.md.forcefield`)
    check_every         steps between host checks (blow-up, list validity, output flush);
                        inside a block the device runs with no host round-trip
    log_every / trajectory_every / checkpoint_every   steps (0: never)
    precision           "float64" (default) or "float32" (explicit choice, faster on GPUs)
    cuda_graphs         on a CUDA device with up to 2^18 atoms, replay each block of steps from a
                        captured CUDA graph (one launch instead of hundreds per step;
                        :mod:`atomistic.md.captured`); the trajectory is the eager one to
                        rounding. Ignored on CPUs.
    """

    ensemble: str = "nve"
    steps: int = 1000
    timestep_fs: float | None = None
    thermostat: Thermostat | None = None
    barostat: Barostat | None = None
    initial_temperature_K: float | None = None
    skin_A: float = 1.0
    check_every: int = 20
    log_every: int = 10
    trajectory_every: int = 100
    checkpoint_every: int = 1000
    seed: int = 0
    precision: str = "float64"
    cuda_graphs: bool = True
    safety: Safety = field(default_factory=Safety)

    def __post_init__(self):
        if self.ensemble not in ENSEMBLES:
            raise ValueError(f"md.ensemble must be one of {ENSEMBLES}, got {self.ensemble!r}")
        if not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"md.steps must be an integer >= 0, got {self.steps!r}")
        _positive("md.timestep_fs", self.timestep_fs, allow_none=True)
        if self.ensemble in ("nvt", "npt") and self.thermostat is None:
            raise ValueError(f"md.ensemble = {self.ensemble!r} needs a thermostat (md.thermostat)")
        if self.ensemble == "nve" and self.thermostat is not None:
            raise ValueError("md.ensemble = 'nve' cannot have a thermostat; use 'nvt'")
        if self.ensemble == "npt" and self.barostat is None:
            raise ValueError("md.ensemble = 'npt' needs a barostat (md.barostat)")
        if self.ensemble != "npt" and self.barostat is not None:
            raise ValueError(f"md.barostat is only used with md.ensemble = 'npt', got {self.ensemble!r}")
        if self.initial_temperature_K is not None and not (
                isinstance(self.initial_temperature_K, (int, float)) and self.initial_temperature_K >= 0):
            raise ValueError(f"md.initial_temperature_K must be >= 0 K, got {self.initial_temperature_K!r}")
        _positive("md.skin_A", self.skin_A)
        if not isinstance(self.check_every, int) or self.check_every < 1:
            raise ValueError(f"md.check_every must be an integer >= 1, got {self.check_every!r}")
        for name in ("log_every", "trajectory_every", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"md.{name} must be an integer >= 0 (0: never), got {value!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"md.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not isinstance(self.cuda_graphs, bool):
            raise ValueError(f"md.cuda_graphs must be true or false, got {self.cuda_graphs!r}")


#: settings of how a run is carried out, not of its dynamics: a checkpoint's fingerprint leaves
#: them out, so a run may be resumed with another length, other output intervals or host checks
RUN_ONLY_SETTINGS = ("steps", "log_every", "trajectory_every", "checkpoint_every", "check_every", "cuda_graphs")
