"""Path following on an interface's opening: pull-off through the peak traction and beyond.

Under displacement control a bonded body loses equilibrium at the interface's peak traction when
the bodies around it store more elastic energy than the softening interface can take up: the
load-displacement path *snaps back* (the applied displacement has to decrease while the interface
keeps opening), and Newton at a prescribed load has no nearby solution. Following the path needs a
control that grows monotonically along it. The opening of the interface does: here each step
prescribes the interface's mean normal opening ``c . x = delta`` (a linear function of the unknowns
``x``, Å) and the load factor ``lambda`` of the ramped loads becomes an unknown (indirect
displacement control; de Borst, Comput. Struct. 25, 211, 1987).

Newton on the bordered system (Batoz and Dhatt, Int. J. Numer. Meth. Eng. 14, 1262, 1979): with
``r`` the residual at ``(x, lambda)`` and ``q = -dr/dlambda`` (the residual's change for a unit
load factor, Dirichlet values and their lifting included), two solves with the Newton operator
``J`` give ``a = -J^-1 r`` and ``b = J^-1 q``; then ``dlambda = (delta - c.(x + a)) / c.b`` and
``x += a + dlambda b``. The constraint holds exactly after every iteration (it is linear); the
first iteration from a converged state is the tangent predictor. The residual is the problem's
own, so a converged state is an equilibrium of the same energy as under load control; the linear
solves of an iterative solver stop at :data:`LINEAR_RTOL` (inexact Newton). A step whose
Newton fails is undone and halved by :func:`continuum.stepping.load_steps`, which walks the
opening here instead of the load factor.

:class:`OpeningControl` wraps any problem with the :class:`PathFollowed` methods (a
:class:`~continuum.problem.StaticProblem` or a :class:`~coupling.problem.CoupledProblem`) as a
:class:`~continuum.stepping.LoadStepped` whose walked parameter ("load factor" 0 to 1) is the
fraction of the final opening. Openings in Å, residuals in eV/Å, load factors dimensionless.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from .backend import load_dolfinx
from .errors import ContinuumInputError

load_dolfinx()
from petsc4py import PETSc  # noqa: E402

log = logging.getLogger(__name__)

#: the relative tolerance of the linear solves of an iterative solver (inexact Newton: the residual is
#: exact, so this sets how fast Newton converges, not where)
LINEAR_RTOL = 1e-4


class PathFollowed(Protocol):
    """What :class:`OpeningControl` needs of a problem (besides :class:`~continuum.stepping.LoadStepped`)."""

    load_factor: float

    def opening_control(self, name: str) -> PETSc.Vec:
        """``c`` with ``c . x`` the mean normal opening (Å) of interface ``name`` for unknowns ``x``."""

    def unknowns(self) -> PETSc.Vec:
        """The current unknowns (Å), the problem's own vector (read only)."""

    def iterate(self) -> PETSc.Vec:
        """A new vector holding the current unknowns, for Newton to iterate on (the problem's caches
        keyed on vectors forgotten: a new vector may reuse a destroyed one's handle)."""

    def apply_load(self, factor: float) -> None:
        """Set the load factor of the ramped loads and boundary values."""

    def newton_residual(self, x: PETSc.Vec, b: PETSc.Vec) -> None:
        """``b`` = the Newton residual (eV/Å) at ``x`` and the applied load: the gradient with the
        lifting of the boundary values, Dirichlet rows ``x - g``."""

    def newton_operators(self, x: PETSc.Vec) -> tuple[PETSc.Mat, PETSc.Mat, PETSc.KSP]:
        """The Newton operator at ``x``, its preconditioning matrix and a linear solver (KSP)."""

    def commit(self, x: PETSc.Vec, factor: float) -> None:
        """Make ``x`` at the load ``factor`` the current, converged state."""


