"""Quasi-static load stepping, shared by every problem that solves to a load factor.

:func:`load_steps` walks the load factor from its current value to 1 in equal steps. A step whose
Newton solve fails is undone (the state saved before it is restored) and halved, up to
``max_cuts`` times; after a converged step the next one doubles again, up to the nominal size.
Each :class:`StepResult` carries the nominal and the next increment, so a walk stopped after it
continues exactly as it would have gone on (``increments`` of :func:`load_steps`: a resumed run).
It drives any :class:`LoadStepped` system: a :class:`~continuum.problem.StaticProblem`, or a
coupled problem that holds one. Energies in eV, reactions in eV/Å.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .errors import ContinuumInputError, ContinuumSolveError

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    """A converged load step: load factor, energies (eV) by part, Newton iterations, cuts before it;
    the walk's ``nominal_increment`` and the ``next_increment`` it tries after this step."""

    load_factor: float
    energies_eV: dict[str, float]
    newton_iterations: int
    cuts: int = 0
    reactions_eV_A: dict[str, np.ndarray] = field(default_factory=dict)
    nominal_increment: float = 0.0
    next_increment: float = 0.0


class LoadStepped(Protocol):
    """What :func:`load_steps` needs of a problem."""

    #: the load factor of the current (converged) state, 0 to 1
    load_factor: float

    def state(self) -> object:
        """A copy of the current state (unknowns and load factor), for :meth:`restore`."""

    def restore(self, state: object) -> None:
        """Go back to a state of :meth:`state`, its load included."""

    def solve_to(self, factor: float) -> tuple[bool, int, str]:
        """Apply the load ``factor`` and solve from the current state: (converged, Newton
        iterations, why not). When converged, the solution is the current state and
        ``load_factor`` is ``factor``; otherwise the state is undefined until :meth:`restore`."""

    def energies(self) -> dict[str, float]:
        """Energy parts (eV) of the current state, ``total`` among them."""

    def reaction(self, boundary: str) -> np.ndarray:
        """Force (eV/Å, x y z) that holds ``boundary`` where it is."""


def load_steps(system: LoadStepped, steps: int = 1, reactions: tuple[str, ...] = (), *,
               max_cuts: int, increments: tuple[float, float] | None = None) -> Iterator[StepResult]:
    """Walk ``system``'s load factor from its current value to 1 in ``steps`` equal steps; yield each
    converged :class:`StepResult` (with the reactions of the named boundaries, eV/Å). A failed step
    is restored and halved; :class:`~continuum.errors.ContinuumSolveError` after ``max_cuts``
    halvings of one step. ``increments``: (nominal, next) of the last :class:`StepResult` of a walk
    stopped there, to continue it with the very load factors it would have taken (``steps`` is
    then not used)."""
    if not (isinstance(steps, int) and steps >= 1):
        raise ContinuumInputError(f"steps = {steps!r}: expected a positive integer")
    nominal = (1.0 - system.load_factor) / steps
    increment, cuts = nominal, 0
    if increments is not None:
        nominal, increment = (float(v) for v in increments)
        if not 0 < increment <= nominal * (1 + 1e-12):
            raise ContinuumInputError(f"increments = {increments!r}: expected 0 < next <= nominal")
    while system.load_factor < 1.0 - 1e-12:
        start = system.load_factor
        target = min(1.0, start + increment)
        saved = system.state()
        ok, its, why = system.solve_to(target)
        if not ok:
            system.restore(saved)
            cuts += 1
            if increment <= nominal / 2**max_cuts * (1 + 1e-9):
                raise ContinuumSolveError(
                    f"load step from {start:.6g} to {target:.6g} failed after halving it {cuts - 1} "
                    f"times: {why}. The last converged load factor is {start:.6g}; try more load steps, "
                    "a smaller load, or check for an unstable (snap-back) response")
            log.info("load step to %.6g failed (%s); halving it", target, why)
            increment /= 2
            continue
        result = StepResult(target, system.energies(), its, cuts, {name: system.reaction(name) for name in reactions},
                            nominal, min(nominal, 2 * increment))
        cuts, increment = 0, result.next_increment
        yield result
