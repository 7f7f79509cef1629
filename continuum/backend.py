"""The one place where the finite-element stack is imported.

The ``dolfinx-solver-real`` wheel needs ``import dolfinx_solver`` before ``dolfinx`` or
``petsc4py`` (it loads MPI first). A conda-forge DOLFINx has no such module, so its absence is
fine. Everything else in ``continuum`` gets DOLFINx from here.
"""

from __future__ import annotations

import importlib


class FiniteElementStackMissing(ImportError):
    """DOLFINx is not installed."""


def load_dolfinx():
    """Import and return the ``dolfinx`` module (after ``dolfinx_solver`` when it exists)."""
    try:
        importlib.import_module("dolfinx_solver")
    except ImportError:
        pass  # conda-forge and source builds of DOLFINx have no dolfinx_solver
    try:
        return importlib.import_module("dolfinx")
    except ImportError as exc:
        raise FiniteElementStackMissing(
            "DOLFINx is not installed: `pip install 'multiscale[fem]'` (the dolfinx-solver-real wheel), "
            "or install DOLFINx 0.11 from conda-forge"
        ) from exc
