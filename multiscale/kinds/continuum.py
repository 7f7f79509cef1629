"""kind = "continuum": load-stepped static equilibrium of a body (or two bonded bodies) whose
material comes from the NN-PES.

Serial or under ``mpiexec -n N multiscale run case.toml``. Outputs: field files (VTX or XDMF),
``load.csv`` (load factor, energies in eV, reaction forces in eV/Å of every displaced boundary),
``load.png`` and ``report.json`` (``load.csv`` and ``report.json`` rewritten after every load step,
``"finished": false`` until the end). A checkpoint after every load step in ``checkpoint/``:
``--resume`` continues an interrupted run to the numbers of an uninterrupted one (same number of
ranks; see :mod:`multiscale.fe_steps`). An unexpected error on one rank aborts all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .. import fe_build, fe_steps
from ..fe_build import BodyCase
from ..fe_checkpoint import Checkpoints
from ..outputs import Report
from . import Kind, RunContext


@dataclass(frozen=True, kw_only=True)
class ContinuumCase(BodyCase):
    """kind = "continuum": the tables of :class:`~multiscale.fe_build.BodyCase`."""

    kind: Literal["continuum"]

    def __post_init__(self):
        self.check_boundaries()
        self.check_control()
        split = self.mesh.split_x_A is not None or bool(self.mesh.interfaces)
        if split and self.interface is None:
            raise ValueError("interface: the mesh has an interface, so the case needs an [interface] table")
        if self.interface is not None and not split:
            raise ValueError("interface: given, but the mesh has no interface (set mesh.split_x_A or mesh.interfaces)")


def run(case: ContinuumCase, ctx: RunContext) -> dict:
    return fe_build.run_on_every_rank(_run, case, ctx)


def _run(case: ContinuumCase, ctx: RunContext, comm) -> dict:
    from continuum.problem import StaticProblem

    report = Report(case)
    checkpoints = Checkpoints.open(case, ctx, comm)
    if checkpoints.finished:
        return checkpoints.finished_report(ctx.out)
    body = fe_build.build_body(case, ctx.case_dir, comm)
    problem = StaticProblem(body.domain, {name: body.material for name in body.domain.bodies}, bcs=body.bcs,
                            interfaces=body.interfaces, degree=case.solver.degree, solver=case.solver.settings())

    def results(rows: list[dict]) -> dict:
        return {"ranks": comm.size, "lattice_constant_A": body.a0_A, "C_GPa": np.round(body.tensor.C, 4).tolist(),
                "law": case.material.law, "dofs": problem.V.dofmap.index_map.size_global * 3, "steps": len(rows),
                "final_energies_eV": rows[-1] if rows else {}}

    stepped = case.solver.stepped(problem, body.interfaces)
    rows = fe_steps.load_steps(stepped, case, ctx.out, body.pulled, comm, ctx.progress, checkpoints=checkpoints,
                               report=report, results=results)
    return fe_steps.finish(ctx.out, rows, body.pulled, case, comm, checkpoints, report, results(rows),
                           fe_steps.pull_off(rows, case, body.interfaces, body.tensor))


KIND = Kind("continuum", ContinuumCase, run, resumable=True, parallel=True)
