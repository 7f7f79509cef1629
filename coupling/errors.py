"""Errors of the coupling: bad input on the atom side or in the handshake between atoms and mesh.

The continuum's own bad input (mesh, materials, boundary conditions) stays a
:class:`continuum.errors.ContinuumInputError`; a solve that gives up, a
:class:`continuum.errors.ContinuumSolveError`.
"""

from __future__ import annotations


class CouplingInputError(ValueError):
    """Atoms, a model, a handshake or body labels that cannot be coupled (named in the message).

    Raised before any solve; where the check needs the mesh (atoms outside it, labels against its
    bodies), on every MPI rank alike."""
