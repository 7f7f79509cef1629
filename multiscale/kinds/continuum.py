"""kind = "continuum": load-stepped static equilibrium of a body (or two bonded bodies) whose
material comes from the NN-PES.

Serial or under ``mpiexec -n N multiscale run case.toml``. Outputs: field files (VTX or XDMF),
``load.csv`` (load factor, energies in eV, reaction forces in eV/Å of every displaced boundary),
``load.png`` and ``report.json``. An unexpected error on one rank aborts all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .. import fe_build
from ..fe_build import BodyCase
from ..outputs import Report
from . import Kind, RunContext


@dataclass(frozen=True, kw_only=True)
class ContinuumCase(BodyCase):
    """kind = "continuum": the tables of :class:`~multiscale.fe_build.BodyCase`."""

    kind: Literal["continuum"]

    def __post_init__(self):
        self.check_boundaries()
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
    body = fe_build.build_body(case, ctx.case_dir, comm)
    problem = StaticProblem(body.domain, {name: body.material for name in body.domain.bodies}, bcs=body.bcs,
                            interfaces=body.interfaces, degree=case.solver.degree, solver=case.solver.settings())
    rows = fe_build.load_steps(problem, case, ctx.out, body.pulled, comm, ctx.progress)
    results = {"ranks": comm.size, "lattice_constant_A": body.a0_A, "C_GPa": np.round(body.tensor.C, 4).tolist(),
               "law": case.material.law, "dofs": problem.V.dofmap.index_map.size_global * 3, "steps": len(rows),
               "final_energies_eV": rows[-1] if rows else {}}
    if comm.rank == 0:
        fe_build.write_load_outputs(ctx.out, rows, body.pulled, case)
    return report.write(ctx.out, results, on_this_rank=comm.rank == 0)


KIND = Kind("continuum", ContinuumCase, run, parallel=True)
