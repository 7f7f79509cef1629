"""Load stepping on its own (continuum.stepping): equal steps, halving a failed step from the saved
state, growing back, and giving up after ``max_cuts`` halvings. A stand-in problem, no mesh."""

from __future__ import annotations

import numpy as np
import pytest

from continuum.errors import ContinuumInputError, ContinuumSolveError
from continuum.stepping import StepResult, load_steps


class Spring:
    """u = load factor at equilibrium; Newton "diverges" on a step longer than ``reach``."""

    def __init__(self, reach: float = 1.0):
        self.reach, self.load_factor, self.u, self.restored = reach, 0.0, 0.0, 0

    def state(self):
        return self.load_factor, self.u

    def restore(self, state):
        self.load_factor, self.u = state
        self.restored += 1

    def solve_to(self, factor):
        if factor - self.load_factor > self.reach + 1e-12:
            self.u = np.nan  # a failed solve leaves garbage behind
            return False, 7, "diverged"
        self.u, self.load_factor = factor, factor
        return True, 2, ""

    def energies(self):
        return {"total": 0.5 * self.u**2}

    def reaction(self, boundary):
        return np.array([self.u, 0.0, 0.0])


def test_equal_steps_report_energies_and_reactions():
    steps = list(load_steps(Spring(), 4, ("end",), max_cuts=3))
    assert [s.load_factor for s in steps] == [0.25, 0.5, 0.75, 1.0]
    assert all(isinstance(s, StepResult) and s.cuts == 0 and s.newton_iterations == 2 for s in steps)
    assert steps[-1].energies_eV["total"] == 0.5 and steps[1].reactions_eV_A["end"][0] == 0.5


def test_a_failed_step_is_restored_halved_and_grows_back():
    spring = Spring(reach=0.3)
    steps = list(load_steps(spring, 2, max_cuts=3))
    # a step of 0.5 fails and is halved; the next tries 0.5 again; the last is cut short by 1.0
    assert [s.load_factor for s in steps] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert [s.cuts for s in steps] == [1, 1, 1, 0] and spring.restored == 3
    assert spring.u == 1.0


def test_too_many_cuts_give_up_with_the_last_converged_load():
    spring = Spring(reach=0.1)
    with pytest.raises(ContinuumSolveError, match="failed after halving it 1 times: diverged.*last converged load "
                                                  "factor is 0"):
        list(load_steps(spring, 1, max_cuts=1))
    assert spring.load_factor == 0.0 and spring.u == 0.0  # restored


@pytest.mark.parametrize("steps", [0, 1.5, "2"])
def test_steps_must_be_a_positive_integer(steps):
    with pytest.raises(ContinuumInputError, match="steps"):
        list(load_steps(Spring(), steps, max_cuts=1))


@pytest.mark.parametrize("stop", [1, 2, 4])
def test_a_walk_stopped_and_continued_takes_the_same_load_factors(stop):
    """A resumed run: a fresh walk from the state and the increments of the step it stopped after
    takes the very load factors (bit for bit) of the uninterrupted walk, cuts included."""
    walk = list(load_steps(Spring(reach=0.1), 7, max_cuts=4))
    whole = [s.load_factor for s in walk]
    assert any(s.cuts for s in walk)
    spring = Spring(reach=0.1)
    first = []
    for step in load_steps(spring, 7, max_cuts=4):
        first.append(step)
        if len(first) == stop:
            break
    again = Spring(reach=0.1)
    again.restore(spring.state())
    rest = load_steps(again, 7, max_cuts=4, increments=(first[-1].nominal_increment, first[-1].next_increment))
    assert [s.load_factor for s in first] + [s.load_factor for s in rest] == whole
