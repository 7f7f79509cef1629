"""Path following on an interface's opening (continuum.continuation): through the peak and the
snap-back of two elastic bars bonded by a cohesive law, against the exact series response."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")

from continuum.continuation import OpeningControl  # noqa: E402
from continuum.errors import ContinuumInputError  # noqa: E402
from continuum.stepping import load_steps  # noqa: E402
from continuum.units import GPa  # noqa: E402
from multiscale.cli import main  # noqa: E402

from .conftest import ROOT  # noqa: E402
from .continuum_cases import CU, CU_UBER, pull_problem  # noqa: E402

COMM = pytest.importorskip("mpi4py.MPI").COMM_WORLD


def test_opening_control_follows_the_snap_back_of_two_bars():
    """Two linear-elastic bars in uniaxial strain (40 Å, C11 = 170 GPa) bonded by UBER (0.16 eV/Å^2,
    0.5 Å): their stiffness per area, C11 / L = 4.3 GPa/Å, is below the law's steepest softening,
    13.8 GPa/Å, so past the peak the pulled end must move back. Every step lies on the exact series
    response U = delta + L sigma(delta) / C11, F = A sigma(delta), through the peak and back."""
    length, width = 40.0, 2.0
    problem = pull_problem(COMM, length=length, width=width, divisions=(20, 1, 1), pull_A=1.0)
    s = problem.solver
    control = OpeningControl(problem, "gamma", 4.0, atol=s.atol, rtol=s.rtol, max_iterations=s.max_iterations)
    rows = []
    for step in load_steps(control, 20, ("xmax",), max_cuts=4):
        assert step.cuts == 0 and step.newton_iterations <= 3
        delta = control.opening_A()
        assert delta == pytest.approx(4.0 * step.load_factor, abs=1e-12)
        assert problem.interfaces["gamma"].opening_A()["mean"] == pytest.approx(delta, rel=1e-10)
        rows.append((delta, control.applied_load_factor, step.reactions_eV_A["xmax"][0]))
    delta, U, F = (np.array(v) for v in zip(*rows))
    sigma = CU_UBER.evaluate(delta, np.zeros_like(delta))[1]
    np.testing.assert_allclose(U, delta + length * sigma / (CU.C[0, 0] * GPa), rtol=1e-9)
    np.testing.assert_allclose(F, width**2 * sigma, rtol=1e-9)
    peak = int(np.argmax(F))
    assert 0 < peak < len(F) - 1 and delta[peak] == pytest.approx(CU_UBER.length_A, abs=0.2)
    assert U.min() < U[peak] - 1.5  # the snap-back: the ends came 1.5 Å closer while the interface opened
    assert np.all(np.diff(U[peak:peak + 8]) < 0)


def test_opening_control_refuses_an_opening_behind_the_current_one():
    problem = pull_problem(COMM, divisions=(4, 1, 1))
    with pytest.raises(ContinuumInputError, match="opening_A = -0.5"):
        OpeningControl(problem, "gamma", -0.5, atol=1e-9, rtol=1e-10, max_iterations=10)
    with pytest.raises(ContinuumInputError, match="'delta'"):
        problem.opening_control("delta")


@pytest.mark.parametrize("swaps, message", [
    ((("opening_A = 3.4 ", "# "),), "solver.opening_A = None"),
    ((('control = "opening"', 'control = "load"'),), "only with control = \"opening\""),
    ((("split_x_A = 28.7176", "# "), ('law = "uber"', 'law = "none"')), "no interface to control"),
    ((("\n[solver]\n", '\n[solver]\ncontrol_interface = "gamma"\n'),), "control_interface = 'gamma'"),
])
def test_bad_path_control_exits_2(tmp_path, capsys, swaps, message):
    text = (ROOT / "cases" / "cu_coupled" / "bonded_bars.toml").read_text()
    text = text.replace('"../models/cu_emt.safetensors"', f'"{ROOT / "cases" / "models" / "cu_emt.safetensors"}"')
    for old, new in swaps:
        assert old in text, old
        text = text.replace(old, new)
    if "no interface" in message:  # no split and no [interface] table
        text = text[: text.index("[interface]")] + text[text.index("[[boundary]]"):]
    path = tmp_path / "case.toml"
    path.write_text(text)
    code = main(["check", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
