"""Shared building blocks of the case kinds with a finite-element body (``continuum``,
``coupled``): their tables, the material and interface law from the model, the mesh, the boundary
conditions, and ending every MPI rank when one fails (the load-step loop and its outputs:
:mod:`multiscale.fe_steps`; its checkpoints: :mod:`multiscale.fe_checkpoint`).

Runs serially or under ``mpiexec -n N``: the model is evaluated on rank 0 and its numbers
broadcast; the mesh is built on rank 0 and distributed. Lengths Å, tractions and pressures GPa,
works of separation J/m^2 in the case file. DOLFINx is imported inside the functions that need it.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import numpy as np

from continuum.solver import SolverSettings

from .common import PotentialConfig
from .schema import CaseError

log = logging.getLogger(__name__)

#: the faces of a box mesh (:func:`continuum.geometry.box`)
BOX_FACES = ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")


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
        if not 0 < self.a_guess_A < float("inf"):
            raise ValueError(f"material.a_guess_A = {self.a_guess_A!r}: expected a positive length in Å")
        x, y = (np.asarray(v, dtype=float) for v in (self.orientation_x, self.orientation_y))
        for key, v in (("orientation_x", x), ("orientation_y", y)):
            if not (np.all(np.isfinite(v)) and np.linalg.norm(v) > 0):
                raise ValueError(f"material.{key} = {v.tolist()}: expected a non-zero crystal direction")
        if abs(x @ y) > 1e-8 * np.linalg.norm(x) * np.linalg.norm(y):
            raise ValueError(f"material.orientation_y = {y.tolist()}: expected a direction perpendicular to "
                             f"orientation_x = {x.tolist()} (the body's z axis is x cross y)")


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
        if self.lengths_A is not None:
            if not all(0 < v < float("inf") for v in self.lengths_A):
                raise ValueError(f"mesh.lengths_A = {list(self.lengths_A)}: expected three positive lengths in Å")
            if not all(n >= 1 for n in self.divisions):
                raise ValueError(f"mesh.divisions = {list(self.divisions)}: expected three integers >= 1")
            if self.split_x_A is not None and not 0 < self.split_x_A < self.lengths_A[0]:
                raise ValueError(f"mesh.split_x_A = {self.split_x_A!r}: expected a plane inside the box, between 0 "
                                 f"and lengths_A[0] = {self.lengths_A[0]} Å")
        elif self.split_x_A is not None:
            raise ValueError("mesh.split_x_A: only for a box; a gmsh file names its interfaces in mesh.interfaces")


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
        if self.W_sep_J_m2 is not None and not 0 < self.W_sep_J_m2 < float("inf"):
            raise ValueError(f"interface.W_sep_J_m2 = {self.W_sep_J_m2!r}: expected a positive work of separation "
                             "in J/m^2")
        for key in ("length_A", "tangential_length_A"):
            value = getattr(self, key)
            if value is not None and not 0 < value < float("inf"):
                raise ValueError(f"interface.{key} = {value!r}: expected a positive length in Å")
        if not 0 <= self.contact_penalty < float("inf"):
            raise ValueError(f"interface.contact_penalty = {self.contact_penalty!r}: expected a number >= 0")


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
            if any(not isinstance(v, str) and not np.isfinite(v) for v in self.value_A):
                raise ValueError(f"{where}: value_A = {list(self.value_A)}: expected finite displacements in Å")
        elif self.type == "traction" and (self.value_GPa is None or len(self.value_GPa) != 3):
            raise ValueError(f"{where}: traction needs value_GPa = [tx, ty, tz]")
        elif self.type == "pressure" and (self.value_GPa is None or len(self.value_GPa) != 1):
            raise ValueError(f"{where}: pressure needs value_GPa = [p]")
        if self.value_GPa is not None and not np.all(np.isfinite(self.value_GPa)):
            raise ValueError(f"{where}: value_GPa = {list(self.value_GPa)}: expected finite numbers in GPa")


@dataclass(frozen=True)
class FESolverConfig(SolverSettings):
    """``[solver]``: every setting of :class:`continuum.solver.SolverSettings` (Newton tolerances
    ``atol`` eV/Å and ``rtol``, ``line_search``, ``linear_solver`` "direct" (MUMPS) or "cg" (CG +
    GAMG), ``max_iterations``, ``ksp_rtol``, ``max_cuts``), plus the element ``degree`` (1 or 2)
    and the number of load ``steps``. ``control``: ``"load"`` walks the load factor from 0 to 1
    (the ramped loads at their full values at the end); ``"opening"`` follows the path through an
    interface's peak and snap-back (:mod:`continuum.continuation`): each step prescribes the mean
    normal opening of the interface ``control_interface`` (default: the only one), up to
    ``opening_A`` (Å) at the last step, and the load factor of the ramped loads follows from
    equilibrium (any value; the ramped displacements are then per unit load factor)."""

    degree: int = 1
    steps: int = 10
    control: Literal["load", "opening"] = "load"
    opening_A: float | None = None
    control_interface: str | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.degree not in (1, 2):
            raise ValueError(f"solver.degree = {self.degree!r}: expected 1 or 2")
        if self.steps < 1:
            raise ValueError(f"solver.steps = {self.steps!r}: expected a positive integer")
        if self.control == "opening":
            if self.opening_A is None or not (np.isfinite(self.opening_A) and self.opening_A > 0):
                raise ValueError(f"solver.opening_A = {self.opening_A!r}: control = \"opening\" needs the final mean "
                                 "opening of the interface, a positive length in Å")
        elif self.opening_A is not None or self.control_interface is not None:
            raise ValueError("solver.opening_A, solver.control_interface: only with control = \"opening\"")

    def stepped(self, problem, interfaces):
        """``problem`` as the load steps walk it: itself (load control) or wrapped in an
        :class:`~continuum.continuation.OpeningControl` on the interface (opening control)."""
        if self.control == "load":
            return problem
        from continuum.continuation import OpeningControl

        return OpeningControl(problem, self.control_interface or next(iter(interfaces)), self.opening_A,
                              atol=self.atol, rtol=self.rtol, max_iterations=self.max_iterations)

    def settings(self) -> SolverSettings:
        """The library's own settings object (without ``degree`` and ``steps``)."""
        names = [f.name for f in fields(SolverSettings)]
        return SolverSettings(**{n: getattr(self, n) for n in names})