def bordered_newton(problem: PathFollowed, c: PETSc.Vec, opening_A: float, factor: float, *, atol: float,
                    rtol: float, max_iterations: int) -> tuple[bool, int, str, float]:
    """Solve ``r(x, lambda) = 0`` with ``c . x = opening_A`` from the problem's current unknowns and
    the load factor ``factor``: (converged, iterations, why not, load factor). Converged, the
    solution is committed to the problem. Newton stops when the residual (eV/Å) falls below
    ``atol`` or ``rtol`` times its value after the first (predictor) iteration."""
    x = problem.iterate()
    r, q, a, b = x.duplicate(), x.duplicate(), x.duplicate(), x.duplicate()
    lam, reference, why, its, converged = factor, None, "", 0, False
    try:
        for its in range(max_iterations + 1):
            problem.apply_load(lam + 1.0)
            problem.newton_residual(x, q)
            problem.apply_load(lam)
            problem.newton_residual(x, r)
            norm = r.norm()
            if not np.isfinite(norm):
                why = f"a non-finite residual after {its} iterations"
                break
            if its and reference is None:
                reference = norm
            if its and (norm <= atol or norm <= rtol * reference):
                converged = True
                break
            if its == max_iterations:
                why = f"no convergence in {its} iterations (residual {norm:.3g} eV/Å)"
                break
            q.aypx(-1.0, r)  # q = r(lambda) - r(lambda + 1) = -dr/dlambda (the residual is affine in lambda)
            J, P, ksp = problem.newton_operators(x)
            ksp.setOperators(J, P)
            r.scale(-1.0)
            linear = []
            tolerances = ksp.getTolerances()
            ksp.setTolerances(rtol=max(tolerances[0], LINEAR_RTOL))
            try:
                for rhs, sol in ((r, a), (q, b)):
                    if rhs is r and norm <= atol:  # at equilibrium already: the step is the tangent's alone
                        sol.set(0.0)
                        linear.append(0)
                        continue
                    ksp.solve(rhs, sol)
                    if ksp.getConvergedReason() < 0:
                        raise PETSc.Error(ksp.getConvergedReason())
                    linear.append(ksp.getIterationNumber())
            finally:
                ksp.setTolerances(*tolerances)
            cb = c.dot(b)
            if not abs(cb) > 0:
                why = "the opening does not respond to the load (c . db/dlambda = 0)"
                break
            dlam = (opening_A - c.dot(x) - c.dot(a)) / cb
            log.debug("bordered Newton %d: residual %.3e eV/Å, linear iterations %s, load factor %+.3e",
                      its, norm, linear, dlam)
            x.axpy(1.0, a)
            x.axpy(dlam, b)
            lam += dlam
    except PETSc.Error as exc:  # a failed factorisation or linear solve
        why = f"linear solve failed ({exc}) after {its} iterations"
    finally:
        for v in (r, q, a, b):
            v.destroy()
    if converged:
        problem.commit(x, lam)
    x.destroy()
    return converged, its, why, lam


class OpeningControl:
    """A :class:`PathFollowed` problem stepped on the mean normal opening of interface ``name``, from
    its current value to ``opening_A`` (Å): a :class:`~continuum.stepping.LoadStepped` whose
    ``load_factor`` is the fraction of that walk, 0 to 1 (:func:`continuum.stepping.load_steps`
    walks it; failed steps are halved). The problem's own load factor follows from equilibrium
    (:attr:`applied_load_factor`); it may fall while the interface opens (snap-back). Every other
    attribute is the problem's (fields, reactions, energies)."""

    def __init__(self, problem: PathFollowed, name: str, opening_A: float, *, atol: float, rtol: float,
                 max_iterations: int):
        self.problem, self.name = problem, name
        self.c = problem.opening_control(name)
        self.start_A = self.opening_A()
        if not opening_A > self.start_A:
            raise ContinuumInputError(f"solver.opening_A = {opening_A!r}: expected an opening (Å) beyond the "
                                      f"interface's current {self.start_A:.6g} Å")
        self.final_A = float(opening_A)
        self.settings = {"atol": atol, "rtol": rtol, "max_iterations": max_iterations}
        self.load_factor = 0.0

    def __getattr__(self, name):  # fields, energies, reactions, layout: the problem's
        return getattr(self.problem, name)

    def opening_A(self) -> float:
        """The interface's mean normal opening (Å) now."""
        return self.c.dot(self.problem.unknowns())

    @property
    def applied_load_factor(self) -> float:
        """The load factor of the problem's ramped loads at the current state."""
        return self.problem.load_factor

    def columns(self) -> dict[str, float]:
        """What a load-curve row holds of the control: the opening (Å) and the applied load factor."""
        return {"opening_A": self.opening_A(), "load_factor": self.applied_load_factor}

    def state(self) -> tuple[float, np.ndarray]:
        """The walked fraction and the problem's unknowns followed by its load factor."""
        factor, values = self.problem.state()
        return self.load_factor, np.append(values, factor)

    def restore(self, state: tuple[float, np.ndarray]) -> None:
        fraction, values = state
        self.problem.restore((float(values[-1]), values[:-1]))
        self.load_factor = fraction

    def solve_to(self, fraction: float) -> tuple[bool, int, str]:
        """Newton on the bordered system to the opening at ``fraction`` of the walk."""
        target = self.start_A + fraction * (self.final_A - self.start_A)
        ok, its, why, lam = bordered_newton(self.problem, self.c, target, self.problem.load_factor, **self.settings)
        if ok:
            self.load_factor = fraction
            log.debug("opening %.6g Å at load factor %.6g (%d iterations)", target, lam, its)
        return ok, its, why
