"""kind = "coupled": the material's atoms inside its continuum, load-stepped to equilibrium
(one energy for both, minimised by Newton; see ``docs/verification.md``).

Serial or under ``mpiexec -n N multiscale run case.toml``: the atoms (and the model) live on rank
0, the mesh on all ranks. Outputs: field files (VTX or XDMF; displacement, stress, energy density;
nodes inside the atomistic core are inactive and stay at zero), ``atoms.extxyz`` (the atoms at
every written step: positions, forces, beta, region, body), ``load.csv`` (load factor, energies by
part in eV, reactions in eV/Å, Newton iterations), ``load.png`` and ``report.json`` (``load.csv``
and ``report.json`` rewritten after every load step, ``"finished": false`` until the end). A
checkpoint after every load step in ``checkpoint/`` (the nodal and the free atoms'
displacements): ``--resume`` continues an interrupted run to the numbers of an uninterrupted one,
and rewrites the fields and ``atoms.extxyz`` with the same frames (same number of ranks; see
:mod:`multiscale.fe_steps`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from coupling.handshake import FACES

from .. import fe_build, fe_steps
from ..fe_build import BodyCase, FESolverConfig
from ..fe_checkpoint import Checkpoints
from ..outputs import Report, write_extxyz
from . import Kind, RunContext

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class AtomsRegionConfig:
    """The atomistic box ``[lower_A, upper_A]`` (the core and the handshake inside it), the
    handshake's width ``handshake_A`` and ``ramp``, the ``pad_A`` of slaved atoms beyond it (at least
    the model's cutoff), the box faces ``coupled_faces`` that meet the continuum (the others lie on
    the body's free surface), ``mask_bodies`` (atoms of different bodies do not interact; adhesion
    comes from the interface law) and ``ghost_force_correction``. The atoms are the material's
    crystal (its orientation and the model's lattice constant), generated to fill the box and pad
    (:func:`coupling.handshake.fill_region`)."""

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
        for axis, (lo, hi) in enumerate(zip(self.lower_A, self.upper_A)):
            if not lo < hi:
                raise ValueError(f"atoms.lower_A[{axis}] = {lo} is not below atoms.upper_A[{axis}] = {hi} (Å)")

    def handshake(self):
        from coupling.handshake import Handshake

        return Handshake(self.lower_A, self.upper_A, self.handshake_A, self.pad_A, tuple(self.coupled_faces),
                         self.ramp)


@dataclass(frozen=True)
class CoupledSolverConfig(FESolverConfig):
    """:class:`~multiscale.fe_build.FESolverConfig` with the coupled problem's default Newton
    tolerance ``atol`` = 1e-6 eV/Å (the atoms' forces are summed in float64 over many sites;
    tighter tolerances stall at round-off)."""

    atol: float = 1e-6


@dataclass(frozen=True, kw_only=True)
class CoupledCase(BodyCase):
    """kind = "coupled": the tables of :class:`~multiscale.fe_build.BodyCase` (a box mesh) and
    ``[atoms]``, the atomistic region."""

    kind: Literal["coupled"]
    atoms: AtomsRegionConfig
    solver: CoupledSolverConfig = field(default_factory=CoupledSolverConfig)
    #: the continuum's laws this kind takes
    LAWS: ClassVar[tuple[str, ...]] = ("cauchy-born",)

    def __post_init__(self):
        if self.mesh.file is not None:
            raise ValueError("mesh.file: a coupled case needs a box mesh (lengths_A, divisions), whose split gives "
                             "the atoms their bodies")
        if (self.mesh.split_x_A is not None) != (self.interface is not None):
            raise ValueError("interface: a coupled case has an [interface] table exactly when mesh.split_x_A is set")
        self.check_boundaries()
        self.check_control()
        _check_atom_box(self)
        if self.material.law not in self.LAWS:
            raise ValueError(f"material.law = {self.material.law!r}: a {self.kind} case needs one of {self.LAWS} (the "
                             "continuum must be the finite-strain energy of the same crystal as the atoms)")


def _check_atom_box(case: CoupledCase) -> None:
    """The atomistic box and its pad lie in the mesh: on each coupled face, the pad beyond it stays
    inside the body; the box overlaps the body on every axis."""
    lengths, region = case.mesh.lengths_A, case.atoms
    for axis, name in enumerate("xyz"):
        lo, hi, length = region.lower_A[axis], region.upper_A[axis], lengths[axis]
        if hi <= 0 or lo >= length:
            raise ValueError(f"atoms: the box from {lo} to {hi} Å along {name} lies outside the mesh (0 to "
                             f"{length} Å)")
        for face, plane, outward in ((f"{name}min", lo, -1.0), (f"{name}max", hi, 1.0)):
            if face not in region.coupled_faces:
                continue
            reach = plane + outward * region.pad_A
            if not 0 <= reach <= length:
                raise ValueError(f"atoms: the pad beyond the coupled face {face} reaches {name} = {reach:g} Å, outside "
                                 f"the mesh (0 to {length} Å); move the box in, narrow pad_A, or leave {face} out "
                                 "of coupled_faces if it lies on the body's free surface")


def run(case: CoupledCase, ctx: RunContext) -> dict:
    return fe_build.run_on_every_rank(_run, case, ctx)


def build_problem(case: CoupledCase, body: fe_build.Body, comm):
    """The :class:`~coupling.problem.CoupledProblem` of ``case`` on ``body``: the crystal's atoms
    filling the atomistic box and its pad (made on rank 0), the handshake, the solver settings."""
    from coupling.handshake import fill_region
    from coupling.problem import CoupledProblem

    handshake = case.atoms.handshake()
    atoms = None
    if comm.rank == 0:
        m = case.material
        atoms = fill_region(m.symbol, m.lattice, body.a0_A, (m.orientation_x, m.orientation_y), handshake,
                            case.mesh.lengths_A, split_x_A=case.mesh.split_x_A, body_tags=dict(body.domain.bodies))
    problem = CoupledProblem(body.domain, {name: body.material for name in body.domain.bodies}, atoms, body.model,
                             handshake, bcs=body.bcs, interfaces=body.interfaces, degree=case.solver.degree,
                             solver=case.solver.settings(), mask_bodies=case.atoms.mask_bodies,
                             ghost_force_correction=case.atoms.ghost_force_correction)
    regions = problem.regions()
    log.info("%s: %d atoms (%s), %d DOFs", case.name, sum(regions.values()), regions,
             problem.V.dofmap.index_map.size_global * 3)
    return problem


def open_run(case: CoupledCase, ctx: RunContext, comm):
    """A coupled run's start: its checkpoints (opened for ``ctx.resume``), body and problem, or
    ``(checkpoints, None, None)`` when a resumed run had already finished."""
    checkpoints = Checkpoints.open(case, ctx, comm)
    if checkpoints.finished:
        return checkpoints, None, None
    body = fe_build.build_body(case, ctx.case_dir, comm)
    return checkpoints, body, build_problem(case, body, comm)


def _run(case: CoupledCase, ctx: RunContext, comm) -> dict:
    report = Report(case)
    out = ctx.out
    checkpoints, body, problem = open_run(case, ctx, comm)
    if checkpoints.finished:
        return checkpoints.finished_report(out)
    regions = problem.regions()
    trajectory = out / "atoms.extxyz"
    if comm.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        trajectory.unlink(missing_ok=True)

    def write_atoms(step_parameter: float) -> None:
        snapshot = problem.atoms()
        if snapshot is not None:
            snapshot.info["load_factor"] = problem.load_factor  # the applied one, under opening control too
            write_extxyz(trajectory, [snapshot], append=True)

    law = body.model_law

    def results(rows: list[dict]) -> dict:
        return {"ranks": comm.size, "lattice_constant_A": body.a0_A, "atoms": regions,
                "C_GPa": np.round(body.tensor.C, 4).tolist(), "dofs": problem.V.dofmap.index_map.size_global * 3,
                "interface_law": None if law is None else {"W_sep_eV_A2": law.W_sep_eV_A2, "length_A": law.length_A},
                "steps": len(rows), "final_energies_eV": rows[-1] if rows else {},
                "timings_s": dict(problem.timings)}

    stepped = case.solver.stepped(problem, body.interfaces)
    rows = fe_steps.load_steps(stepped, case, out, body.pulled, comm, ctx.progress, checkpoints=checkpoints,
                               report=report, results=results, on_write=write_atoms)
    return fe_steps.finish(out, rows, body.pulled, case, comm, checkpoints, report, results(rows),
                           fe_steps.pull_off(rows, case, body.interfaces, body.tensor))


KIND = Kind("coupled", CoupledCase, run, resumable=True, parallel=True)