@dataclass(frozen=True)
class FieldOutputConfig:
    """``dir`` (default runs/<name>), ``format`` vtx or xdmf, fields written every ``every`` steps."""

    dir: str | None = None
    format: Literal["vtx", "xdmf"] = "vtx"
    every: int = 1


@dataclass(frozen=True, kw_only=True)
class BodyCase:
    """The tables of every case with a finite-element body: the model file (``[potential]``), the
    crystal it is made of (``[material]``), the mesh, the boundary conditions (``[[boundary]]``),
    the interface law (``[interface]``, with a split mesh), the solver and the field output."""

    name: str
    potential: PotentialConfig
    material: CrystalConfig
    mesh: MeshConfig
    boundary: tuple[BoundaryConfig, ...]
    interface: InterfaceConfig | None = None
    solver: FESolverConfig = field(default_factory=FESolverConfig)
    output: FieldOutputConfig = field(default_factory=FieldOutputConfig)

    def check_boundaries(self) -> None:
        """On a box, every ``[[boundary]]`` names one of its faces (a gmsh file's names are read
        with the mesh)."""
        if self.mesh.lengths_A is None:
            return
        for k, b in enumerate(self.boundary):
            if b.name not in BOX_FACES:
                raise ValueError(f"boundary[{k}].name = {b.name!r}: a box's faces are {list(BOX_FACES)}")

    def check_control(self) -> None:
        """Opening control needs an interface (the named one, on a box "interface") and a ramped load."""
        s = self.solver
        if s.control != "opening":
            return
        names = ("interface",) if self.mesh.split_x_A is not None else tuple(self.mesh.interfaces)
        if not names or self.interface is None:
            raise ValueError("solver.control = \"opening\": the mesh has no interface to control (set mesh.split_x_A "
                             "or mesh.interfaces, and [interface])")
        if s.control_interface is None and len(names) > 1:
            raise ValueError(f"solver.control_interface: the mesh has interfaces {list(names)}; name the one to open")
        if s.control_interface is not None and s.control_interface not in names:
            raise ValueError(f"solver.control_interface = {s.control_interface!r}: expected one of {list(names)}")
        if not any(b.ramp and b.type != "symmetry" for b in self.boundary):
            raise ValueError("solver.control = \"opening\": no [[boundary]] is ramped, so no load can open the "
                             "interface")


