"""``docs/python-api.md`` runs exactly as printed: its Python blocks, in order, as one script from the
repository's root (its outputs go to runs/, which git ignores)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .conftest import ROOT

DOC = ROOT / "docs" / "python-api.md"


def script() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert blocks, "docs/python-api.md has no Python blocks"
    return "\n".join(blocks)


def test_the_worked_coupling_runs_as_printed(tmp_path):
    pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")
    (tmp_path / "walkthrough.py").write_text(script())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(tmp_path / "walkthrough.py")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "walkthrough: done" in done.stdout


def test_nodes_no_energy_reaches_are_held():
    """The walkthrough's body with the atomistic box 0.9 Å wider on each side: the elements that
    hold the core's edge have a vertex in the handshake (4.5 Å deep) but no quadrature point there
    and no slaved atom, so some nodes carry no energy. They are
    held (their rows were zero, the preconditioner singular, and every linear solve failed); the
    pull then converges like the 5 Å one of the walkthrough."""
    pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")
    from continuum.backend import load_dolfinx

    load_dolfinx()
    import numpy as np
    from mpi4py import MPI

    from atomistic import load_potential
    from continuum.boundary import Displacement
    from continuum.domain import Domain
    from continuum.geometry import box
    from coupling import CoupledProblem, Handshake, crystal_material, fill_region

    model = load_potential(ROOT / "cases" / "models" / "cu_emt.safetensors")
    cu = crystal_material(model, symbol="Cu", a_guess_A=3.6, law="cauchy-born")
    a0 = cu.lattice_constant_A
    lengths = (12 * a0, 4 * a0, 4 * a0)
    domain = Domain.create(box(lengths, (12, 4, 4)), MPI.COMM_WORLD)
    handshake = Handshake((3 * a0 - 0.9, -1.0, -1.0), (9 * a0 + 0.9, lengths[1] + 1, lengths[2] + 1), 5.0, 5.2,
                          coupled_faces=("xmin", "xmax"), ramp="linear")
    atoms = fill_region("Cu", "fcc", a0, ((1, 0, 0), (0, 1, 0)), handshake, lengths)
    problem = CoupledProblem(domain, {"body1": cu.material}, atoms, model, handshake,
                             bcs=(Displacement("xmin", (0.0, 0.0, 0.0), ramp=False),
                                  Displacement("xmax", (0.1, 0.0, 0.0))))
    assert len(problem._idle_local) > 0  # the case this test is about
    steps = problem.solve(2, reactions=("xmax",))
    # converged, and stiff: the pull's reaction grows with the pull (on top of what the core's free
    # surfaces, relaxing, put on the ends)
    assert steps[-1].load_factor == 1.0
    assert steps[-1].reactions_eV_A["xmax"][0] > steps[0].reactions_eV_A["xmax"][0]
    snapshot = problem.atoms()
    assert np.abs(snapshot.arrays["forces"][snapshot.arrays["region"] == 0]).max() < 1e-5
