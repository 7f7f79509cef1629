"""Errors of the continuum: bad input (before any assembly) and solves that give up."""

from __future__ import annotations


class ContinuumInputError(ValueError):
    """A mesh, material, boundary condition or interface that cannot be used; raised on every rank."""


class ContinuumSolveError(RuntimeError):
    """The nonlinear solve gave up: the message says at which load factor and why."""
