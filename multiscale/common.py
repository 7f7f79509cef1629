"""Tables and helpers that several case kinds share: the model file (``[potential]``), the atoms
(``[structure]``), the model architecture (``[model]``) and the output folder (``[output]``).

Atomistic settings map straight onto the library's own setting classes
(:class:`~atomistic.DescriptorSettings`, :class:`~atomistic.NetworkSettings`, ...), so the
schema and the code cannot drift apart. Lengths Å.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ase.build
import numpy as np
from ase import Atoms
from ase.build import bulk, molecule
from ase.io import read

from atomistic.potential.descriptors import DescriptorSettings
from atomistic.potential.models import NetworkSettings

from .schema import CaseError


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
class RunOutputConfig:
    """``dir``: output folder, relative to the working directory (default runs/<name>)."""

    dir: str | None = None


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


def set_threads(threads: int) -> None:
    """``threads`` torch CPU threads (0: torch's default)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def check_threads(threads: int) -> None:
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")


def check_files(case, case_dir: Path) -> None:
    """The files a case names, opened as a run would open them: ``[potential] path`` (the model is
    loaded on the CPU: a missing, pickled, truncated or empty file is refused) and ``[structure]
    file`` (read). Raises the run's own input errors."""
    potential = getattr(case, "potential", None)
    if isinstance(potential, PotentialConfig):
        from atomistic.potential.io import load_potential

        load_potential(case_dir / potential.path, device="cpu")
    structure = getattr(case, "structure", None)
    if isinstance(structure, StructureConfig) and structure.file is not None:
        build_structures(structure, case_dir)


def build_structures(cfg, case_dir: Path) -> list[Atoms]:
    """``cfg.replicas`` structures, each rattled with its own seed; Å throughout."""
    if cfg.file is not None:
        path = case_dir / cfg.file
        if path.is_dir():
            raise CaseError(f"structure.file: {path} is a folder; expected a structure file")
        if not path.is_file():
            raise CaseError(f"structure.file: {path} not found")
        try:
            base = read(path, index=cfg.index, parallel=False)
        except Exception as exc:  # ASE raises many types for unreadable files
            raise CaseError(f"structure.file: cannot read {path} ({type(exc).__name__}: {exc})") from None
    elif cfg.molecule is not None:
        base = molecule(cfg.molecule)
    elif cfg.surface is not None:
        try:
            base = getattr(ase.build, cfg.surface)(cfg.element, size=cfg.size, a=cfg.a, vacuum=cfg.vacuum_A)
        except Exception as exc:
            raise CaseError(f"structure: cannot build a {cfg.surface} slab of {cfg.element!r} "
                            f"with a = {cfg.a} ({exc})") from None
        base.info.pop("adsorbate_info", None)  # a dict that extxyz cannot store
    else:
        try:
            base = bulk(cfg.element, cfg.crystal, a=cfg.a, cubic=cfg.cubic and cfg.crystal != "hcp")
        except Exception as exc:
            raise CaseError(f"structure: cannot build a {cfg.crystal} crystal of {cfg.element!r} "
                            f"with a = {cfg.a} ({exc})") from None
        base = base.repeat(cfg.repeat)
    out = []
    for k in range(cfg.replicas):
        atoms = base.copy()
        if cfg.rattle_A > 0:
            rng = np.random.default_rng(cfg.seed + k)
            atoms.positions += rng.normal(scale=cfg.rattle_A, size=atoms.positions.shape)
        out.append(atoms)
    return out
