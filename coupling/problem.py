"""The coupled problem: one energy for atoms and continuum, minimised by Newton (DESIGN section 5).

    Pi(u, x) = sum_i beta_i E_i^NN,masked(x) + int (1 - beta) W(grad u) dV
             + cohesive energy (the continuum's (1 - beta) part and the atoms' beta part)
             - external work

:class:`CoupledProblem` holds a :class:`~continuum.problem.StaticProblem` (``continuum``: the
``1 - beta`` weighted continuum, its boundary conditions and interfaces) and an
:class:`~coupling.atomistic_region.AtomisticRegion` (``region``, on the atom rank: the atoms'
``sum_i beta_i E_i`` and their part of the interfaces), and talks to each through its public
contract: the continuum's ``set_state``, ``gradient``, ``tangent``, ``energies``, ``reaction``;
the region's ``evaluate`` and ``preconditioner``.

The unknowns ``z`` are the nodal displacements ``u`` (distributed like the mesh) followed, on the
atom rank, by the displacements of the free atoms. One sparse map ``T`` gives every atom's
displacement: the interpolation ``N`` for atoms in the handshake and the pad, the identity for
free atoms (:mod:`coupling.layout`). So ``d = T z`` and the atoms' share of the gradient is
``T^T dE/dd``; every force is the exact gradient of ``Pi``. Nodes whose every cell lies in the
atomistic core carry no energy and are held at zero displacement.

Newton runs in PETSc SNES: the Jacobian is applied matrix-free (finite differences of the exact
residual), the preconditioner is assembled: the continuum's tangent plus ``T^T P T``, with ``P``
the region's preconditioner (exponential, with the interface's stiffness). Load stepping is
:func:`continuum.stepping.load_steps`. Units: Å, eV, eV/Å.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import numpy as np
from ase import Atoms

from continuum.backend import load_dolfinx
from continuum.collective import on_root
from continuum.errors import ContinuumInputError
from continuum.problem import StaticProblem, newton, snes_with_options
from continuum.solver import SolverSettings
from continuum.stepping import StepResult, load_steps

from .atomistic_region import REGIONS, AtomisticRegion
from .errors import CouplingInputError
from .ghost_forces import check_reference, check_surfaces, ghost_gradient, reference_region
from .handshake import Handshake
from .interface_atoms import AtomisticInterface
from .layout import Unknowns, to_petsc

load_dolfinx()
from dolfinx import mesh as dmesh  # noqa: E402
from dolfinx.fem import petsc as fem_petsc  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from .transfer import AtomTransfer  # noqa: E402

log = logging.getLogger(__name__)

__all__ = ["REGIONS", "CoupledProblem", "StepResult"]


def _on_root(comm, root: int, check, share: bool = True):
    """:func:`continuum.collective.on_root` for the coupling's input errors
    (:class:`CouplingInputError`, :class:`ContinuumInputError`)."""
    return on_root(comm, root, check, (CouplingInputError, ContinuumInputError), share=share)


def _check_pad_in_mesh(domain, handshake: Handshake) -> None:
    """Across every coupled face the pad's slab lies in the mesh: a pad that leaves the mesh has no
    atoms there (the handshake atoms would sit at a free surface of the body, blended with a
    continuum that is not there). Raises :class:`CouplingInputError` naming the face and by how far."""
    x = domain.mesh.geometry.x
    comm = domain.comm
    lo = np.min(comm.allgather(x.min(axis=0) if len(x) else np.full(3, np.inf)), axis=0)
    hi = np.max(comm.allgather(x.max(axis=0) if len(x) else np.full(3, -np.inf)), axis=0)
    for axis, name in enumerate("xyz"):
        for face, plane, outward in ((f"{name}min", handshake.lower_A[axis], -1.0),
                                     (f"{name}max", handshake.upper_A[axis], 1.0)):
            if face not in handshake.coupled_faces:
                continue
            reach = plane + outward * handshake.pad_A
            beyond = max(lo[axis] - reach, reach - hi[axis])
            if beyond > 1e-9:
                raise CouplingInputError(
                    f"handshake: the pad beyond the coupled face {face} reaches {name} = {reach:g} Å, {beyond:.3g} Å "
                    f"outside the mesh ({lo[axis]:g} to {hi[axis]:g} Å along {name}); move the atomistic box in, or "
                    f"leave {face} out of coupled_faces if it lies on the body's free surface")


class CoupledProblem:
    """Atoms and a continuum coupled through a :class:`~coupling.handshake.Handshake`.

    ``domain``, ``materials``, ``bcs``, ``interfaces``, ``degree`` and ``solver`` are those of
    :class:`~continuum.problem.StaticProblem` (held as ``continuum``, its energy weighted by
    ``1 - beta``). ``atoms``: ASE ``Atoms`` at their reference positions (Å, not periodic), with
    ``atoms.arrays["body"]`` holding each atom's body tag (``domain.bodies[name]``) where an
    interface is declared; ``model``: the NN-PES (float64). Both are read on ``atom_rank`` only,
    where the atoms run (on the model's device) as an :class:`AtomisticRegion` (``region``; None
    on the other ranks). ``mask_bodies=False`` lets atoms of different bodies interact (to show
    double counting). ``ghost_force_correction``: subtract the blending's ghost forces at the
    reference as a dead load (a linear term of the energy, so every force is still the gradient of
    one energy), computed on the defect-free crystal ``ghost_force_reference`` (ASE ``Atoms``, the
    perfect lattice over the same region, read on ``atom_rank``; default: ``atoms`` themselves,
    right when they are perfect within two cutoffs of the handshake): on the nodes its coupled
    forces, on the free atoms what the blending changes of their forces plus the perfect crystal's
    own forces near the handshake (a free surface's), so that a defect's own forces survive whole
    (:mod:`coupling.ghost_forces`). Off, the ghost forces fall only as the handshake widens.
    Either way a warning names the largest force when the reference configuration is not at rest
    near the handshake (:func:`coupling.ghost_forces.check_reference`), except within two cutoffs
    of a free surface, where a surface's own forces cannot be told from a defect's. With the
    correction on, another names them there (:func:`coupling.ghost_forces.check_surfaces`): a body
    whose free surfaces cross the handshake must be given at its free-standing rest positions, as
    at the bulk lattice the correction turns the unrelaxed surfaces' forces into a dead load that
    prestrains a thin body's core (a Cu bar 5 unit cells across: +1.2 %, 3 across: +2.5 %;
    docs/verification.md).

    Bad atoms, labels or handshakes raise :class:`~coupling.errors.CouplingInputError`, bad
    continuum input :class:`~continuum.errors.ContinuumInputError`, on every rank alike.

    The public contract: :meth:`irun` / :meth:`solve` (load steps), :meth:`energies`,
    :meth:`gradient`, :meth:`reaction`, :meth:`set_displacement`, :meth:`split`, :meth:`atoms`,
    :meth:`regions`, :meth:`stress_GPa`; ``V``, ``u``, ``domain``, ``interfaces`` (for
    :class:`~continuum.output.FieldWriter`), ``z`` (the unknowns), ``n_fe``, ``n_free``,
    ``n_atoms``, ``snes``, ``timings`` (s, by part) and ``load_factor``; and the
    :class:`~continuum.stepping.LoadStepped` methods :meth:`state`, :meth:`restore`,
    :meth:`solve_to`."""

    def __init__(self, domain, materials, atoms: Atoms | None, model, handshake: Handshake, *, bcs=(),
                 interfaces=None, degree: int = 1, solver: SolverSettings | None = None, atom_rank: int = 0,
                 mask_bodies: bool = True, ghost_force_correction: bool = True,
                 ghost_force_reference: Atoms | None = None):
        self.comm = comm = domain.comm
        self.domain, self.handshake, self.atom_rank = domain, handshake, atom_rank
        self.on_atoms = on_atoms = comm.rank == atom_rank
        self.timings = defaultdict(float)
        interfaces = dict(interfaces or {})
        _check_pad_in_mesh(domain, handshake)
        self.region: AtomisticRegion | None = _on_root(
            comm, atom_rank, lambda: self._build_region(atoms, model, handshake, mask_bodies, domain, interfaces),
            share=False)
        self._counts = comm.bcast(self.region.counts() if on_atoms else None, root=atom_rank)
        self.continuum = StaticProblem(domain, materials, bcs=bcs, interfaces=interfaces, degree=degree,
                                       solver=solver or SolverSettings(atol=1e-6),
                                       energy_weight=lambda x: 1.0 - handshake.beta(x))
        t0 = time.perf_counter()
        self.transfer = AtomTransfer(self.V, self.region.X if on_atoms else None, atom_rank=atom_rank)
        self._check_bodies()
        self._build_layout()
        for iface in self._atomistic_interfaces():
            self.region.add_interface(iface)
        self._build_T()
        # the coupling's own setup: locating the atoms, building T and the interfaces' sites
        self.timings["setup:coupling"] += time.perf_counter() - t0 - self.timings["setup:preconditioner"]
        self.z = self.P.createVecRight()
        self._d, self._g_atoms = self.T.createVecLeft(), self.T.createVecLeft()
        self._tg = self.P.createVecRight()
        self._fe = fem_petsc.create_vector(self.V)  # a finite-element residual, for the Dirichlet rows
        self._atom_energy = {}
        self._zsynced = None
        self._g0 = None
        self._snes = None
        self._sync_z(self.z)
        if ghost_force_correction:
            self._g0 = self._ghost_forces(ghost_force_reference)
        else:
            _on_root(comm, atom_rank, lambda: check_reference(self.region), share=False)

    def _ghost_forces(self, reference: Atoms | None) -> PETSc.Vec:
        """The dead load ``c = dPi/dz`` at the reference with the atoms' share ``T^T g`` replaced
        by :func:`coupling.ghost_forces.ghost_gradient`'s (the continuum's share, zero for a
        stress-free material, stays)."""
        c = self.z.duplicate()
        self._raw_gradient(self.z, c, lifting=False)

        def atoms_share():
            perfect = None if reference is None else reference_region(self.region, reference)
            check_reference(self.region, perfect)
            check_surfaces(perfect or self.region)  # what the correction turns into a dead load
            return ghost_gradient(self.region, perfect, own=self._g_atoms.array_r.reshape(-1, 3))

        g = _on_root(self.comm, self.atom_rank, atoms_share, share=False)
        delta, mapped = self._g_atoms.duplicate(), self.P.createVecRight()
        if self.on_atoms:
            delta.array[:] = g.ravel() - self._g_atoms.array_r
        self.T.multTranspose(delta, mapped)
        c.axpy(1.0, mapped)
        delta.destroy()
        mapped.destroy()
        return c

    # -- the continuum's fields (for callers and continuum.output.FieldWriter) --------------------
    @property
    def V(self):
        """The continuum's displacement space."""
        return self.continuum.V

    @property
    def u(self):
        """The continuum's displacement (Å), kept in step with the unknowns."""
        return self.continuum.u

    @property
    def interfaces(self) -> dict:
        """The continuum's cohesive interfaces (their ``1 - beta`` part), by name."""
        return self.continuum.interfaces

    @property
    def solver(self) -> SolverSettings:
        return self.continuum.solver

    @property
    def load_factor(self) -> float:
        """The load factor of the current (converged) state, 0 to 1."""
        return self.continuum.load_factor

    @property
    def dead_load(self) -> PETSc.Vec | None:
        """The ghost-force correction's dead load ``c`` (eV/Å on the unknowns; its energy is
        ``-c . z``), or None when the correction is off. Read it, do not change it."""
        return self._g0

    def stress_GPa(self):
        """The continuum's Cauchy stress and strain energy density (GPa, per cell); see
        :meth:`continuum.problem.StaticProblem.stress_GPa`."""
        self._sync_z(self.z)
        return self.continuum.stress_GPa()

    # -- checks --------------------------------------------------------------------------------
    @staticmethod
    def _build_region(atoms, model, handshake: Handshake, mask_bodies: bool, domain, interfaces) -> AtomisticRegion:
        """On the atom rank: the region, its body labels checked against the mesh's bodies."""
        region = AtomisticRegion(atoms, model, handshake, mask_bodies=mask_bodies)
        if interfaces and region.body is None:
            raise CouplingInputError(f"atoms: interfaces {sorted(interfaces)} are declared but the atoms carry no "
                                     "body labels; set atoms.arrays['body'] to the body tag of every atom "
                                     f"({dict(domain.bodies)})")
        if region.body is not None:
            unknown = sorted(set(np.unique(region.body).tolist()) - set(domain.bodies.values()))
            if unknown:
                raise CouplingInputError(f"atoms.arrays['body']: labels {unknown} are not body tags of the mesh "
                                         f"({dict(domain.bodies)})")
        return region

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
            region = self.region
            if region.body is None:
                return
            located = np.zeros(region.n_atoms, dtype=np.int64)
            for atoms_, bodies in found:
                located[atoms_] = bodies
            wrong = np.flatnonzero(located != region.body)
            if len(wrong):
                i = int(wrong[0])
                names = {v: k for k, v in self.domain.bodies.items()}
                raise CouplingInputError(
                    f"atom {i} at {np.round(region.X[i], 3).tolist()} Å is labelled body "
                    f"{names.get(int(region.body[i]))!r} but lies in body {names.get(int(located[i]))!r} of the mesh "
                    f"({len(wrong)} atoms do)")

        _on_root(comm, self.atom_rank, check)

    # -- the unknowns and T (coupling.layout) ---------------------------------------------------
    def _build_layout(self) -> None:
        region = self.region
        self.layout = layout = Unknowns.build(self.comm, self.V, len(region.free) if self.on_atoms else None,
                                              region.n_atoms if self.on_atoms else None, self.atom_rank)
        self.n_fe, self.n_free, self.n_atoms = layout.n_fe, layout.n_free, layout.n_atoms
        self.n_local, self.n_global, self.free_offset = layout.n_local, layout.n_global, layout.free_offset

    def _build_T(self) -> None:
        """T (atoms x unknowns), and the preconditioner's constant part T^T P_atoms T."""
        comm, layout = self.comm, self.layout
        self.T = layout.atom_map(self.transfer.N, self.region.free if self.on_atoms else None)
        P_atoms = None
        if self.on_atoms:
            t0 = time.perf_counter()
            P_atoms = self.region.preconditioner()
            self.timings["setup:preconditioner"] += time.perf_counter() - t0
        rows = 3 * self.n_atoms
        P_atoms = to_petsc(comm, P_atoms, (rows, rows), self.on_atoms, (rows if self.on_atoms else 0, rows))
        self._C = P_atoms.ptap(self.T)
        P_atoms.destroy()
        # the preconditioner's pattern: the constant part and the continuum's tangent, embedded
        self.P = self._C.duplicate(copy=True)
        self.continuum.tangent(self.u.x.petsc_vec)
        K = layout.embed(self.continuum.A)
        self.P.axpy(1.0, K, structure=PETSc.Mat.Structure.DIFFERENT_NONZERO_PATTERN)
        K.destroy()
        local = self.continuum.fixed_dofs()
        self._fixed_z = layout.local_to_global(local)
        self._fixed_local = local
        self._idle_local = np.zeros(0, dtype=np.int64)
        self._hold_nodes_without_energy()

    def _hold_nodes_without_energy(self) -> None:
        """Hold the mesh nodes that no energy reaches: not already held, no weight of the continuum
        at the quadrature points of their elements (all in the atomistic core, beta = 1), and no
        slaved atom interpolated from them. Nothing depends on their displacement, so their rows of
        the residual and of the Jacobian are zero; left free they would make the preconditioner
        singular and Newton's linear solves fail. Held, they keep their displacement (zero, or what
        :meth:`set_displacement` gave them) and change no energy or force."""
        diagonal = self.P.getDiagonal()
        values = diagonal.array_r[: self.n_fe]
        held = np.zeros(self.n_fe, dtype=bool)
        held[self._fixed_local[self._fixed_local < self.n_fe]] = True
        nodes = np.unique(np.flatnonzero((values == 0.0) & ~held) // 3)
        diagonal.destroy()
        count = self.comm.allreduce(len(nodes), op=MPI.SUM)
        if not count:
            return
        dofs = (3 * nodes[:, None] + np.arange(3)).ravel().astype(self._fixed_local.dtype)
        self._idle_local = dofs
        self._fixed_local = np.union1d(self._fixed_local, dofs).astype(self._fixed_local.dtype)
        self._fixed_z = self.layout.local_to_global(self._fixed_local)
        log.info("%d mesh nodes receive no energy (their elements' quadrature points all lie in the atomistic "
                 "core and no atom is interpolated from them): held at their displacement", count)

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
        """The interfaces' atomistic parts on the atom rank (empty elsewhere, and where an interface
        does not run through the atoms)."""
        comm, out = self.comm, []
        if not comm.bcast(self.region.body is not None if self.on_atoms else None, root=self.atom_rank):
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

            def build(name=name, parts=parts, normal=normal, minus=minus, plus=plus, law=iface.law_values):
                region = self.region
                return AtomisticInterface(name, region.X, region.body, minus, plus, normal, np.concatenate(parts),
                                          self.handshake.beta, law)

            built = _on_root(comm, self.atom_rank, build, share=False)
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
        self.continuum.set_state(u)
        t1 = time.perf_counter()
        self.T.mult(z, self._d)
        t2 = time.perf_counter()
        if self.on_atoms:
            energy, grad = self.region.evaluate(self._d.array_r.reshape(-1, 3))
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
        self.continuum.gradient(self.u.x.petsc_vec, self._fe, lifting)
        self.timings["continuum:residual"] += time.perf_counter() - t0
        out.array[:] = self._tg.array_r
        out.array[: self.n_fe] += self._fe.array_r
        if self._g0 is not None:
            out.axpy(-1.0, self._g0)

    def _coupled_residual(self, snes, z, b) -> None:
        self._raw_gradient(z, b)
        self._fe.array[:] = b.array_r[: self.n_fe]
        self.continuum.set_dirichlet_rows(self._fe, self.u.x.petsc_vec)
        b.array[: self.n_fe] = self._fe.array_r
        b.array[self._idle_local] = 0.0  # nodes without energy (zero already, up to rounding): held

    def _coupled_jacobian(self, snes, z, J, P) -> None:
        self._sync_z(z)
        t0 = time.perf_counter()
        self.continuum.tangent(self.u.x.petsc_vec)
        K = self.layout.embed(self.continuum.A)
        P.zeroEntries()
        P.axpy(1.0, self._C, structure=PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN)
        P.axpy(1.0, K, structure=PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN)
        K.destroy()
        P.zeroRowsColumns(self._fixed_z, diag=1.0)
        if J.handle != P.handle:
            J.assemble()
        self.timings["preconditioner"] += time.perf_counter() - t0

    def gradient_into(self, z, out) -> None:
        """``out`` = dPi/dz (eV/Å) at the unknowns ``z``, every row (no boundary conditions applied)."""
        self._raw_gradient(z, out, lifting=False)

    def constrained_unknowns(self) -> np.ndarray:
        """Local indices of this rank's unknowns that a constraint holds: Dirichlet values and the
        mesh nodes no energy reaches."""
        return self._fixed_local.copy()

    def constraint_gap(self) -> float:
        """How far (Å) the unknowns are from their Dirichlet values at the applied load, over all ranks."""
        self._sync_z(self.z)
        with self._fe.localForm() as local:
            local.set(0.0)
        self.continuum.set_dirichlet_rows(self._fe, self.u.x.petsc_vec)
        return self.comm.allreduce(float(np.abs(self._fe.array_r).max(initial=0.0)), op=MPI.MAX)

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
        out = self.continuum.energies()
        atoms = self.comm.bcast(self._atom_energy, root=self.atom_rank)
        out.update(atoms)
        if self._g0 is not None:
            out["ghost_force_correction"] = -self._g0.dot(self.z)
        out["total"] = sum(v for k, v in out.items() if k not in ("external", "total")) - out["external"]
        return out

    def free_site_energy(self) -> float:
        """The free atoms' site energies summed (eV, a part of ``atoms`` in :meth:`energies`): the
        potential energy of the core, on every rank."""
        self._sync_z(self.z)
        return self.comm.bcast(self.region.free_site_energy_eV if self.on_atoms else None, root=self.atom_rank)

    def reaction(self, boundary: str) -> np.ndarray:
        """Force (eV/Å, x y z) that holds ``boundary`` where it is: the continuum's internal force and
        the atoms' forces on the nodes (``N^T f``), summed over its nodes."""
        self._sync_z(self.z)
        return self.continuum.reaction(boundary, self._tg.array_r[: self.n_fe])

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
            region = self.region
            free = region.free
            mine = np.ones(len(free), dtype=bool) if body is None else \
                region.body[free] == self.domain.bodies[body]
            atoms = values[self.n_fe:].reshape(-1, 3)
            atoms[mine] = np.asarray(field(region.X[free[mine]]), dtype=float).reshape(-1, 3)
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
        forces = -self._g_atoms.array_r.reshape(-1, 3).copy()
        if self._g0 is not None:  # the correction's dead load on the free atoms (on the nodes for the others)
            forces[self.region.free] += self._g0.array_r[self.n_fe:].reshape(-1, 3)
        return self.region.atoms(self._d.array_r.reshape(-1, 3), forces)

    def interface_opening_A(self, name: str) -> dict[str, dict[str, float] | None]:
        """The normal opening (Å, the jump of the displacement across interface ``name``; positive
        is open) at the current state, on every rank: ``"continuum"``: min, mean and max over its
        quadrature points (:meth:`~continuum.interface.CohesiveInterface.opening_A`; where the
        interface runs through the atomistic core the nodes there are held, so read the atoms);
        ``"atoms"``: min, mean and max over the atoms' sites across it (the mean displacement of an
        atom's partners across the interface minus its own), and their number, or None where the
        interface does not run through the atoms."""
        self._sync_z(self.z)
        self.continuum.energies()  # the continuum's interfaces evaluated at this state
        out = {"continuum": self.continuum.interfaces[name].opening_A(), "atoms": None}
        atoms = None
        if self.on_atoms:
            for iface in self.region.interfaces:
                if iface.name == name and len(iface.sites):
                    dn = iface.opening(self._d.array_r.reshape(-1, 3)) @ iface.normal
                    atoms = {"min": float(dn.min()), "mean": float(dn.mean()), "max": float(dn.max()),
                             "sites": len(dn)}
        out["atoms"] = self.comm.bcast(atoms, root=self.atom_rank)
        return out

    def regions(self) -> dict[str, int]:
        """How many atoms are free, in the handshake and in the pad (on every rank)."""
        return dict(self._counts)

    # -- the solver: Newton on the coupled unknowns, continuum.stepping's load steps --------------
    @property
    def snes(self):
        """The PETSc SNES of a load step (created at first use): Newton with a line search, the
        Jacobian matrix-free, GMRES preconditioned by the assembled ``P``."""
        if self._snes is None:
            settings = self.continuum.snes_settings()
            settings["snes_type"] = "newtonls"
            settings["snes_mf_operator"] = True
            ksp_max_it = 1000 if self.solver.linear_solver == "direct" else 2000
            settings.update({"ksp_type": "gmres", "ksp_rtol": 1e-8, "ksp_gmres_restart": 200, "ksp_max_it": ksp_max_it})
            snes = snes_with_options(self.comm, settings)
            snes.setFunction(self._coupled_residual, self.z.duplicate())
            snes.setJacobian(self._coupled_jacobian, self.P, self.P)
            self._snes = snes
        return self._snes

    def state(self) -> tuple[float, np.ndarray]:
        """The load factor and a copy of the unknowns (to go back to when a load step fails)."""
        return self.load_factor, self.z.array_r.copy()

    def restore(self, state: tuple[float, np.ndarray]) -> None:
        """Go back to a :meth:`state`: its unknowns and its load."""
        factor, values = state
        self.z.array[:] = values
        self._sync_z(self.z)
        self.continuum.load_factor = factor
        self.continuum.apply_load(factor)

    def solve_to(self, factor: float) -> tuple[bool, int, str]:
        """Newton from the current unknowns at the load ``factor``: (converged, iterations, why
        not). Converged, ``z`` is the solution and :attr:`load_factor` is ``factor``."""
        self.continuum.apply_load(factor)
        x = self.z.copy()
        self._zsynced = None  # a new vector may reuse an old one's handle
        ok, its, why = newton(self.snes, x)
        if ok:
            x.copy(self.z)
            self._sync_z(self.z)
            self.continuum.load_factor = factor
            self.continuum.check_strain_range()
        x.destroy()
        return ok, its, why

    def irun(self, steps: int = 1, reactions: tuple[str, ...] = ()):
        """Walk the load factor from its current value to 1 in ``steps`` equal steps; yield each
        converged :class:`~continuum.stepping.StepResult` (with the reactions of the named
        boundaries, eV/Å). See :func:`continuum.stepping.load_steps`."""
        return load_steps(self, steps, reactions, max_cuts=self.solver.max_cuts)

    def solve(self, steps: int = 1, reactions: tuple[str, ...] = ()) -> list[StepResult]:
        """All load steps of :meth:`irun` at once."""
        return list(self.irun(steps, reactions))

    # -- path following (continuum.continuation.PathFollowed) ------------------------------------
    def opening_control(self, name: str) -> PETSc.Vec:
        """``c`` with ``c . z`` the mean normal opening (Å) of interface ``name``: over the atoms'
        sites weighted by their blended areas (through ``T^T``) where the interface runs through the
        atoms (the mesh nodes of the core are held there), else the area mean over the continuum's
        part (collective)."""
        if name not in self.interfaces:
            raise CouplingInputError(f"interface {name!r}: not an interface of this problem (it has "
                                     f"{sorted(self.interfaces)})")
        sites = None
        if self.on_atoms:
            for iface in self.region.interfaces:
                if iface.name == name and len(iface.sites):
                    sites = iface.opening_control(self.region.n_atoms)
        c = self.z.duplicate()
        c.set(0.0)
        if self.comm.bcast(sites is not None, root=self.atom_rank):
            d = self._d.duplicate()
            if self.on_atoms:
                d.array[:] = sites.ravel()
            self.T.multTranspose(d, c)
            d.destroy()
        else:
            c.array[: self.n_fe] = self.continuum.opening_control(name).array_r
        return c

    def unknowns(self) -> PETSc.Vec:
        return self.z

    def iterate(self) -> PETSc.Vec:
        self._zsynced = None  # a new vector may reuse an old one's handle
        return self.z.copy()

    def apply_load(self, factor: float) -> None:
        self.continuum.apply_load(factor)

    def newton_residual(self, x, b) -> None:
        self._coupled_residual(None, x, b)

    def newton_operators(self, x):
        """The Newton operator at ``x``: finite differences of the residual along each vector, as
        the load steps' SNES takes it (``snes_mf_operator``), the assembled ``P`` and the SNES's
        linear solver."""
        self._coupled_jacobian(None, x, self.P, self.P)
        if getattr(self, "_fd_operator", None) is None:
            sizes = self.layout.sizes
            differences = ForwardDifferences(self.newton_residual)
            self._fd_operator = PETSc.Mat().createPython((sizes, sizes), differences, comm=self.comm)
            self._fd_operator.setUp()
        self._fd_operator.getPythonContext().set_base(x)
        return self._fd_operator, self.P, self.snes.getKSP()

    def commit(self, x, factor: float) -> None:
        x.copy(self.z)
        self._sync_z(self.z)
        self.continuum.load_factor = factor
        self.continuum.apply_load(factor)
        self.continuum.check_strain_range()


class ForwardDifferences:
    """The derivative of ``function(x, out)`` (a residual or a gradient of the unknowns) along a
    vector, by a forward difference about a base point (PETSc's "wp" step, as
    ``snes_mf_operator`` takes it): a PETSc Python matrix context, and :meth:`apply` for callers
    that scale around it."""

    def __init__(self, function):
        self.function = function
        self.x = self.f0 = self.work = self.f = None

    def set_base(self, x) -> None:
        """Differences about ``x`` (``function`` at ``x`` computed here)."""
        if self.work is None:
            self.x, self.f0, self.work, self.f = (x.duplicate() for _ in range(4))
        x.copy(self.x)
        self.function(self.x, self.f0)

    def mult(self, mat, v, y) -> None:
        self.apply(v, y)

    def apply(self, v, y) -> None:
        """``y`` = the derivative along ``v`` at the base point."""
        norm = v.norm()
        if norm == 0.0:
            y.set(0.0)
            return
        h = np.sqrt(np.finfo(float).eps) * np.sqrt(1.0 + self.x.norm()) / norm
        self.x.copy(self.work)
        self.work.axpy(h, v)
        self.function(self.work, self.f)
        self.f.copy(y)
        y.axpy(-1.0, self.f0)
        y.scale(1.0 / h)

    def destroy(self) -> None:
        for v in (self.x, self.f0, self.work, self.f):
            if v is not None:
                v.destroy()
