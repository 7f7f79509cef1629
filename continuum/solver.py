"""Solver settings: PETSc SNES Newton with a line search, the linear solver, load stepping."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ContinuumInputError

LINEAR_SOLVERS = ("direct", "cg")
LINE_SEARCHES = ("bt", "basic", "l2", "cp")


@dataclass(frozen=True)
class SolverSettings:
    """How a load step is solved.

    ``linear_solver``: ``"direct"`` (LU with MUMPS) or ``"cg"`` (conjugate gradients with GAMG and
    the rigid-body near-nullspace). ``line_search``: a PETSc SNES line search (``"bt"`` backtracks
    on the residual norm; an energy merit stalls at round-off near convergence). Newton stops when
    the residual (eV/Å) falls below ``atol`` or ``rtol`` times its first value. Load steps that
    diverge are halved up to ``max_cuts`` times in a row."""

    linear_solver: str = "direct"
    line_search: str = "bt"
    rtol: float = 1e-10
    atol: float = 1e-9
    max_iterations: int = 30
    ksp_rtol: float = 1e-12
    max_cuts: int = 8

    def __post_init__(self):
        if self.linear_solver not in LINEAR_SOLVERS:
            raise ContinuumInputError(f"solver.linear_solver = {self.linear_solver!r}: "
                                      f"expected one of {LINEAR_SOLVERS}")
        if self.line_search not in LINE_SEARCHES:
            raise ContinuumInputError(f"solver.line_search = {self.line_search!r}: expected one of {LINE_SEARCHES}")
        for name in ("rtol", "atol", "ksp_rtol"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ContinuumInputError(f"solver.{name} = {value!r}: expected a positive number")
        for name in ("max_iterations", "max_cuts"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ContinuumInputError(f"solver.{name} = {value!r}: expected a positive integer")
