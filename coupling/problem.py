"""The coupled problem: one energy for atoms and continuum, minimised by Newton (DESIGN section 5).

    Pi(u, x) = sum_i beta_i E_i^NN,masked(x) + int (1 - beta) W(grad u) dV
             + cohesive energy (the continuum's (1 - beta) part and the atoms' beta part)
             - external work

The unknowns ``z`` are the nodal displacements ``u`` (distributed like the mesh) followed, on the
atom rank, by the displacements of the free atoms. One sparse map ``T`` gives every atom's
displacement: the interpolation ``N`` for atoms in the handshake and the pad, the identity for
free atoms. So ``d = T z`` and the atoms' share of the gradient is ``T^T dE/dd``; every force is
the exact gradient of ``Pi``. Nodes whose every cell lies in the atomistic core carry no energy and
are held at zero displacement.

Newton runs in PETSc SNES: the Jacobian is applied matrix-free (finite differences of the exact
residual), the preconditioner is assembled: the continuum's tangent plus ``T^T P T``, with ``P``
the exponential preconditioner of the atoms and the interface's stiffness. Units: Å, eV, eV/Å.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
import torch
from ase import Atoms

from atomistic.forces import hessian_vector_product, predict
from atomistic.models import model_device
from atomistic.neighbors import build_neighbors
from atomistic.structure import UnknownSpeciesError, from_atoms
from continuum.backend import load_dolfinx
from continuum.errors import ContinuumInputError
from continuum.problem import StaticProblem, snes_with_options
from continuum.solver import SolverSettings

from .handshake import Handshake
from .interface_atoms import AtomisticInterface
from .precondition import exp_preconditioner, spring_matrix

load_dolfinx()
from dolfinx import mesh as dmesh  # noqa: E402
from dolfinx.fem import petsc as fem_petsc  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from .transfer import AtomTransfer  # noqa: E402

log = logging.getLogger(__name__)
REGIONS = ("free", "handshake", "pad")


def _on_root(comm, root: int, check, share: bool = True):
    """Run ``check()`` on ``root``; its :class:`ContinuumInputError` is raised on every rank, and
    its result is broadcast (``share``) or returned on ``root`` only."""
    result, error = None, None
    if comm.rank == root:
        try:
            result = check()
        except ContinuumInputError as exc:
            error = str(exc)
    error = comm.bcast(error, root=root)
    if error is not None:
        raise ContinuumInputError(error)
    return comm.bcast(result, root=root) if share else result


def _to_petsc(comm, matrix: sp.csr_matrix | None, shape: tuple[int, int], rows_here: bool,
              col_sizes: tuple[int, int]) -> PETSc.Mat:
    """A PETSc AIJ matrix whose rows all live on one rank (``rows_here``), from a scipy CSR there."""
    m = PETSc.Mat().createAIJ(((shape[0] if rows_here else 0, shape[0]), col_sizes), comm=comm)
    if rows_here:
        csr = matrix.tocsr()
        csr.sort_indices()
        indptr, indices, data = csr.indptr, csr.indices, csr.data
    else:
        indptr, indices, data = np.zeros(1), np.zeros(0), np.zeros(0)
    # collective: every rank calls it, the others with no rows
    m.setPreallocationCSR((indptr.astype(PETSc.IntType), indices.astype(PETSc.IntType), data.astype(float)))
    m.assemble()
    return m


class CoupledProblem(StaticProblem):
    """Atoms and a continuum coupled through a :class:`~coupling.handshake.Handshake`.

    ``domain``, ``materials``, ``bcs``, ``interfaces``, ``degree`` and ``solver`` are those of
    :class:`~continuum.problem.StaticProblem`. ``atoms``: ASE ``Atoms`` at their reference
    positions (Å, not periodic), with ``atoms.arrays["body"]`` holding each atom's body tag
    (``domain.bodies[name]``) where an interface is declared; ``model``: the NN-PES (float64).
    Both are read on ``atom_rank`` only, where the atoms run (on the model's device).
    ``mask_bodies=False`` lets atoms of different bodies interact (to show double counting).
    ``ghost_force_correction``: subtract the coupled forces of the reference configuration (on the
    nodes, and on the free atoms within a cutoff of the handshake, whose forces the blending
    changes) as a dead load: a linear term of the energy, so that the undeformed body is at rest
    and every force is still the gradient of one energy (the "ghost-force correction" of the
    quasicontinuum method). Off, the blending's ghost forces fall only as the handshake widens."""

    def __init__(self, domain, materials, atoms: Atoms | None, model, handshake: Handshake, *, bcs=(),
                 interfaces=None, degree: int = 1, solver: SolverSettings | None = None, atom_rank: int = 0,
                 mask_bodies: bool = True, ghost_force_correction: bool = True):
        self.comm = comm = domain.comm
        self.atom_rank, self.handshake, self.mask_bodies = atom_rank, handshake, mask_bodies
        self.on_atoms = on_atoms = comm.rank == atom_rank
        self.timings = defaultdict(float)
        interfaces = dict(interfaces or {})
        self.model = model if on_atoms else None
        self.X = self.body = self.region = self.beta = None  # the atoms' data live on the atom rank
        self._regions = _on_root(comm, atom_rank, lambda: self._check_atoms(atoms, model, handshake,
                                                                            domain, interfaces))
        super().__init__(domain, materials, bcs=bcs, interfaces=interfaces, degree=degree,
                         solver=solver or SolverSettings(atol=1e-6), energy_weight=lambda x: 1.0 - handshake.beta(x))
        t0 = time.perf_counter()
        X = self.X if on_atoms else None
        self.transfer = AtomTransfer(self.V, X, atom_rank=atom_rank)
        self._check_bodies()
        self._build_layout()
        self.atomistic_interfaces = self._atomistic_interfaces()
        self._build_T()
        # the coupling's own setup: locating the atoms, building T and the interfaces' sites
        self.timings["setup:coupling"] += time.perf_counter() - t0 - self.timings["setup:preconditioner"]
        self.z = self.P.createVecRight()
        self._d, self._g_atoms = self.T.createVecLeft(), self.T.createVecLeft()
        self._tg = self.P.createVecRight()
        self._atom_energy = {}
        self._zsynced = None
        self._g0 = None
        self._sync_z(self.z)
        if ghost_force_correction:
            g0 = self.gradient()
            if on_atoms:  # free atoms out of reach of the handshake feel what the atoms alone would
                free = self.X[self.region == 0]
                deep = handshake.depth(free) >= handshake.width_A + model.cutoff
                g0.array[self.n_fe:].reshape(-1, 3)[deep] = 0.0
            self._g0 = g0

    # -- checks --------------------------------------------------------------------------------
    def _check_atoms(self, atoms, model, handshake: Handshake, domain, interfaces) -> dict[str, int]:
        """On the atom rank: the atoms, their labels and regions; keeps what the atoms need."""
        if not isinstance(atoms, Atoms) or len(atoms) == 0:
            raise ContinuumInputError("atoms: expected ASE Atoms with at least one atom on the atom rank")
        if atoms.pbc.any():
            raise ContinuumInputError(f"atoms.pbc = {atoms.pbc.tolist()}: coupled atoms must not be periodic; the "
                                      "continuum around them is their boundary")
        if getattr(model, "dtype", None) != torch.float64:
            raise ContinuumInputError("model: a coupled problem needs a float64 model (Newton to tight tolerances)")
        X = atoms.get_positions()
        body = atoms.arrays.get("body")
        if interfaces and body is None:
            raise ContinuumInputError(f"atoms: interfaces {sorted(interfaces)} are declared but the atoms carry no "
                                      "body labels; set atoms.arrays['body'] to the body tag of every atom "
                                      f"({dict(domain.bodies)})")
        if body is not None:
            body = np.asarray(body, dtype=np.int64)
            unknown = sorted(set(np.unique(body).tolist()) - set(domain.bodies.values()))
            if unknown:
                raise ContinuumInputError(f"atoms.arrays['body']: labels {unknown} are not body tags of the mesh "
                                          f"({dict(domain.bodies)})")
        sets = handshake.check(X, model.cutoff)
        if sets["outside"].any():
            i = int(np.flatnonzero(sets["outside"])[0])
            raise ContinuumInputError(f"atom {i} at {np.round(X[i], 3).tolist()} Å lies beyond the handshake's pad "
                                      f"({int(sets['outside'].sum())} atoms do); remove the atoms there or widen "
                                      "handshake.pad_A")
        try:
            self.structures = from_atoms(atoms, model.species, device=model_device(model), dtype=torch.float64,
                                         body=body)
        except UnknownSpeciesError as exc:
            raise ContinuumInputError(f"atoms: {exc}") from None
        self.X, self.body, self.symbols = X, body, atoms.get_chemical_symbols()
        self.region = np.select([sets["free"], sets["handshake"]], [0, 1], 2)
        self.beta = handshake.beta(X)
        self._beta_t = torch.as_tensor(self.beta, device=model_device(model), dtype=torch.float64)
        # only atoms of nonzero weight need their site energies; the pad's are neighbours only
        self._centres = torch.as_tensor(np.flatnonzero(self.beta > 0), device=model_device(model))
        return {name: int(sets[name].sum()) for name in REGIONS}

    def _check_bodies(self) -> None:
        """Every labelled atom lies in a cell of its own body."""
        comm, tr = self.comm, self.transfer
        mine = np.flatnonzero(tr.owner_rank == comm.rank)
        tags = self.domain.cell_tags
        cell_body = np.zeros(len(mine), dtype=np.int64)
        if len(mine):
            index = {int(c): int(v) for c, v in zip(tags.indices, tags.values)}
            cell_body = np.array([index.get(int(c), -1) for c in tr.cells], dtype=np.int64)
        found = comm.gather((mine, cell_body), root=self.atom_rank)

        def check():
            if self.body is None:
                return
            located = np.zeros(len(self.X), dtype=np.int64)
            for atoms_, bodies in found:
                located[atoms_] = bodies
            wrong = np.flatnonzero(located != self.body)
            if len(wrong):
                i = int(wrong[0])
                names = {v: k for k, v in self.domain.bodies.items()}
                raise ContinuumInputError(
                    f"atom {i} at {np.round(self.X[i], 3).tolist()} Å is labelled body {names.get(int(self.body[i]))!r} "
                    f"but lies in body {names.get(int(located[i]))!r} of the mesh ({len(wrong)} atoms do)")

        _on_root(comm, self.atom_rank, check)

    # -- the unknowns and T --------------------------------------------------------------------
    def _build_layout(self) -> None:
        comm = self.comm
        imap = self.V.dofmap.index_map
        self.n_fe = 3 * imap.size_local
        self.n_free = comm.bcast(int((self.region == 0).sum()) if self.on_atoms else None, root=self.atom_rank)
        self.n_atoms = comm.bcast(len(self.X) if self.on_atoms else None, root=self.atom_rank)
        n_local = self.n_fe + (3 * self.n_free if self.on_atoms else 0)
        starts = np.cumsum([0] + comm.allgather(n_local))
        fe_starts = np.cumsum([0] + comm.allgather(self.n_fe))
        self._z_starts, self._fe_starts = starts, fe_starts
        self.n_local, self.n_global = n_local, int(starts[-1])
        self.free_offset = int(starts[comm.rank]) + self.n_fe  # global index of the first free-atom unknown here

    def _fe_to_z(self, g: np.ndarray) -> np.ndarray:
        """Global finite-element dof numbers -> global numbers of the unknowns."""
        rank = np.searchsorted(self._fe_starts, g, side="right") - 1
        return (g - self._fe_starts[rank] + self._z_starts[rank]).astype(PETSc.IntType)

    def _build_T(self) -> None:
        """T (atoms x unknowns), and the preconditioner's constant part T^T P_atoms T."""
        comm = self.comm
        ai, aj, av = self.transfer.N.getValuesCSR()
        T, P_atoms = None, None
        if self.on_atoms:
            rows = 3 * self.n_atoms
            N = sp.csr_matrix((av, self._fe_to_z(aj), ai), shape=(rows, self.n_global))
            free = np.flatnonzero(self.region == 0)
            free_rows = (3 * free[:, None] + np.arange(3)).ravel()
            keep = np.ones(rows)
            keep[free_rows] = 0.0
            identity = sp.csr_matrix((np.ones(len(free_rows)), (free_rows, self.free_offset + np.arange(len(free_rows)))),
                                     shape=(rows, self.n_global))
            T = sp.diags(keep) @ N + identity
            t0 = time.perf_counter()
            P_atoms = self._atom_preconditioner()
            self.timings["setup:preconditioner"] += time.perf_counter() - t0
        sizes = (self.n_local, self.n_global)
        self.T = _to_petsc(comm, T, (3 * self.n_atoms, self.n_global), self.on_atoms, sizes)
        P_atoms = _to_petsc(comm, P_atoms, (3 * self.n_atoms, 3 * self.n_atoms), self.on_atoms,
                            (3 * self.n_atoms if self.on_atoms else 0, 3 * self.n_atoms))
        self._C = P_atoms.ptap(self.T)
        P_atoms.destroy()
        # the preconditioner's pattern: the constant part and the continuum's tangent, embedded
        self.P = self._C.duplicate(copy=True)
        self._jacobian(None, self.u.x.petsc_vec, self.A, self.A)
        K = self._embed(self.A)
        self.P.axpy(1.0, K, structure=PETSc.Mat.Structure.DIFFERENT_NONZERO_PATTERN)
        K.destroy()
        fixed = []
        for bc in self.bcs:
            dofs, owned = bc.dof_indices()
            fixed.append(dofs[:owned])
        local = np.unique(np.concatenate(fixed)) if fixed else np.zeros(0, dtype=np.int32)
        self._fixed_z = (local + self._z_starts[comm.rank]).astype(PETSc.IntType)
        self._fixed_local = local

    def _embed(self, A) -> PETSc.Mat:
        """The finite-element matrix ``A`` in the numbering of the unknowns (zero rows for the atoms)."""
        ai, aj, av = A.getValuesCSR()
        ai = np.concatenate([ai, np.full(self.n_local - self.n_fe, ai[-1])]).astype(PETSc.IntType)
        sizes = (self.n_local, self.n_global)
        return PETSc.Mat().createAIJ((sizes, sizes), csr=(ai, self._fe_to_z(aj), av), comm=self.comm)

    def _atom_preconditioner(self) -> sp.csr_matrix:
        """Exponential preconditioner with mu fitted to the model, plus the interface's stiffness."""
        X, body = self.X, self.body if self.mask_bodies else None
        unit = exp_preconditioner(X, body, np.ones(len(X)), 1.0)
        lo, hi = X.min(axis=0), X.max(axis=0)
        smooth = np.prod(np.sin(np.pi * (X - lo) / np.maximum(hi - lo, 1e-9)), axis=1)
        v = np.repeat(smooth[:, None], 3, axis=1)
        s = self.structures
        nbrs = build_neighbors(s, self.model.cutoff, self.model.angular_cutoff, mask_bodies=self.mask_bodies)
        hv = hessian_vector_product(self.model, s, nbrs, torch.as_tensor(v, device=s.positions.device))
        curvature = float((hv.detach().cpu().numpy() * v).sum())
        mu = curvature / float(v.ravel() @ (unit @ v.ravel()))
        if not mu > 0:
            log.warning("the atoms' curvature along a smooth displacement is %.3g eV/Å^2; preconditioning with mu = 1",
                        curvature)
            mu = 1.0
        self.mu = mu
        P = exp_preconditioner(X, body, self.beta, mu)
        for iface in self.atomistic_interfaces:
            i, j, k = iface.stiffness_pairs()
            P = P + spring_matrix(len(X), i, j, k)
        # free atoms also get a small spring to their reference site, so P is definite even when a body floats
        free = np.repeat(self.region == 0, 3).astype(float)
        return (P + sp.diags(1e-3 * mu * free)).tocsr()

    def _side_body(self, boundary: str) -> int:
        """The body tag of the cells on one side (``name`` or ``name+``) of a split interface."""
        msh, fdim = self.domain.mesh, self.domain.mesh.topology.dim - 1
        facets = self.domain.facet_tags.find(self.domain.boundaries[boundary])
        msh.topology.create_connectivity(fdim, fdim + 1)
        tag = None
        if len(facets):
            cell = int(msh.topology.connectivity(fdim, fdim + 1).links(facets[0])[0])
            tag = int(self.domain.cell_tags.values[np.searchsorted(self.domain.cell_tags.indices, cell)])
        return next(t for t in self.comm.allgather(tag) if t is not None)

    def _atomistic_interfaces(self) -> list[AtomisticInterface]:
        """The interfaces' atomistic parts (empty where an interface does not run through the atoms)."""
        comm, out = self.comm, []
        if not comm.bcast(self.body is not None, root=self.atom_rank):
            return out
        msh = self.domain.mesh
        fdim = msh.topology.dim - 1
        for name, iface in self.interfaces.items():
            facets = self.domain.boundary_facets(name, f"interfaces.{name}")
            facets = facets[facets < msh.topology.index_map(fdim).size_local]
            vertices = msh.geometry.x[dmesh.entities_to_geometry(msh, fdim, facets)]
            parts = comm.gather(vertices, root=self.atom_rank)
            normal = comm.allreduce(iface.normals.sum(axis=0), op=MPI.SUM)
            minus, plus = self._side_body(name), self._side_body(f"{name}+")
            args = (name, self.X, self.body, minus, plus, normal, parts, self.handshake.beta, iface.law_values)
            built = _on_root(comm, self.atom_rank, lambda a=args: AtomisticInterface(*a[:6], np.concatenate(a[6]), *a[7:]),
                             share=False)
            if self.on_atoms:
                out.append(built)
        return out

    # -- evaluation ------------------------------------------------------------------------------
    def _sync_z(self, z) -> None:
        """Make the displacement field, the atoms and their energy those of the unknowns ``z``."""
        key = (z.handle, z.stateGet())
        if key == self._zsynced:
            return
        t0 = time.perf_counter()
        u = self.u.x.petsc_vec
        u.array[:] = z.array_r[: self.n_fe]
        self._set(u)
        self._synced = (u.handle, u.stateGet())
        t1 = time.perf_counter()
        self.T.mult(z, self._d)
        t2 = time.perf_counter()
        if self.on_atoms:
            d = self._d.array_r.reshape(-1, 3)
            s = replace(self.structures, positions=torch.as_tensor(self.X + d, device=self.structures.positions.device,
                                                                   dtype=torch.float64))
            nbrs = build_neighbors(s, self.model.cutoff, self.model.angular_cutoff, mask_bodies=self.mask_bodies)
            p = predict(self.model, s, nbrs, weights=self._beta_t, centres=self._centres)
            grad = -p.forces.detach().cpu().numpy()
            energy = {"atoms": float(p.energy.sum())}
            for iface in self.atomistic_interfaces:
                e, g = iface.energy_gradient(d)
                energy[f"interface_atoms:{iface.name}"] = e
                grad += g
            self._g_atoms.array[:] = grad.ravel()
            self._atom_energy = energy
        t3 = time.perf_counter()
        self.T.multTranspose(self._g_atoms, self._tg)
        self.timings["continuum:update"] += t1 - t0
        self.timings["transfer"] += t2 - t1 + time.perf_counter() - t3
        self.timings["atoms"] += t3 - t2
        self._zsynced = key

    def _raw_gradient(self, z, out, lifting: bool = True) -> None:
        """``out`` = dPi/dz at ``z`` before the Dirichlet rows are set (with the lifting of the
        boundary values into the residual, unless ``lifting`` is False)."""
        self._sync_z(z)
        t0 = time.perf_counter()
        self._gradient(self.u.x.petsc_vec, self.b, lifting)
        self.timings["continuum:residual"] += time.perf_counter() - t0
        out.array[:] = self._tg.array_r
        out.array[: self.n_fe] += self.b.array_r
        if self._g0 is not None:
            out.axpy(-1.0, self._g0)

    def _coupled_residual(self, snes, z, b) -> None:
        self._raw_gradient(z, b)
        self.b.array[:] = b.array_r[: self.n_fe]
        fem_petsc.set_bc(self.b, self.bcs, self.u.x.petsc_vec, -1.0)
        b.array[: self.n_fe] = self.b.array_r

    def _coupled_jacobian(self, snes, z, J, P) -> None:
        self._sync_z(z)
        t0 = time.perf_counter()
        self._jacobian(None, self.u.x.petsc_vec, self.A, self.A)
        K = self._embed(self.A)
        P.zeroEntries()
        P.axpy(1.0, self._C, structure=PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN)
        P.axpy(1.0, K, structure=PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN)
        K.destroy()
        P.zeroRowsColumns(self._fixed_z, diag=1.0)
        if J.handle != P.handle:
            J.assemble()
        self.timings["preconditioner"] += time.perf_counter() - t0

    def gradient(self, corrected: bool = True) -> PETSc.Vec:
        """dPi/dz (eV/Å) at the current unknowns, every row (no boundary conditions applied);
        ``corrected=False`` leaves out the ghost-force correction."""
        g = self.z.duplicate()
        self._raw_gradient(self.z, g, lifting=False)
        if not corrected and self._g0 is not None:
            g.axpy(1.0, self._g0)
        return g

    def energies(self) -> dict[str, float]:
        """Energy parts (eV): the continuum's (``strain:<body>``, ``interface:<name>``: the
        ``1 - beta`` parts), ``atoms`` (sum of beta_i E_i), ``interface_atoms:<name>`` (the atoms'
        part of the cohesive energy), ``ghost_force_correction``, ``external`` and ``total``."""
        self._sync_z(self.z)
        out = super().energies()
        atoms = self.comm.bcast(self._atom_energy, root=self.atom_rank)
        out.update(atoms)
        if self._g0 is not None:
            out["ghost_force_correction"] = -self._g0.dot(self.z)
        out["total"] = sum(v for k, v in out.items() if k not in ("external", "total")) - out["external"]
        return out

    # -- displacements in and out ----------------------------------------------------------------
    def set_displacement(self, field, body: str | None = None) -> None:
        """Set the unknowns from ``field``, a numpy function of reference positions (k, 3) Å giving
        displacements (k, 3) Å, at the nodes and the free atoms (slaved atoms follow the nodes);
        with ``body``, only those of that body (the two sides of an interface differ)."""
        x = self.V.tabulate_dof_coordinates()[: self.n_fe // 3]
        nodes = np.arange(len(x))
        if body is not None:
            cells = self.domain.cell_tags.find(self.domain.body_tag(body, "set_displacement"))
            nodes = np.unique(self.V.dofmap.list[cells].ravel())
            nodes = nodes[nodes < len(x)]
        values = self.z.array.reshape(-1)
        values[: self.n_fe].reshape(-1, 3)[nodes] = np.asarray(field(x[nodes]), dtype=float).reshape(-1, 3)
        if self.on_atoms:
            free = np.flatnonzero(self.region == 0)
            mine = np.ones(len(free), dtype=bool) if body is None else \
                self.body[free] == self.domain.bodies[body]
            atoms = values[self.n_fe:].reshape(-1, 3)
            atoms[mine] = np.asarray(field(self.X[free[mine]]), dtype=float).reshape(-1, 3)
        self.z.array[:] = values
        self._sync_z(self.z)

    def split(self, vector: PETSc.Vec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """A vector of unknowns as (owned node coordinates (k, 3) Å, nodal values (k, 3),
        free-atom values (n_free, 3) on the atom rank, else None)."""
        x = self.V.tabulate_dof_coordinates()[: self.n_fe // 3]
        a = vector.array_r
        return x, a[: self.n_fe].reshape(-1, 3), a[self.n_fe:].reshape(-1, 3) if self.on_atoms else None

    def atoms(self) -> Atoms | None:
        """The atoms at their current positions (Å) on the atom rank (None elsewhere), with arrays
        ``body``, ``beta``, ``region`` (0 free, 1 handshake, 2 pad) and ``forces`` (eV/Å, minus the
        gradient of the coupled energy with respect to each atom's position; a slaved atom's
        force reaches the nodes through ``N^T``)."""
        self._sync_z(self.z)
        if not self.on_atoms:
            return None
        d = self._d.array_r.reshape(-1, 3)
        atoms = Atoms(self.symbols, positions=self.X + d)
        atoms.arrays["beta"] = self.beta.copy()
        atoms.arrays["region"] = self.region.copy()
        forces = -self._g_atoms.array_r.reshape(-1, 3).copy()
        if self._g0 is not None:  # the correction's dead load on the free atoms (on the nodes for the others)
            forces[self.region == 0] += self._g0.array_r[self.n_fe:].reshape(-1, 3)
        atoms.arrays["forces"] = forces
        if self.body is not None:
            atoms.arrays["body"] = self.body.copy()
        return atoms

    def regions(self) -> dict[str, int]:
        """How many atoms are free, in the handshake and in the pad."""
        return dict(self._regions)

    # -- the solver (StaticProblem's load stepping on the coupled unknowns) ----------------------
    def _add_nodal_forces(self, f) -> None:
        self._sync_z(self.z)
        f.array[:] += self._tg.array_r[: self.n_fe]

    def _state(self):
        return self.z.array_r.copy()

    def _restore(self, state) -> None:
        self.z.array[:] = state
        self._sync_z(self.z)

    def _unknowns(self):
        return self.z.copy()

    def _accept(self, x) -> None:
        x.copy(self.z)
        self._sync_z(self.z)

    def _create_snes(self):
        settings = self._snes_settings()
        settings["snes_type"] = "newtonls"
        settings["snes_mf_operator"] = True
        if self.solver.linear_solver == "direct":
            settings.update({"ksp_type": "gmres", "ksp_rtol": 1e-8, "ksp_gmres_restart": 200, "ksp_max_it": 1000})
        else:
            settings.update({"ksp_type": "gmres", "ksp_rtol": 1e-8, "ksp_gmres_restart": 200, "ksp_max_it": 2000})
        snes = snes_with_options(self.comm, settings)
        snes.setFunction(self._coupled_residual, self.z.duplicate())
        snes.setJacobian(self._coupled_jacobian, self.P, self.P)
        return snes

