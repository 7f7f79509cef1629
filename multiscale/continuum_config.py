"""The ``continuum`` case kind: a body (or two bonded bodies) with a material from the NN-PES.

Lengths Å, tractions and pressures GPa, works of separation J/m^2 in the case file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .config import PotentialConfig, RunOutputConfig


@dataclass(frozen=True)
class CrystalConfig:
    """The crystal whose elastic constants the model gives (``law``: linear or cauchy-born), and
    the body's x and y axes as crystal directions."""

    symbol: str
    a_guess_A: float
    lattice: Literal["fcc", "bcc"] = "fcc"
    law: Literal["linear", "cauchy-born"] = "linear"
    orientation_x: tuple[float, float, float] = (1.0, 0.0, 0.0)
    orientation_y: tuple[float, float, float] = (0.0, 1.0, 0.0)

    def __post_init__(self):
        if not self.a_guess_A > 0:
            raise ValueError(f"material.a_guess_A = {self.a_guess_A!r}: expected a positive length in Å")


@dataclass(frozen=True)
class MeshConfig:
    """A box (``lengths_A``, ``divisions``; ``split_x_A`` cuts it into two bodies bonded by the
    interface "interface") or a gmsh ``file`` (relative to the case file) whose internal surfaces
    named in ``interfaces`` are split. Boundaries of a box: xmin, xmax, ymin, ymax, zmin, zmax."""

    lengths_A: tuple[float, float, float] | None = None
    divisions: tuple[int, int, int] | None = None
    cell_type: Literal["hexahedron", "tetrahedron"] = "hexahedron"
    split_x_A: float | None = None
    file: str | None = None
    interfaces: tuple[str, ...] = ()

    def __post_init__(self):
        if (self.file is None) == (self.lengths_A is None):
            raise ValueError("mesh: give either lengths_A and divisions (a box) or file (a gmsh .msh)")
        if self.lengths_A is not None and self.divisions is None:
            raise ValueError("mesh.divisions: required with lengths_A")
        if self.file is None and self.interfaces:
            raise ValueError("mesh.interfaces: only for a gmsh file; a box is split with split_x_A")


@dataclass(frozen=True)
class InterfaceConfig:
    """The cohesive law of every interface: UBER (``W_sep_J_m2``, ``length_A``, optional
    ``tangential_length_A``), a ``table`` (a CSV file relative to the case file, two columns:
    opening in Å from 0, energy per area in J/m^2 from 0; a smooth spline through them), the
    ``model``'s own (the UBER fit of the rigid separation of two half-crystals of the material
    across the plane normal to the body's x axis, which must be a <100>, <110> or <111>
    direction), and contact without adhesion (``contact_penalty`` > 0; with ``law = "contact"``
    no adhesion at all)."""

    law: Literal["uber", "table", "model", "contact"] = "uber"
    W_sep_J_m2: float | None = None
    length_A: float | None = None
    tangential_length_A: float | None = None
    table: str | None = None
    contact_penalty: float = 0.0

    def __post_init__(self):
        if self.law == "uber" and (self.W_sep_J_m2 is None or self.length_A is None):
            raise ValueError("interface: law = 'uber' needs W_sep_J_m2 and length_A")
        if (self.law == "table") != (self.table is not None):
            raise ValueError("interface: law = 'table' goes with table = 'file.csv' (and only with it)")


@dataclass(frozen=True)
class BoundaryConfig:
    """One condition on the boundary ``name``: ``type`` displacement (``value_A``, "free" for a free
    component), symmetry, traction (``value_GPa``, 3 numbers) or pressure (``value_GPa``, 1 number).
    ``ramp``: scaled by the load factor."""

    name: str
    type: Literal["displacement", "symmetry", "traction", "pressure"]
    value_A: tuple[float | str, float | str, float | str] | None = None
    value_GPa: tuple[float, ...] | None = None
    ramp: bool = True

    def __post_init__(self):
        where = f"boundary {self.name!r}"
        if self.type == "displacement":
            if self.value_A is None or any(isinstance(v, str) and v != "free" for v in self.value_A):
                raise ValueError(f"{where}: displacement needs value_A = [x, y, z] in Å, each a number or \"free\"")
        elif self.type == "traction" and (self.value_GPa is None or len(self.value_GPa) != 3):
            raise ValueError(f"{where}: traction needs value_GPa = [tx, ty, tz]")
        elif self.type == "pressure" and (self.value_GPa is None or len(self.value_GPa) != 1):
            raise ValueError(f"{where}: pressure needs value_GPa = [p]")


@dataclass(frozen=True)
class ContinuumSolverConfig:
    """Element degree, load steps, and the linear solver ("direct": MUMPS; "cg": CG + GAMG)."""

    degree: int = 1
    steps: int = 10
    linear_solver: Literal["direct", "cg"] = "direct"
    max_cuts: int = 8

    def __post_init__(self):
        if self.degree not in (1, 2):
            raise ValueError(f"solver.degree = {self.degree!r}: expected 1 or 2")
        if self.steps < 1:
            raise ValueError(f"solver.steps = {self.steps!r}: expected a positive integer")


@dataclass(frozen=True)
class FieldOutputConfig:
    """``dir`` (default runs/<name>), ``format`` vtx or xdmf, fields written every ``every`` steps."""

    dir: str | None = None
    format: Literal["vtx", "xdmf"] = "vtx"
    every: int = 1


@dataclass(frozen=True)
class ContinuumCase:
    """kind = "continuum": load-stepped static equilibrium, material from the NN-PES."""

    kind: Literal["continuum"]
    name: str
    potential: PotentialConfig
    material: CrystalConfig
    mesh: MeshConfig
    boundary: tuple[BoundaryConfig, ...]
    interface: InterfaceConfig | None = None
    solver: ContinuumSolverConfig = field(default_factory=ContinuumSolverConfig)
    output: FieldOutputConfig = field(default_factory=FieldOutputConfig)

    def __post_init__(self):
        split = self.mesh.split_x_A is not None or bool(self.mesh.interfaces)
        if split and self.interface is None:
            raise ValueError("interface: the mesh has an interface, so the case needs an [interface] table")
        if self.interface is not None and not split:
            raise ValueError("interface: given, but the mesh has no interface (set mesh.split_x_A or mesh.interfaces)")


__all__ = ["ContinuumCase", "RunOutputConfig"]
