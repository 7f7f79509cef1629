"""Where a coupled Newton solve spends its time, and what the coupling itself costs.

    python bench/coupling.py [--sizes 2 12 40] [--json out.json]
    mpiexec -n 2 python bench/coupling.py ...

A bar of Cu (the shipped NN-PES, its Cauchy-Born continuum; 7 x 7 unit cells, coupled through its
ends, handshake one cutoff, mesh one hexahedron per unit cell) pulled 0.3 Å in one load step;
``--sizes`` are the atomistic core lengths in unit cells, so atoms and mesh grow together. The
atoms run on rank 0, the mesh is shared by all ranks. Times are rank 0's, per Newton iteration
(each iteration evaluates the residual once per Krylov iteration, the Jacobian being applied
matrix-free):

- ``atoms``: the NN-PES (neighbour list, energy and forces) of the blended, masked atoms;
- ``continuum``: assembly of the continuum residual and tangent, and the interface laws;
- ``precond``: the preconditioner (continuum tangent embedded, plus T^T P T);
- ``transfer``: ``d = T z`` and ``T^T f`` (PETSc), copying the unknowns in and out;
- ``solver``: the rest of the SNES (Krylov vectors, MUMPS factorisation and solves, line search).

``coupling`` is the coupling's own cost, transfer plus its setup (``T setup``: locating the atoms
in the mesh, the rows of ``T``, the interfaces' sites, the layout of the unknowns) spread over one
load step, as a fraction of atoms + continuum. (The atoms' preconditioner, built once with one
Hessian-vector product of the model, is left out of both.)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mpi4py import MPI  # noqa: E402

from continuum.boundary import Displacement  # noqa: E402
from coupling.problem import CoupledProblem  # noqa: E402
from tests.coupling_cases import CUTOFF_A, bar_atoms, bar_domain, bar_geometry, cu_crystal  # noqa: E402

COMM = MPI.COMM_WORLD


def run(model, material, a0: float, core_cells: int) -> dict:
    bar = bar_geometry(a0, handshake_A=CUTOFF_A, core_cells=core_cells, width_cells=7)
    domain = bar_domain(COMM, bar)
    atoms = bar_atoms(bar) if COMM.rank == 0 else None
    bcs = (Displacement("xmin", (0.0, 0.0, 0.0), ramp=False), Displacement("xmax", (0.3, 0.0, 0.0)))
    COMM.Barrier()
    t0 = time.perf_counter()
    problem = CoupledProblem(domain, {"body1": material}, atoms, model, bar.handshake, bcs=bcs)
    setup = time.perf_counter() - t0
    evaluations = []
    problem.snes.setMonitor(lambda snes, it, norm: evaluations.append(snes.getKSP().getIterationNumber()))
    before = dict(problem.timings)
    COMM.Barrier()
    t0 = time.perf_counter()
    step = problem.solve(1)[-1]
    total = time.perf_counter() - t0
    t = {k: problem.timings[k] - before.get(k, 0.0) for k in problem.timings}
    its = max(step.newton_iterations, 1)
    parts = {"atoms": t["atoms"], "continuum": t["continuum:update"] + t["continuum:residual"],
             "precond": t["preconditioner"], "transfer": t["transfer"]}
    parts["solver"] = total - sum(parts.values())
    coupling = t["transfer"] + problem.timings["setup:coupling"]
    return {"core_cells": core_cells, "atoms": problem.n_atoms, "free": problem.n_free,
            "dofs": int(problem.V.dofmap.index_map.size_global * 3), "ranks": COMM.size,
            "newton": step.newton_iterations, "krylov": int(sum(evaluations)), "setup_s": setup, "total_s": total,
            "per_iteration_s": {k: v / its for k, v in parts.items()},
            "setup_coupling_s": problem.timings["setup:coupling"],
            "setup_preconditioner_s": problem.timings["setup:preconditioner"],
            "coupling_fraction": coupling / (parts["atoms"] + parts["continuum"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 12, 40])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model, setup = None, None
    if COMM.rank == 0:
        from atomistic import load_potential

        model = load_potential(ROOT / "cases" / "models" / "cu_emt.safetensors")
        setup = cu_crystal(model)
    material, a0 = COMM.bcast(setup, root=0)
    rows = [run(model, material, a0, n) for n in args.sizes]
    if COMM.rank:
        return
    head = f"{'atoms':>7} {'DOFs':>7} {'Newton':>6} {'Krylov':>6} | per Newton iteration (s): {'atoms':>7} " \
           f"{'contin.':>7} {'precond':>7} {'transfer':>8} {'solver':>7} | {'T setup':>7} {'coupling':>8}"
    print(f"ranks: {COMM.size}\n{head}\n" + "-" * len(head))
    for r in rows:
        p = r["per_iteration_s"]
        print(f"{r['atoms']:>7} {r['dofs']:>7} {r['newton']:>6} {r['krylov']:>6} | {'':26}{p['atoms']:>7.3f} "
              f"{p['continuum']:>7.3f} {p['precond']:>7.3f} {p['transfer']:>8.4f} {p['solver']:>7.3f} | "
              f"{r['setup_coupling_s']:>7.3f} {100 * r['coupling_fraction']:>7.2f}%")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