def load_model(case, base: Path, comm):
    """The model of ``[potential]`` on rank 0 (None on the other ranks). A file that cannot be
    read is an input error on every rank (not a hang of the others in their next collective)."""
    from continuum.collective import on_root

    from .errors import INPUT_ERRORS

    def load():
        from atomistic import load_potential

        return load_potential(base / case.potential.path, device=case.potential.device)

    return on_root(comm, 0, load, INPUT_ERRORS, share=False)


def material(case, model, comm):
    """The continuum material of ``[material]`` from the model (computed on rank 0, the numbers
    broadcast): (material, lattice constant Å, elastic tensor)."""
    from continuum.materials import CauchyBorn, ElasticTensor, LinearElastic

    numbers = None
    if comm.rank == 0:
        from coupling.materials import crystal_material

        m = case.material
        built = crystal_material(model, symbol=m.symbol, lattice=m.lattice, a_guess_A=m.a_guess_A,
                                 orientation=(m.orientation_x, m.orientation_y), law=m.law, name=m.symbol)
        t = built.material.tensor
        numbers = (t.C, t.C3, built.lattice_constant_A)
    C, C3, a0 = comm.bcast(numbers, root=0)
    tensor = ElasticTensor(C, C3, name=case.material.symbol)
    built = CauchyBorn(tensor) if case.material.law == "cauchy-born" else LinearElastic(tensor)
    return built, a0, tensor


def model_law(case, model, a0: float, comm):
    """The UBER fit of the model's rigid separation across the plane normal to the body's x axis
    (computed on rank 0, broadcast); None unless ``interface.law = "model"``."""
    if case.interface is None or case.interface.law != "model":
        return None
    result = None
    if comm.rank == 0:
        from coupling.cohesive_law import model_interface_law
        from coupling.errors import CouplingInputError

        try:
            result = model_interface_law(model, case.material.symbol, a0, case.material.orientation_x)
        except CouplingInputError as exc:
            result = f"interface.law = \"model\": {exc}"
    result = comm.bcast(result, root=0)
    if isinstance(result, str):
        raise CaseError(result)
    return result


def raw_mesh(case, base: Path):
    """The mesh of ``[mesh]`` as arrays (rank 0): a box, split at ``split_x_A``, or a gmsh file."""
    from continuum.geometry import box, from_gmsh, split_interfaces

    m = case.mesh
    if m.file is not None:
        return split_interfaces(from_gmsh(base / m.file), list(m.interfaces))
    cuts = (("x", m.split_x_A, "interface"),) if m.split_x_A is not None else ()
    return box(m.lengths_A, m.divisions, cell_type=m.cell_type, cuts=cuts)


def boundary_conditions(case):
    """The library's boundary conditions of ``[[boundary]]``."""
    from continuum.boundary import Displacement, Pressure, Symmetry, Traction

    out = []
    for b in case.boundary:
        if b.type == "displacement":
            out.append(Displacement(b.name, tuple(None if v == "free" else float(v) for v in b.value_A), b.ramp))
        elif b.type == "symmetry":
            out.append(Symmetry(b.name))
        elif b.type == "traction":
            out.append(Traction(b.name, tuple(b.value_GPa), b.ramp))
        else:
            out.append(Pressure(b.name, b.value_GPa[0], b.ramp))
    return tuple(out)


