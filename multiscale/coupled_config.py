"""The ``coupled`` case kind: atoms of the material, embedded in its continuum (DESIGN section 5).

The continuum tables are those of the ``continuum`` kind (a box mesh); ``[atoms]`` places the
atomistic region. Lengths Å.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .config import PotentialConfig
from .continuum_config import (BoundaryConfig, ContinuumSolverConfig, CrystalConfig, FieldOutputConfig,
                               InterfaceConfig, MeshConfig)

FACES = ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")


@dataclass(frozen=True)
class AtomsRegionConfig:
    """The atomistic box ``[lower_A, upper_A]`` (the core and the handshake inside it), the
    handshake's width ``handshake_A`` and ``ramp``, the ``pad_A`` of slaved atoms beyond it (at least
    the model's cutoff), the box faces ``coupled_faces`` that meet the continuum (the others lie on
    the body's free surface), ``mask_bodies`` (atoms of different bodies do not interact; adhesion
    comes from the interface law) and ``ghost_force_correction``. The atoms are the material's
    crystal (its orientation and the model's lattice constant), generated to fill the box and pad."""

    lower_A: tuple[float, float, float]
    upper_A: tuple[float, float, float]
    handshake_A: float
    pad_A: float
    ramp: Literal["linear", "c1"] = "c1"
    coupled_faces: tuple[str, ...] = FACES
    mask_bodies: bool = True
    ghost_force_correction: bool = True

    def __post_init__(self):
        unknown = sorted(set(self.coupled_faces) - set(FACES))
        if unknown:
            raise ValueError(f"atoms.coupled_faces: {unknown} are not faces; expected some of {list(FACES)}")
        if not self.handshake_A > 0:
            raise ValueError(f"atoms.handshake_A = {self.handshake_A!r}: expected a positive width in Å")
        if not self.pad_A > 0:
            raise ValueError(f"atoms.pad_A = {self.pad_A!r}: expected a positive width in Å (at least the cutoff)")


@dataclass(frozen=True)
class CoupledCase:
    """kind = "coupled": load-stepped static equilibrium of atoms and continuum together."""

    kind: Literal["coupled"]
    name: str
    potential: PotentialConfig
    material: CrystalConfig
    mesh: MeshConfig
    atoms: AtomsRegionConfig
    boundary: tuple[BoundaryConfig, ...]
    interface: InterfaceConfig | None = None
    solver: ContinuumSolverConfig = field(default_factory=ContinuumSolverConfig)
    output: FieldOutputConfig = field(default_factory=FieldOutputConfig)

    def __post_init__(self):
        if self.mesh.file is not None:
            raise ValueError("mesh.file: a coupled case needs a box mesh (lengths_A, divisions), whose split gives "
                             "the atoms their bodies")
        if (self.mesh.split_x_A is not None) != (self.interface is not None):
            raise ValueError("interface: a coupled case has an [interface] table exactly when mesh.split_x_A is set")
        if self.material.law != "cauchy-born":
            raise ValueError(f"material.law = {self.material.law!r}: a coupled case needs \"cauchy-born\" (the "
                             "continuum must be the finite-strain energy of the same crystal as the atoms)")
