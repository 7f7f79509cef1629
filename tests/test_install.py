"""The install chain: package layout, atomistic without DOLFINx/MPI, and the FE stack itself."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import ROOT

BLOCKER = textwrap.dedent("""
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in {'dolfinx', 'dolfinx_solver', 'mpi4py', 'petsc4py', 'basix', 'ufl'}:
                raise ImportError('blocked for this test: ' + name)
    sys.meta_path.insert(0, Block())
""")


def test_atomistic_imports_without_dolfinx_or_mpi():
    code = BLOCKER + textwrap.dedent("""
        import atomistic, atomistic.training.committee, atomistic.analysis.properties, atomistic.testing
        from atomistic import load_potential, NNPCalculator
        import multiscale.cli, multiscale.api
        bad = [m for m in sys.modules if m.split('.')[0] in {'dolfinx', 'mpi4py', 'petsc4py'}]
        assert not bad, bad
        print('ok')
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_layout_and_python_requirement():
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["requires-python"] == ">=3.12"
    assert set(meta["optional-dependencies"]) >= {"fem", "test"}
    assert any("dolfinx-solver-real" in d for d in meta["optional-dependencies"]["fem"])
    for pkg in ("multiscale", "atomistic", "continuum", "coupling"):
        assert (ROOT / pkg / "__init__.py").is_file()
    assert (ROOT / "cases").is_dir() and (ROOT / "tests").is_dir()


def test_dolfinx_solver_imported_in_exactly_one_place():
    hits = [p for pkg in ("multiscale", "atomistic", "continuum", "coupling")
            for p in (ROOT / pkg).rglob("*.py") if "dolfinx_solver" in p.read_text() and p.name != "__init__.py"]
    assert [p.relative_to(ROOT).as_posix() for p in hits] == ["continuum/backend.py"]


def test_finite_element_stack_solves_poisson_in_serial_and_mpi():
    import importlib.util

    if importlib.util.find_spec("dolfinx") is None:
        pytest.skip("DOLFINx not installed (the fem extra)")
    script = textwrap.dedent("""
        from continuum.backend import load_dolfinx
        dolfinx = load_dolfinx()
        import numpy as np, ufl
        from mpi4py import MPI
        from dolfinx import fem, mesh
        from dolfinx.fem.petsc import LinearProblem
        msh = mesh.create_unit_square(MPI.COMM_WORLD, 16, 16)
        V = fem.functionspace(msh, ("Lagrange", 1))
        u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
        facets = mesh.locate_entities_boundary(msh, 1, lambda x: np.full(x.shape[1], True))
        bc = fem.dirichletbc(0.0, fem.locate_dofs_topological(V, 1, facets), V)
        problem = LinearProblem(ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx, 1.0 * v * ufl.dx, bcs=[bc],
                                petsc_options={"ksp_type": "preonly", "pc_type": "lu"},
                                petsc_options_prefix="poisson_")
        uh = problem.solve()
        norm = msh.comm.allreduce(fem.assemble_scalar(fem.form(uh * uh * ufl.dx)), op=MPI.SUM)
        if msh.comm.rank == 0:
            print(f"{norm:.12e}")
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    serial = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert serial.returncode == 0, serial.stderr
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip("no mpiexec beside this Python")
    parallel = subprocess.run([str(mpiexec), "-n", "2", sys.executable, "-c", script], capture_output=True,
                              text=True, env=env, timeout=300)
    assert parallel.returncode == 0, parallel.stderr
    assert float(parallel.stdout.split()[0]) == pytest.approx(float(serial.stdout.split()[0]), rel=1e-10)
