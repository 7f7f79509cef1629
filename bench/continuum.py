"""Continuum assembly and solve time against DOFs, side by side with plain DOLFINx code.

    python bench/continuum.py [--sizes 10000 100000 1000000] [--json out.json]
    mpiexec -n 2 python bench/continuum.py ...

Both rows solve the same problem with the same solver: a cubic-Cu block (rotated, anisotropic),
clamped at x = 0, pulled 1 % at x = L, linear elasticity, P1 hexahedra, CG + GAMG with the
rigid-body near-nullspace, rtol 1e-8. ``ours`` is :class:`continuum.problem.StaticProblem` (one
Newton step of SNES); ``plain`` is hand-written DOLFINx (forms, ``assemble_matrix``,
``apply_lifting``, a PETSc KSP). Times are the medians of the repeats: ``assemble`` (matrix +
right-hand side), ``solve`` (linear solve) and ``total`` for one solve from scratch with forms
already compiled. The overhead column is ours/plain - 1 of the totals.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from continuum.backend import load_dolfinx  # noqa: E402

dolfinx = load_dolfinx()
import ufl  # noqa: E402
from dolfinx import default_scalar_type, fem  # noqa: E402
from dolfinx.fem import petsc as fem_petsc  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from continuum.boundary import Displacement  # noqa: E402
from continuum.domain import Domain  # noqa: E402
from continuum.elasticity import Constitutive, tensor_from_voigt_stress, voigt_strain  # noqa: E402
from continuum.geometry import box  # noqa: E402
from continuum.materials import ElasticTensor, LinearElastic, orientation_matrix  # noqa: E402
from continuum.problem import StaticProblem, rigid_body_modes  # noqa: E402
from continuum.solver import SolverSettings  # noqa: E402

COMM = MPI.COMM_WORLD
TENSOR = ElasticTensor.cubic(170.0, 120.0, 75.0).rotated(orientation_matrix((1, 2, 3), (-2, 1, 0)))
SETTINGS = SolverSettings(linear_solver="cg", ksp_rtol=1e-8, rtol=1e-6, atol=1e-12, max_iterations=2)


def domain_for(n_dofs: int) -> Domain:
    n = max(2, round((n_dofs / 6) ** (1 / 3)))  # 3 (2n + 1)(n + 1)^2 DOFs
    raw = box((2.0, 1.0, 1.0), (2 * n, n, n)) if COMM.rank == 0 else None
    return Domain.create(raw, COMM)


def ours(domain: Domain) -> dict:
    t0 = time.perf_counter()
    problem = StaticProblem(domain, {"body1": LinearElastic(TENSOR)}, solver=SETTINGS,
                            bcs=(Displacement("xmin", (0.0, 0.0, 0.0)), Displacement("xmax", (0.02, 0.0, 0.0))))
    t_setup = time.perf_counter() - t0
    problem.snes.setMonitor(None)
    t1 = time.perf_counter()
    problem.solve(1)
    total = time.perf_counter() - t1
    ksp = problem.snes.getKSP()
    # split: time one assembly of J and F the way the solve does
    x = problem.u.x.petsc_vec
    t2 = time.perf_counter()
    problem._jacobian(None, x, problem.A, problem.A)
    problem._residual(None, x, problem.b)
    assemble = time.perf_counter() - t2
    return {"setup": t_setup, "assemble": assemble, "total": total, "solve": total - assemble,
            "its": ksp.getIterationNumber(), "dofs": problem.V.dofmap.index_map.size_global * 3,
            "energy": problem.energies()["total"]}


def plain(domain: Domain) -> dict:
    """The same problem written directly against DOLFINx and petsc4py."""
    t0 = time.perf_counter()
    msh = domain.mesh
    V = fem.functionspace(msh, ("Lagrange", 1, (3,)))
    C = Constitutive(msh, LinearElastic(TENSOR)).C
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)

    def sigma(w):
        return tensor_from_voigt_stress(ufl.dot(C, voigt_strain(ufl.sym(ufl.grad(w)))))
    a = fem.form(ufl.inner(sigma(u), ufl.sym(ufl.grad(v))) * ufl.dx)
    L = fem.form(ufl.dot(fem.Constant(msh, default_scalar_type((0.0, 0.0, 0.0))), v) * ufl.dx)
    fdim = msh.topology.dim - 1
    bcs = []
    for name, value in (("xmin", 0.0), ("xmax", 0.02)):
        facets = domain.facet_tags.find(domain.boundaries[name])
        for c, val in enumerate((value, 0.0, 0.0)):
            dofs = fem.locate_dofs_topological(V.sub(c), fdim, facets)
            bcs.append(fem.dirichletbc(default_scalar_type(val), dofs, V.sub(c)))
    A = fem_petsc.create_matrix(a)
    b = fem_petsc.create_vector(V)
    uh = fem.Function(V)
    t_setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    A.zeroEntries()
    fem_petsc.assemble_matrix(A, a, bcs)
    A.assemble()
    with b.localForm() as local:
        local.set(0.0)
    fem_petsc.assemble_vector(b, L)
    fem_petsc.apply_lifting(b, [a], [bcs])
    b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    fem_petsc.set_bc(b, bcs)
    assemble = time.perf_counter() - t1
    A.setNearNullSpace(rigid_body_modes(V))  # the same six modes (a helper, not solver logic)
    ksp = PETSc.KSP().create(msh.comm)
    ksp.setOperators(A)
    ksp.setType("cg")
    ksp.getPC().setType("gamg")
    ksp.setTolerances(rtol=1e-8, max_it=2000)
    ksp.solve(b, uh.x.petsc_vec)
    uh.x.scatter_forward()
    total = time.perf_counter() - t1
    energy = 0.5 * COMM.allreduce(fem.assemble_scalar(fem.form(ufl.inner(sigma(uh), ufl.sym(ufl.grad(uh))) * ufl.dx)),
                                  op=MPI.SUM)
    return {"setup": t_setup, "assemble": assemble, "total": total, "solve": total - assemble,
            "its": ksp.getIterationNumber(), "dofs": V.dofmap.index_map.size_global * 3, "energy": energy}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    if COMM.rank == 0:
        print(f"# continuum: ours vs plain DOLFINx, {COMM.size} rank(s), CG + GAMG, P1 hexahedra")
        print("| code | DOFs | assemble s | solve s | total s | CG its | overhead | energy vs plain |")
        print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        domain = domain_for(size)
        results = {}
        for name, fn in (("plain", plain), ("ours", ours)):
            fn(domain)  # compile forms, warm caches
            runs = [fn(domain) for _ in range(args.repeats)]
            results[name] = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
        rel = results["ours"]["energy"] / results["plain"]["energy"] - 1
        for name in ("plain", "ours"):
            r = results[name]
            overhead = f"{results['ours']['total'] / results['plain']['total'] - 1:+.1%}" if name == "ours" else "-"
            row = {"code": name, "ranks": COMM.size, **r, "energy_rel_diff": rel}
            rows.append(row)
            if COMM.rank == 0:
                print(f"| {name} | {int(r['dofs'])} | {r['assemble']:.3f} | {r['solve']:.3f} | {r['total']:.3f} | "
                      f"{int(r['its'])} | {overhead} | {rel if name == 'ours' else 0.0:+.1e} |", flush=True)
    if args.json and COMM.rank == 0:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
