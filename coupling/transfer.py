"""Atoms <-> finite elements: the interpolation ``N`` (nodal displacements -> atom displacements)
and its transpose (atom forces -> nodal forces), built once per reference configuration.

Atoms are located in the distributed mesh: every rank searches its own cells (a bounding-box tree
and an exact point-in-cell test), an atom on a partition boundary goes to the lowest rank that
found it, and the owning rank writes that atom's row of ``N`` (the basis functions of its cell at
the atom's reference coordinates). The rows of ``N`` all live on one rank, ``atom_rank``, where the
atomistic region runs (on a GPU if there is one), while the columns follow the distributed mesh:
``N.mult(u, x)`` gathers displacements to the atoms and ``N.multTranspose(f, b)`` spreads forces
to the nodes, in one PETSc operation each. Lengths in Å, forces in eV/Å.
"""

from __future__ import annotations

import numpy as np

from continuum.backend import load_dolfinx

from .errors import CouplingInputError

load_dolfinx()
import basix.ufl  # noqa: E402
from dolfinx import geometry  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402


class AtomTransfer:
    """``N`` for the atoms at ``reference_positions`` (n, 3) Å in the vector space ``V``.

    ``reference_positions`` is read on ``atom_rank`` (other ranks may pass ``None``). Raises
    :class:`CouplingInputError`, on every rank, when an atom lies outside the mesh."""

    def __init__(self, V, reference_positions, atom_rank: int = 0, tolerance_A: float = 1e-8):
        msh = V.mesh
        comm = msh.comm
        self.comm, self.atom_rank, self.V = comm, atom_rank, V
        X = comm.bcast(None if comm.rank != atom_rank else np.asarray(reference_positions, dtype=float), root=atom_rank)
        if X.ndim != 2 or X.shape[1] != 3:
            raise CouplingInputError(f"atom positions: expected an (n, 3) array in Å, got shape {X.shape}")
        self.n_atoms = n = len(X)
        tdim = msh.topology.dim
        n_cells = msh.topology.index_map(tdim).size_local
        tree = geometry.bb_tree(msh, tdim, entities=np.arange(n_cells, dtype=np.int32), padding=tolerance_A)
        colliding = geometry.compute_colliding_cells(msh, geometry.compute_collisions_points(tree, X), X)
        found = np.array([len(colliding.links(i)) > 0 for i in range(n)], dtype=bool)
        claim = np.where(found, comm.rank, comm.size)
        owner = np.empty_like(claim)
        comm.Allreduce(claim, owner, op=MPI.MIN)
        missing = np.flatnonzero(owner == comm.size)
        if len(missing):
            i = int(missing[0])
            raise CouplingInputError(f"atom {i} at {np.round(X[i], 4).tolist()} Å lies outside the mesh "
                                      f"({len(missing)} atoms do)")
        mine = np.flatnonzero(owner == comm.rank)
        cells = np.array([colliding.links(i)[0] for i in mine], dtype=np.int32)
        # basis functions of each atom's cell at its reference coordinates
        k = V.ufl_element().basix_element.degree
        scalar = basix.ufl.element("Lagrange", msh.basix_cell(), k).basix_element
        cmap = msh.geometry.cmaps[0]
        dofs = V.dofmap.list
        imap = V.dofmap.index_map
        rows_local = 3 * n if comm.rank == atom_rank else 0
        cols_local = 3 * imap.size_local
        N = PETSc.Mat().createAIJ(((rows_local, 3 * n), (cols_local, 3 * imap.size_global)), comm=comm)
        per_row = dofs.shape[1]
        if comm.rank == atom_rank:
            N.setPreallocationNNZ((per_row, per_row))
        else:
            N.setPreallocationNNZ((0, 0))
        N.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, False)
        geometry_dofs = msh.geometry.dofmaps[0]
        for atom, cell in zip(mine, cells):
            nodes = msh.geometry.x[geometry_dofs[cell]]
            ref = cmap.pull_back(X[atom][None, :], nodes)
            phi = scalar.tabulate(0, ref)[0, 0, :]
            cols = 3 * imap.local_to_global(dofs[cell].astype(np.int32))
            for c in range(3):
                N.setValues([3 * atom + c], (cols + c).astype(np.int32), phi)
        N.assemble()
        self.N = N
        self.owner_rank = owner  # which rank located each atom
        self.cells = cells  # the local cell of each atom this rank located (in the order of owner_rank == rank)

    def to_atoms(self, u) -> np.ndarray | None:
        """Displacements (n, 3) Å of the atoms for the FE function ``u``; on ``atom_rank`` only."""
        x = self.N.createVecLeft()
        self.N.mult(u.x.petsc_vec, x)
        out = x.array.reshape(-1, 3).copy() if self.comm.rank == self.atom_rank else None
        x.destroy()
        return out

    def to_nodes(self, forces) -> PETSc.Vec:
        """Nodal forces ``N^T f`` (eV/Å, a vector of V's layout) for atom forces (n, 3) given on ``atom_rank``."""
        f = self.N.createVecLeft()
        if self.comm.rank == self.atom_rank:
            f.array[:] = np.asarray(forces, dtype=float).reshape(-1)
        b = self.N.createVecRight()
        self.N.multTranspose(f, b)
        f.destroy()
        return b
