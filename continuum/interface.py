"""The cohesive interface: energy ``int_Gamma phi(jump u) dA`` across a split internal surface.

The jump ``delta = u(plus side) - u(minus side)`` lives on a submesh of the interface's minus-side
facets: ``delta = P u`` with a sparse matrix ``P`` (+1 and -1 per component) built once by matching
coordinates, so it works when the two sides of a facet sit on different ranks. At quadrature points
of the submesh the law gives ``phi``, the traction ``dphi/d delta`` and its tangent (numpy, any
law); DOLFINx assembles them into the energy, a vector ``r`` and a matrix ``H`` on the jump space,
and the problem adds ``P^T r`` and ``P^T H P``. ``n`` is the normal of the minus side's facet,
pointing into the plus body; ``delta . n > 0`` opens the interface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .backend import load_dolfinx
from .cohesive import CohesiveLaw
from .errors import ContinuumInputError
from .units import GPa

dolfinx = load_dolfinx()
import basix  # noqa: E402
import basix.ufl  # noqa: E402
import ufl  # noqa: E402
from dolfinx import fem  # noqa: E402
from dolfinx import mesh as dmesh  # noqa: E402
from dolfinx.fem import petsc as fem_petsc  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402


@dataclass(frozen=True)
class InterfaceLaw:
    """What an interface carries: a cohesive law (or none), and contact without adhesion.

    ``contact_penalty`` scales the penalty stiffness ``penalty * C_max / h`` (eV/Å^4) that resists
    a negative normal opening; 0 turns contact off. ``quadrature_degree`` of the facet integrals."""

    law: CohesiveLaw | None
    contact_penalty: float = 0.0
    quadrature_degree: int = 4

    def __post_init__(self):
        if self.law is None and self.contact_penalty <= 0:
            raise ContinuumInputError("interface: neither a cohesive law nor contact; give one of them")
        if not (np.isfinite(self.contact_penalty) and self.contact_penalty >= 0):
            raise ContinuumInputError(f"interface.contact_penalty = {self.contact_penalty!r}: expected >= 0")


def _allgather_rows(comm, array: np.ndarray) -> np.ndarray:
    parts = comm.allgather(array)
    return np.concatenate(parts, axis=0) if parts else array


def _owned_dofs_on(V, facets: np.ndarray):
    """Owned block dofs of V on ``facets``: (coordinates (k, 3), global block indices (k,))."""
    dofs = fem.locate_dofs_topological(V, V.mesh.topology.dim - 1, facets)
    dofs = dofs[dofs < V.dofmap.index_map.size_local]
    x = V.tabulate_dof_coordinates()[dofs]
    return x, V.dofmap.index_map.local_to_global(dofs.astype(np.int32))


class CohesiveInterface:
    """The energy of one interface of a :class:`~continuum.domain.Domain` in the space ``V``."""

    def __init__(self, domain, V, name: str, spec: InterfaceLaw, constrained: set[int], stiffness_eV_A3: float,
                 weight=None):
        domain.interface(name)
        self.name, self.spec = name, spec
        comm = domain.comm
        msh = domain.mesh
        tdim = msh.topology.dim
        minus = domain.boundary_facets(name, f"interfaces.{name}")
        plus = domain.boundary_facets(f"{name}+", f"interfaces.{name}")
        self.submesh, entity_map, _, _ = dmesh.create_submesh(msh, tdim - 1, minus)
        degree = V.ufl_element().basix_element.degree
        self.W = fem.functionspace(self.submesh, ("Lagrange", degree, (3,)))
        self.delta = fem.Function(self.W, name="opening")
        # the facet normal of each submesh cell, oriented from the minus body into the plus body
        n_cells = self.submesh.topology.index_map(tdim - 1).size_local
        parent = entity_map.sub_topology_to_topology(np.arange(n_cells, dtype=np.int32), False)
        self.normals = self._normals(msh, parent)
        self.area_A2 = comm.allreduce(fem.assemble_scalar(fem.form(1.0 * ufl.dx(domain=self.submesh))), op=MPI.SUM)
        # P: the jump of u at every owned dof of W
        self.P, self.P_free = self._jump_matrices(V, minus, plus, constrained)
        # quadrature-point fields and the forms on the submesh
        q = spec.quadrature_degree
        cell = self.submesh.basix_cell()
        self.points, _ = basix.make_quadrature(cell, q)
        self.cells = np.arange(n_cells, dtype=np.int32)
        self.phi_q = fem.Function(fem.functionspace(self.submesh, basix.ufl.quadrature_element(cell, (), degree=q)))
        self.t_q = fem.Function(fem.functionspace(self.submesh, basix.ufl.quadrature_element(cell, (3,), degree=q)))
        self.K_q = fem.Function(fem.functionspace(self.submesh, basix.ufl.quadrature_element(cell, (3, 3), degree=q)))
        dxq = ufl.Measure("dx", domain=self.submesh, metadata={"quadrature_degree": q, "quadrature_rule": "default"})
        w, dd = ufl.TestFunction(self.W), ufl.TrialFunction(self.W)
        self.energy_form = fem.form(self.phi_q * dxq)
        self.r_form = fem.form(ufl.dot(self.t_q, w) * dxq)
        self.H_form = fem.form(ufl.dot(ufl.dot(self.K_q, dd), w) * dxq)
        self._delta_at_points = fem.Expression(self.delta, self.points)
        self.r = fem_petsc.create_vector(self.W)
        self.H = fem_petsc.create_matrix(self.H_form)
        self.penalty = spec.contact_penalty * stiffness_eV_A3 / domain.min_cell_size()
        self._PtHP = None
        self.traction = fem.Function(self.W, name="traction_GPa")
        # a weight at the quadrature points (1 - beta of a handshake): phi and its derivatives scale with it
        self.weight = np.ones((n_cells, len(self.points)))
        if weight is not None:  # the expression is compiled on every rank (collective), evaluated where there are cells
            where = fem.Expression(ufl.SpatialCoordinate(self.submesh), self.points)
            if n_cells:
                x = where.eval(self.submesh, self.cells).reshape(-1, 3)
                self.weight = np.asarray(weight(x), dtype=float).reshape(n_cells, len(self.points))

    @staticmethod
    def _normals(msh, facets: np.ndarray) -> np.ndarray:
        """Unit normals of minus-side facets, pointing away from their one (minus-body) cell."""
        tdim = msh.topology.dim
        nodes = dmesh.entities_to_geometry(msh, tdim - 1, facets)
        x = msh.geometry.x[nodes]  # (f, v, 3)
        n = np.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0])
        n /= np.linalg.norm(n, axis=1)[:, None]
        msh.topology.create_connectivity(tdim - 1, tdim)
        f2c = msh.topology.connectivity(tdim - 1, tdim)
        cells = np.array([f2c.links(f)[0] for f in facets], dtype=np.int32)
        mid = dmesh.compute_midpoints(msh, tdim, cells)
        outward = np.einsum("fi,fi->f", n, x.mean(axis=1) - mid) > 0
        return np.where(outward[:, None], n, -n)

    def _jump_matrices(self, V, minus: np.ndarray, plus: np.ndarray, constrained: set[int]):
        comm = V.mesh.comm
        tree = {}
        for side, facets in (("minus", minus), ("plus", plus)):
            x, g = _owned_dofs_on(V, facets)
            x, g = _allgather_rows(comm, x), _allgather_rows(comm, g)
            tree[side] = (cKDTree(x), g)
        imap = self.W.dofmap.index_map
        n_own = imap.size_local
        xs = self.W.tabulate_dof_coordinates()[:n_own]
        rows = imap.local_to_global(np.arange(n_own, dtype=np.int32))
        scale = np.ptp(V.mesh.geometry.x, axis=0).max()
        match = {}
        for side in ("minus", "plus"):
            dist, idx = tree[side][0].query(xs) if n_own else (np.zeros(0), np.zeros(0, dtype=int))
            if n_own and dist.max() > 1e-8 * scale:
                raise ContinuumInputError(f"interfaces.{self.name}: the two sides of the interface do not match "
                                          f"(a node is {dist.max():.3g} Å from its partner)")
            match[side] = tree[side][1][idx]
        V_imap = V.dofmap.index_map
        sizes_row = (3 * n_own, 3 * imap.size_global)
        sizes_col = (3 * V_imap.size_local, 3 * V_imap.size_global)
        mats = []
        for drop in (False, True):
            P = PETSc.Mat().createAIJ((sizes_row, sizes_col), nnz=(2, 2), comm=comm)
            for r, p, m in zip(rows, match["plus"], match["minus"]):
                for c in range(3):
                    cols = [(3 * p + c, 1.0), (3 * m + c, -1.0)]
                    cols = [(j, v) for j, v in cols if not (drop and j in constrained)]
                    if cols:
                        P.setValues([3 * r + c], [j for j, _ in cols], [v for _, v in cols])
            P.assemble()
            mats.append(P)
        return mats

    # -- evaluation -------------------------------------------------------------------------
    def update(self, u) -> None:
        """Evaluate the law at the quadrature points for the displacement ``u``."""
        self.P.mult(u.x.petsc_vec, self.delta.x.petsc_vec)
        self.delta.x.scatter_forward()
        if len(self.cells):
            d = self._delta_at_points.eval(self.submesh, self.cells).reshape(len(self.cells), len(self.points), 3)
        else:  # this rank holds no part of the interface
            d = np.zeros((0, len(self.points), 3))
        n = np.broadcast_to(self.normals[:, None, :], d.shape)
        dn = np.einsum("cpi,cpi->cp", d, n)
        dt = d - dn[..., None] * n
        s = np.einsum("cpi,cpi->cp", dt, dt)
        phi, phi_n, phi_s, phi_nn, phi_ns, phi_ss = (self.weight * v for v in self.law_values(dn, s))
        t = phi_n[..., None] * n + 2.0 * phi_s[..., None] * dt
        nn = n[..., :, None] * n[..., None, :]
        ntn = n[..., :, None] * dt[..., None, :]
        K = (phi_nn[..., None, None] * nn + 2.0 * phi_ns[..., None, None] * (ntn + ntn.swapaxes(-1, -2))
             + 4.0 * phi_ss[..., None, None] * dt[..., :, None] * dt[..., None, :]
             + 2.0 * phi_s[..., None, None] * (np.eye(3) - nn))
        for fn, values, size in ((self.phi_q, phi, 1), (self.t_q, t, 3), (self.K_q, K, 9)):
            dofs = fn.function_space.dofmap.list[: len(self.cells)]
            fn.x.array.reshape(-1, size)[dofs.ravel()] = values.reshape(-1, size)
            fn.x.scatter_forward()
        self.opening_normal, self.opening_tangential = dn, np.sqrt(s)

    def opening_A(self) -> dict[str, float]:
        """The normal opening (Å) at the interface's quadrature points after the last update, over
        every rank (collective): ``min``, ``mean`` (by points; equal to the area mean on a uniform
        mesh) and ``max``. Positive is open, negative is interpenetration."""
        dn = np.asarray(getattr(self, "opening_normal", np.zeros((0, 1)))).ravel()
        comm = self.submesh.comm
        n = comm.allreduce(dn.size, op=MPI.SUM)
        if n == 0:
            return {"min": 0.0, "mean": 0.0, "max": 0.0}
        return {"min": comm.allreduce(float(dn.min()) if dn.size else np.inf, op=MPI.MIN),
                "mean": comm.allreduce(float(dn.sum()), op=MPI.SUM) / n,
                "max": comm.allreduce(float(dn.max()) if dn.size else -np.inf, op=MPI.MAX)}

    def law_values(self, dn: np.ndarray, s: np.ndarray):
        """The law plus the contact penalty: phi and its derivatives in (dn, s)."""
        zero = np.zeros_like(dn)
        values = list(self.spec.law.evaluate(dn, s)) if self.spec.law is not None else [zero] * 6
        if self.penalty > 0:
            closed = np.minimum(dn, 0.0)
            values[0] = values[0] + 0.5 * self.penalty * closed**2
            values[1] = values[1] + self.penalty * closed
            values[3] = values[3] + self.penalty * (dn < 0)
        return values

    def energy(self) -> float:
        """Interface energy (eV) at the last :meth:`update`, over all ranks."""
        return self.submesh.comm.allreduce(fem.assemble_scalar(self.energy_form), op=MPI.SUM)

    def add_residual(self, b) -> None:
        """``b += P_free^T r`` (owned entries)."""
        self.P_free.multTransposeAdd(self.r_full(), b, b)

    def r_full(self):
        """``r`` at the last :meth:`update` (for reactions, which need every column of ``P``)."""
        with self.r.localForm() as local:
            local.set(0.0)
        fem_petsc.assemble_vector(self.r, self.r_form)
        self.r.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        return self.r

    def tangent(self) -> PETSc.Mat:
        """``P_free^T H P_free`` at the last :meth:`update`."""
        self.H.zeroEntries()
        fem_petsc.assemble_matrix(self.H, self.H_form)
        self.H.assemble()
        if self._PtHP is None:
            self._PtHP = self.H.ptap(self.P_free)
        else:
            self.H.ptap(self.P_free, result=self._PtHP)
        return self._PtHP

    def opening_control(self) -> PETSc.Vec:
        """``c`` on the displacement space (owned entries) with ``c . u`` the area mean of the normal
        opening over the interface (Å): ``P^T`` of the normals integrated against W's basis, over
        the area (collective). Linear in ``u``: the control of :mod:`continuum.continuation`."""
        normal = fem.Function(fem.functionspace(self.submesh, ("DG", 0, (3,))))
        normal.x.array.reshape(-1, 3)[: len(self.cells)] = self.normals
        normal.x.scatter_forward()
        w = ufl.TestFunction(self.W)
        weights = fem_petsc.assemble_vector(fem.form(ufl.dot(normal, w) * ufl.dx(domain=self.submesh)))
        weights.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        weights.scale(1.0 / self.area_A2)
        c = self.P.createVecRight()
        self.P.multTranspose(weights, c)
        weights.destroy()
        return c

    def nodal_fields(self):
        """Opening (Å) and traction (GPa) at the nodes of the interface, as functions on its submesh
        (the same two functions at every call).

        A node takes the normal of one of its facets (exact for a plane interface)."""
        delta = self.delta.x.array.reshape(-1, 3)
        normal = np.zeros_like(delta)
        dofs = self.W.dofmap.list[: len(self.cells)]
        normal[dofs.ravel()] = np.repeat(self.normals, dofs.shape[1], axis=0)
        dn = np.einsum("ki,ki->k", delta, normal)
        dt = delta - dn[:, None] * normal
        values = self.law_values(dn, np.einsum("ki,ki->k", dt, dt))
        traction = values[1][:, None] * normal + 2.0 * values[2][:, None] * dt
        self.traction.x.array[:] = (traction / GPa).ravel()
        return self.delta, self.traction