def interface_law(case, base: Path, model_law=None):
    """The cohesive law of ``[interface]`` (``model_law``: the model's own UBER fit)."""
    from continuum.cohesive import UBER, TabulatedLaw
    from continuum.interface import InterfaceLaw
    from continuum.units import J_per_m2

    i = case.interface
    law = model_law
    if i.law == "uber":
        law = UBER(i.W_sep_J_m2 * J_per_m2, i.length_A, i.tangential_length_A)
    elif i.law == "table":
        path = base / i.table
        try:
            table = np.loadtxt(path, delimiter=",", ndmin=2, comments="#")
        except (OSError, ValueError) as exc:
            raise CaseError(f"interface.table = {i.table!r}: cannot read two numeric columns ({exc})") from None
        if table.shape[1] != 2:
            raise CaseError(f"interface.table = {i.table!r}: expected 2 columns (opening_A, energy_J_m2), "
                                      f"got {table.shape[1]}")
        law = TabulatedLaw(tuple(table[:, 0]), tuple(table[:, 1] * J_per_m2))
    return InterfaceLaw(law, contact_penalty=i.contact_penalty)


@dataclass
class Body:
    """What every finite-element kind builds first: the model (rank 0 only), the material and
    its lattice constant (Å) and elastic tensor, the model's interface law (or None), the
    distributed mesh, the interface laws by name and the boundary conditions."""

    model: object
    material: object
    a0_A: float
    tensor: object
    model_law: object
    domain: object
    interfaces: dict
    bcs: tuple
    pulled: tuple[str, ...]


def build_body(case, case_dir: Path, comm) -> Body:
    """The :class:`Body` of a case with the tables of :class:`BodyCase` (collective)."""
    from continuum.domain import Domain

    model = load_model(case, case_dir, comm)
    built, a0, tensor = material(case, model, comm)
    law = model_law(case, model, a0, comm)
    domain = Domain.create(raw_mesh(case, case_dir) if comm.rank == 0 else None, comm)
    interfaces = {name: interface_law(case, case_dir, law) for name in domain.interfaces} if case.interface else {}
    pulled = tuple(b.name for b in case.boundary if b.type == "displacement")
    return Body(model, built, a0, tensor, law, domain, interfaces, boundary_conditions(case), pulled)


def run_on_every_rank(body, case, ctx):
    """``body(case, ctx, comm)`` on ``MPI.COMM_WORLD``, every rank ended if one fails unexpectedly."""
    from continuum.backend import load_dolfinx

    load_dolfinx()
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    with abort_other_ranks(comm):
        return body(case, ctx, comm)


def iterate_on_every_rank(body, case, ctx):
    """:func:`run_on_every_rank` for a generator ``body(case, ctx, comm)``: yields what it yields,
    returns what it returns."""
    from continuum.backend import load_dolfinx

    load_dolfinx()
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    with abort_other_ranks(comm):
        return (yield from body(case, ctx, comm))


ABORT_GRACE_S = 1.0  # s between an unexpected error's report and MPI Abort


@contextmanager
def abort_other_ranks(comm):
    """An unexpected error on one rank ends every rank (MPI Abort) instead of leaving them hanging;
    input errors, a failed solve and a blown-up dynamics run (raised on every rank alike: the
    checks, the solver's convergence test and the dynamics' step check are collective) pass
    through, for the CLI to report once."""
    try:
        yield
    except Exception as exc:
        from atomistic.errors import MDBlowUp
        from continuum.errors import ContinuumSolveError

        from .errors import INPUT_ERRORS

        if comm.size > 1 and not isinstance(exc, (*INPUT_ERRORS, ContinuumSolveError, MDBlowUp)):
            log.error("rank %d: %s: %s; aborting all ranks", comm.rank, type(exc).__name__, exc, exc_info=exc)
            sys.stderr.flush()
            time.sleep(ABORT_GRACE_S)  # MPICH's launcher drops a rank's last output if Abort kills it first
            comm.Abort(1)
        raise
