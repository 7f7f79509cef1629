"""The coupled problem's unknowns and the map ``T`` from them to the atoms (DESIGN section 5).

The unknowns ``z`` are, rank by rank, the rank's owned finite-element displacement dofs (3 per
node, in the continuum's numbering) followed, on the atom rank only, by the free atoms'
displacements (3 per atom). ``T`` (3 n_atoms x n_global) gives every atom's displacement, ``d =
T z``: the interpolation ``N`` (:class:`~coupling.transfer.AtomTransfer`) for the atoms in the
handshake and the pad, the identity for the free atoms. Its rows all live on the atom rank, its
columns follow ``z``; ``T^T`` takes the atoms' gradient to the unknowns. Lengths in Å.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from continuum.backend import load_dolfinx

load_dolfinx()
from petsc4py import PETSc  # noqa: E402


def to_petsc(comm, matrix: sp.spmatrix | None, shape: tuple[int, int], rows_here: bool,
             col_sizes: tuple[int, int]) -> PETSc.Mat:
    """A PETSc AIJ matrix of ``shape`` whose rows all live on one rank (``rows_here``), from a
    scipy matrix there (None elsewhere); ``col_sizes`` (local, global) as PETSc takes them.
    Collective."""
    m = PETSc.Mat().createAIJ(((shape[0] if rows_here else 0, shape[0]), col_sizes), comm=comm)
    if rows_here:
        csr = matrix.tocsr()
        csr.sort_indices()
        indptr, indices, data = csr.indptr, csr.indices, csr.data
    else:
        indptr, indices, data = np.zeros(1), np.zeros(0), np.zeros(0)
    m.setPreallocationCSR((indptr.astype(PETSc.IntType), indices.astype(PETSc.IntType), data.astype(float)))
    m.assemble()
    return m


@dataclass(frozen=True)
class Unknowns:
    """Where each unknown lives (built collectively by :meth:`build`)."""

    comm: object
    n_fe: int  # this rank's finite-element unknowns (3 per owned node)
    n_free: int  # free atoms (the same on every rank)
    n_atoms: int  # all atoms: free, handshake and pad (the same on every rank)
    n_local: int  # this rank's unknowns: n_fe, and 3 n_free on the atom rank
    n_global: int
    free_offset: int  # global index of the first free-atom unknown on this rank (its n_fe-th)
    z_starts: np.ndarray  # (ranks + 1,) the first global unknown of each rank
    fe_starts: np.ndarray  # (ranks + 1,) the first global finite-element dof of each rank

    @classmethod
    def build(cls, comm, V, n_free: int | None, n_atoms: int | None, atom_rank: int) -> Unknowns:
        """The layout for the vector space ``V``; ``n_free`` and ``n_atoms`` are read on ``atom_rank``."""
        n_fe = 3 * V.dofmap.index_map.size_local
        n_free, n_atoms = comm.bcast((n_free, n_atoms) if comm.rank == atom_rank else None, root=atom_rank)
        n_local = n_fe + (3 * n_free if comm.rank == atom_rank else 0)
        z_starts = np.cumsum([0] + comm.allgather(n_local))
        fe_starts = np.cumsum([0] + comm.allgather(n_fe))
        return cls(comm, n_fe, n_free, n_atoms, n_local, int(z_starts[-1]), int(z_starts[comm.rank]) + n_fe,
                   z_starts, fe_starts)

    @property
    def sizes(self) -> tuple[int, int]:
        """(local, global) sizes of a vector of unknowns, as PETSc takes them."""
        return self.n_local, self.n_global

    def local_to_global(self, local: np.ndarray) -> np.ndarray:
        """This rank's local indices of unknowns -> global ones."""
        return (np.asarray(local) + self.z_starts[self.comm.rank]).astype(PETSc.IntType)

    def fe_to_z(self, g: np.ndarray) -> np.ndarray:
        """Global finite-element dof numbers -> global numbers of the unknowns."""
        rank = np.searchsorted(self.fe_starts, g, side="right") - 1
        return (g - self.fe_starts[rank] + self.z_starts[rank]).astype(PETSc.IntType)

    def embed(self, A) -> PETSc.Mat:
        """The finite-element matrix ``A`` in the numbering of the unknowns (zero rows for the atoms)."""
        ai, aj, av = A.getValuesCSR()
        ai = np.concatenate([ai, np.full(self.n_local - self.n_fe, ai[-1])]).astype(PETSc.IntType)
        return PETSc.Mat().createAIJ((self.sizes, self.sizes), csr=(ai, self.fe_to_z(aj), av), comm=self.comm)

    def atom_map(self, N, free: np.ndarray | None) -> PETSc.Mat:
        """``T``: the rows of ``N`` (a PETSc matrix, atoms x finite-element dofs, its rows on the
        atom rank) for the slaved atoms, the identity onto the free-atom unknowns for the atoms
        ``free`` (indices, read on the atom rank; None elsewhere). Collective."""
        ai, aj, av = N.getValuesCSR()
        rows, T = 3 * self.n_atoms, None
        if free is not None:
            N = sp.csr_matrix((av, self.fe_to_z(aj), ai), shape=(rows, self.n_global))
            free_rows = (3 * np.asarray(free)[:, None] + np.arange(3)).ravel()
            keep = np.ones(rows)
            keep[free_rows] = 0.0
            columns = self.free_offset + np.arange(len(free_rows))
            identity = sp.csr_matrix((np.ones(len(free_rows)), (free_rows, columns)), shape=(rows, self.n_global))
            T = sp.diags(keep) @ N + identity
        return to_petsc(self.comm, T, (rows, self.n_global), free is not None, self.sizes)
