"""Atoms <-> finite elements (issue 5): N reproduces what the element space holds exactly, N^T
conserves force, atoms outside the mesh are refused, and 1 and 2 ranks agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")

from dolfinx import fem  # noqa: E402
from mpi4py import MPI  # noqa: E402

from continuum.domain import Domain  # noqa: E402
from continuum.geometry import box  # noqa: E402
from coupling.errors import CouplingInputError  # noqa: E402
from coupling.transfer import AtomTransfer  # noqa: E402

COMM = MPI.COMM_WORLD


def atoms(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform([0, 0, 0], [4, 3, 2], size=(n, 3))
    X[0], X[1], X[2] = [0, 0, 0], [2, 1.5, 1], [4, 3, 2]  # a corner, a shared vertex, the far corner
    return X


def field(V, f):
    u = fem.Function(V)
    u.interpolate(lambda x: f(x.T).T)
    return u


@pytest.mark.parametrize("cell, degree", [("tetrahedron", 1), ("hexahedron", 1), ("tetrahedron", 2),
                                          ("hexahedron", 2)])
def test_interpolation_is_exact_for_fields_the_space_holds(cell, degree):
    domain = Domain.create(box((4, 3, 2), (4, 3, 2), cell_type=cell) if COMM.rank == 0 else None, COMM)
    V = fem.functionspace(domain.mesh, ("Lagrange", degree, (3,)))
    rng = np.random.default_rng(1)
    A, b = rng.normal(size=(3, 3)), rng.normal(size=3)

    def exact(x):  # affine, plus a quadratic part for P2 (a complete quadratic on tetrahedra)
        out = x @ A.T + b
        return out + (0.3 * x[:, [0]] * x[:, [1]] - 0.2 * x[:, [2]] ** 2 if degree == 2 else 0.0)

    X = atoms()
    transfer = AtomTransfer(V, X if COMM.rank == 0 else None)
    u_atoms = transfer.to_atoms(field(V, exact))
    if COMM.rank == 0:
        assert np.abs(u_atoms - exact(X)).max() < 1e-12
    forces = np.tile([1.0, -2.0, 0.5], (len(X), 1))
    nodal = transfer.to_nodes(forces if COMM.rank == 0 else None)
    total = COMM.allreduce(nodal.array.reshape(-1, 3).sum(axis=0), op=MPI.SUM)
    assert np.allclose(total, forces.sum(axis=0), atol=1e-12)  # N^T conserves force (partition of unity)


def test_transpose_is_the_adjoint_the_coupling_needs():
    """x = N u and b = N^T f satisfy f . (N u) = u . (N^T f): forces on atoms do the same work on nodes."""
    domain = Domain.create(box((4, 3, 2), (4, 3, 2), cell_type="tetrahedron") if COMM.rank == 0 else None, COMM)
    V = fem.functionspace(domain.mesh, ("Lagrange", 2, (3,)))
    rng = np.random.default_rng(2)
    u = fem.Function(V)
    u.x.array[:] = rng.normal(size=u.x.array.size)
    u.x.scatter_forward()
    X = atoms()
    f = rng.normal(size=X.shape)
    transfer = AtomTransfer(V, X if COMM.rank == 0 else None)
    ua = transfer.to_atoms(u)
    left = COMM.bcast(float(np.sum(f * ua)) if COMM.rank == 0 else None, root=0)
    b = transfer.to_nodes(f if COMM.rank == 0 else None)
    right = b.dot(u.x.petsc_vec)
    assert right == pytest.approx(left, rel=1e-12)


def test_atoms_outside_the_mesh_are_refused():
    domain = Domain.create(box((4, 3, 2), (2, 2, 2)) if COMM.rank == 0 else None, COMM)
    V = fem.functionspace(domain.mesh, ("Lagrange", 1, (3,)))
    X = atoms()
    X[7] = [4.5, 1.0, 1.0]
    with pytest.raises(CouplingInputError, match="atom 7 at \\[4.5, 1.0, 1.0\\] Å lies outside the mesh"):
        AtomTransfer(V, X if COMM.rank == 0 else None)


SCRIPT = """
import json, numpy as np
from mpi4py import MPI
from dolfinx import fem
from continuum.domain import Domain
from continuum.geometry import box
from coupling.transfer import AtomTransfer
comm = MPI.COMM_WORLD
domain = Domain.create(box((4, 3, 2), (8, 6, 4), cell_type="tetrahedron") if comm.rank == 0 else None, comm)
V = fem.functionspace(domain.mesh, ("Lagrange", 2, (3,)))
u = fem.Function(V)
u.interpolate(lambda x: np.stack([np.sin(x[0]) * x[1], np.cos(x[1] * x[2]), x[0] * x[2] ** 2]))
X = np.random.default_rng(3).uniform([0, 0, 0], [4, 3, 2], size=(200, 3))
t = AtomTransfer(V, X if comm.rank == 0 else None)
ua = t.to_atoms(u)
b = t.to_nodes(np.ones((200, 3)) if comm.rank == 0 else None)
norm = b.norm()
if comm.rank == 0:
    print(json.dumps({"u": ua.tolist(), "norm": norm}))
"""


def test_one_and_two_ranks_agree(tmp_path):
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip("no mpiexec beside this Python")
    script = tmp_path / "transfer.py"
    script.write_text(SCRIPT)
    results = []
    for ranks in (1, 2):
        out = subprocess.run([str(mpiexec), "-n", str(ranks), sys.executable, str(script)], capture_output=True,
                             text=True, timeout=300, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert np.abs(np.array(results[0]["u"]) - np.array(results[1]["u"])).max() < 1e-13
    assert results[1]["norm"] == pytest.approx(results[0]["norm"], rel=1e-13)
