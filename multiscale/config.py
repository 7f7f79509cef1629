"""Case-file configuration: one frozen dataclass per TOML table (1:1).

Atomistic settings map straight onto the library's own setting classes
(:class:`~atomistic.DescriptorSettings`, :class:`~atomistic.NetworkSettings`, ...), so the
schema and the code cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from atomistic.descriptors import DescriptorSettings
from atomistic.md.settings import MDSettings
from atomistic.models import NetworkSettings
from atomistic.recipes import RECIPES
from atomistic.training.ensemble import EnsembleSettings
from atomistic.training.trainer import TrainSettings


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
        if self.recipe is not None and self.recipe not in RECIPES:
            raise ValueError(f"recipe {self.recipe!r} is not known (known: {', '.join(sorted(RECIPES))})")
        if not self.size > 0:
            raise ValueError(f"size must be positive, got {self.size}")


@dataclass(frozen=True)
class ModelConfig:
    """Species and the Behler–Parrinello architecture."""

    species: tuple[str, ...]
    descriptor: DescriptorSettings = field(default_factory=DescriptorSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)

    def __post_init__(self):
        from ase.data import atomic_numbers

        bad = [s for s in self.species if s not in atomic_numbers or s == "X"]
        if bad or not self.species:
            raise ValueError(f"species must be chemical symbols, got {list(self.species)}")
        if len(set(self.species)) != len(self.species):
            raise ValueError(f"species must not repeat, got {list(self.species)}")


@dataclass(frozen=True)
class LearningCurveConfig:
    """Fractions of the training pool for the test-error vs training-set-size curve (empty: none).
    The full-size point is the ensemble itself."""

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
    """kind = "train": build or read a dataset, train an ensemble, report errors and validation."""

    kind: Literal["train"]
    name: str
    model: ModelConfig
    dataset: DatasetConfig
    training: TrainSettings = field(default_factory=TrainSettings)
    ensemble: EnsembleSettings = field(default_factory=EnsembleSettings)
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
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")


@dataclass(frozen=True)
class PotentialConfig:
    """A trained model file (relative to the case file) and where to run it."""

    path: str
    device: str = "cpu"

    def __post_init__(self):
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"potential.device {self.device!r}: CUDA is not available here")
        elif self.device != "cpu":
            raise ValueError(f"potential.device must be 'cpu' or 'cuda[:n]', got {self.device!r}")


CRYSTALS = ("fcc", "bcc", "hcp", "sc", "diamond")
SURFACES = ("fcc111", "fcc100", "fcc110")


@dataclass(frozen=True)
class StructureConfig:
    """The atoms: read from ``file`` (any ASE-readable file, relative to the case file; ``index``
    picks a frame), a ``molecule`` from ASE's g2 set (e.g. "CH3CH2OH"), or built as a ``crystal``
    of ``element`` with lattice constant ``a`` (Å) and ``repeat`` copies of the (cubic if
    ``cubic``) cell; with ``surface`` ("fcc111", "fcc100", "fcc110") a slab of ``size`` =
    (n1, n2, layers) with ``vacuum_A`` Å of vacuum on each side, periodic in-plane.
    Atoms are displaced by Gaussian noise of ``rattle_A`` Å. ``replicas`` independent copies run
    batched (different noise each)."""

    file: str | None = None
    index: int = -1
    molecule: str | None = None
    element: str | None = None
    surface: str | None = None
    size: tuple[int, int, int] = (3, 3, 4)
    vacuum_A: float = 6.0
    crystal: str = "fcc"
    a: float | None = None
    cubic: bool = True
    repeat: tuple[int, int, int] = (1, 1, 1)
    rattle_A: float = 0.0
    replicas: int = 1
    seed: int = 0

    def __post_init__(self):
        if sum(x is not None for x in (self.file, self.molecule, self.element)) != 1:
            raise ValueError("structure: give exactly one of 'file', 'molecule' or 'element'")
        if self.molecule is not None:
            from ase.collections import g2

            if self.molecule not in g2.names:
                raise ValueError(f"structure.molecule {self.molecule!r} is not in ASE's g2 set "
                                 "(e.g. 'CH3CH2OH', 'H2O', 'C6H6')")
        if self.surface is not None:
            if self.surface not in SURFACES:
                raise ValueError(f"structure.surface must be one of {SURFACES}, got {self.surface!r}")
            if self.element is None:
                raise ValueError("structure.surface needs 'element'")
            if any(n < 1 for n in self.size) or not self.vacuum_A > 0:
                raise ValueError(f"structure.size must be positive integers and vacuum_A positive, got "
                                 f"{list(self.size)}, {self.vacuum_A}")
        if self.crystal not in CRYSTALS:
            raise ValueError(f"structure.crystal must be one of {CRYSTALS}, got {self.crystal!r}")
        if self.a is not None and not self.a > 0:
            raise ValueError(f"structure.a must be a positive length in Å, got {self.a}")
        if any(r < 1 for r in self.repeat):
            raise ValueError(f"structure.repeat must be positive integers, got {list(self.repeat)}")
        if self.rattle_A < 0:
            raise ValueError(f"structure.rattle_A must be >= 0 Å, got {self.rattle_A}")
        if self.replicas < 1:
            raise ValueError(f"structure.replicas must be >= 1, got {self.replicas}")


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


@dataclass(frozen=True)
class RunOutputConfig:
    """``dir``: output folder, relative to the working directory (default runs/<name>)."""

    dir: str | None = None


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
    threads: int = 0

    def __post_init__(self):
        if self.analysis.heat_capacity and self.md.ensemble != "nvt":
            raise ValueError(f"analysis.heat_capacity needs md.ensemble = 'nvt', got {self.md.ensemble!r}")
        if self.analysis.compressibility and self.md.ensemble != "npt":
            raise ValueError(f"analysis.compressibility needs md.ensemble = 'npt', got {self.md.ensemble!r}")
        if (self.analysis.heat_capacity or self.analysis.compressibility) and not self.md.log_every:
            raise ValueError("analysis needs logged samples: set md.log_every > 0")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")


@dataclass(frozen=True)
class RelaxConfig:
    """Relax first (FIRE) to ``fmax`` eV/Å; ``cell``: the cell too (periodic structures)."""

    enabled: bool = True
    fmax: float = 1e-4
    cell: bool = False
    max_steps: int = 5000

    def __post_init__(self):
        if not self.fmax > 0:
            raise ValueError(f"relax.fmax must be positive (eV/Å), got {self.fmax}")


@dataclass(frozen=True)
class VibrationsCase:
    """kind = "vibrations": relax, then normal modes from the autograd Hessian."""

    kind: Literal["vibrations"]
    name: str
    potential: PotentialConfig
    structure: StructureConfig
    relax: RelaxConfig = field(default_factory=RelaxConfig)
    output: RunOutputConfig = field(default_factory=RunOutputConfig)

    def __post_init__(self):
        if self.structure.replicas != 1:
            raise ValueError(f"structure.replicas must be 1 for vibrations, got {self.structure.replicas}")


REACTION_RECIPES = ("cu_adatom_hop",)


@dataclass(frozen=True)
class EndpointsConfig:
    """The two minima: ``initial`` and ``final`` files (relative to the case file, same atoms in
    the same order), or a built-in ``recipe`` ("cu_adatom_hop": a Cu adatom between two hollow
    sites of Cu(100), bottom layer fixed)."""

    recipe: str | None = None
    initial: str | None = None
    final: str | None = None

    def __post_init__(self):
        if self.recipe is not None:
            if self.initial is not None or self.final is not None:
                raise ValueError("endpoints: give either 'recipe' or both 'initial' and 'final'")
            if self.recipe not in REACTION_RECIPES:
                raise ValueError(f"endpoints.recipe must be one of {REACTION_RECIPES}, got {self.recipe!r}")
        elif self.initial is None or self.final is None:
            raise ValueError("endpoints: give either 'recipe' or both 'initial' and 'final'")


@dataclass(frozen=True)
class NEBConfig:
    """Climbing-image NEB: images (endpoints included), spring constant (eV/Å^2), band force
    tolerance (eV/Å)."""

    n_images: int = 7
    spring_eV_A2: float = 0.1
    fmax: float = 0.03
    max_steps: int = 2000

    def __post_init__(self):
        if self.n_images < 3:
            raise ValueError(f"neb.n_images must be >= 3 (endpoints included), got {self.n_images}")
        if not (self.spring_eV_A2 > 0 and self.fmax > 0):
            raise ValueError(f"neb.spring_eV_A2 and neb.fmax must be positive, got {self.spring_eV_A2}, {self.fmax}")


@dataclass(frozen=True)
class SaddleConfig:
    """Refinement of the climbing image with the exact Hessian, to ``fmax`` eV/Å."""

    fmax: float = 1e-3
    max_steps: int = 100

    def __post_init__(self):
        if not self.fmax > 0:
            raise ValueError(f"saddle.fmax must be positive (eV/Å), got {self.fmax}")


@dataclass(frozen=True)
class IRCConfig:
    """IRC from the refined saddle: arc-length step (amu^1/2 Å) and stopping force (eV/Å)."""

    enabled: bool = True
    step: float = 0.1
    fmax: float = 0.01

    def __post_init__(self):
        if not (self.step > 0 and self.fmax > 0):
            raise ValueError(f"irc.step and irc.fmax must be positive, got {self.step}, {self.fmax}")


@dataclass(frozen=True)
class RatesConfig:
    """Harmonic TST at ``temperatures_K``; quantum or classical vibrational partition functions;
    with an ensemble, a ``confidence`` band from the members."""

    temperatures_K: tuple[float, ...] = (200.0, 300.0, 400.0, 500.0, 600.0, 800.0)
    quantum: bool = False
    confidence: float = 0.95

    def __post_init__(self):
        if not self.temperatures_K or any(not t > 0 for t in self.temperatures_K):
            raise ValueError(f"rates.temperatures_K must be positive temperatures, got {list(self.temperatures_K)}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"rates.confidence must be in (0, 1), got {self.confidence}")


@dataclass(frozen=True)
class ReactionCase:
    """kind = "reaction": NEB -> refined saddle (one imaginary mode) -> IRC -> TST rates."""

    kind: Literal["reaction"]
    name: str
    potential: PotentialConfig
    endpoints: EndpointsConfig
    neb: NEBConfig = field(default_factory=NEBConfig)
    saddle: SaddleConfig = field(default_factory=SaddleConfig)
    irc: IRCConfig = field(default_factory=IRCConfig)
    rates: RatesConfig = field(default_factory=RatesConfig)
    output: RunOutputConfig = field(default_factory=RunOutputConfig)
