"""A static elastic problem: bodies, boundary conditions, cohesive interfaces, one energy.

``Pi(u) = sum_bodies int W(u) dV + sum_interfaces int phi(jump u) dA - external work`` (eV). The
residual and the Jacobian are its first and second derivatives (UFL for the bulk, the law's own
derivatives on the interfaces), PETSc SNES minimises it with Newton and a line search on ``Pi``,
and :meth:`StaticProblem.irun` walks the load factor from 0 to 1, halving a step that diverges
(:func:`continuum.stepping.load_steps`). Everything is checked before the first assembly; errors
are raised on every rank.

A problem that composes this one (a coupled problem, DESIGN section 5) drives it through its
public contract: :meth:`~StaticProblem.set_state`, :meth:`~StaticProblem.gradient`,
:meth:`~StaticProblem.set_dirichlet_rows`, :meth:`~StaticProblem.tangent`,
:meth:`~StaticProblem.fixed_dofs`, :meth:`~StaticProblem.apply_load`,
:meth:`~StaticProblem.snes_settings`, :meth:`~StaticProblem.energies`,
:meth:`~StaticProblem.reaction` (with its own nodal forces added) and
:meth:`~StaticProblem.check_strain_range`; ``V``, ``u``, ``A``, ``bcs``, ``interfaces``,
``load_factor``.
"""

from __future__ import annotations

import logging
from itertools import count

import numpy as np

from .backend import load_dolfinx
from .boundary import BoundaryCondition, Pressure, Symmetry, Traction
from .errors import ContinuumInputError
from .materials import CauchyBorn, LinearElastic, Material
from .solver import SolverSettings
from .stepping import StepResult, load_steps
from .units import GPa

dolfinx = load_dolfinx()
import basix  # noqa: E402
import basix.ufl  # noqa: E402
import ufl  # noqa: E402
from dolfinx import default_scalar_type, fem, la  # noqa: E402
from dolfinx import mesh as dmesh  # noqa: E402
from dolfinx.fem import petsc as fem_petsc  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from .domain import Domain  # noqa: E402
from .elasticity import Constitutive  # noqa: E402
from .interface import CohesiveInterface, InterfaceLaw  # noqa: E402

log = logging.getLogger(__name__)
_PREFIXES = count()
_AXES = "xyz"
__all__ = ["StaticProblem", "StepResult", "newton", "rigid_body_modes", "snes_with_options"]


def snes_with_options(comm, settings: dict):
    """A PETSc SNES configured by ``settings`` (option names without a prefix), under a prefix of its
    own so that problems never share options."""
    prefix = f"continuum{next(_PREFIXES)}_"
    options = PETSc.Options()
    for key, value in settings.items():
        options[prefix + key] = value
    snes = PETSc.SNES().create(comm)
    snes.setOptionsPrefix(prefix)
    snes.setFromOptions()
    for key in settings:
        options.delValue(prefix + key)
    return snes


def newton(snes, x) -> tuple[bool, int, str]:
    """Solve with ``snes`` from (and into) the PETSc vector ``x``: (converged, iterations, why not)."""
    why = ""
    try:
        snes.solve(None, x)
        reason = snes.getConvergedReason()
    except PETSc.Error as exc:  # a failed factorisation or a non-finite residual
        reason, why = -100, f"PETSc error {exc}"
    its = snes.getIterationNumber()
    if reason > 0:
        return True, its, ""
    names = {v: k for k, v in vars(PETSc.SNES.ConvergedReason).items() if isinstance(v, int)}
    why = why or f"SNES {names.get(reason, str(reason))}"
    return False, its, f"{why} after {its} iterations (residual {snes.getFunctionNorm():.3g} eV/Å)"


def _symmetry_axis(domain: Domain, facets: np.ndarray, name: str) -> int:
    """The axis a plane boundary is normal to (collective); an error when it is not axis-aligned."""
    msh = domain.mesh
    nodes = dmesh.entities_to_geometry(msh, msh.topology.dim - 1, facets)
    x = msh.geometry.x[nodes]
    n = np.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0])
    n = np.abs(n / np.linalg.norm(n, axis=1)[:, None]) if len(n) else np.zeros((0, 3))
    votes = domain.comm.allreduce(n.sum(axis=0) if len(n) else np.zeros(3), op=MPI.SUM)
    axis = int(np.argmax(votes))
    worst = domain.comm.allreduce(float((1 - n[:, axis]).max()) if len(n) else 0.0, op=MPI.MAX)
    if worst > 1e-8:
        raise ContinuumInputError(f"symmetry on {name!r}: the boundary is not a plane normal to x, y or z")
    return axis


def rigid_body_modes(V) -> PETSc.NullSpace:
    """The six rigid-body modes of a vector space V, orthonormalised: the near-nullspace for GAMG."""
    imap = V.dofmap.index_map
    n = imap.size_local
    x = V.tabulate_dof_coordinates()[:n]
    modes = np.zeros((6, n, 3))
    for c in range(3):
        modes[c, :, c] = 1.0
    modes[3, :, 0], modes[3, :, 1] = -x[:, 1], x[:, 0]
    modes[4, :, 0], modes[4, :, 2] = x[:, 2], -x[:, 0]
    modes[5, :, 2], modes[5, :, 1] = x[:, 1], -x[:, 2]
    vecs = []
    for m in modes:
        vec = PETSc.Vec().createMPI((3 * n, 3 * imap.size_global), bsize=3, comm=V.mesh.comm)
        vec.setArray(m.ravel())
        vecs.append(vec)
    for i, vi in enumerate(vecs):  # modified Gram-Schmidt
        for vj in vecs[:i]:
            vi.axpy(-vi.dot(vj), vj)
        vi.normalize()
    return PETSc.NullSpace().create(vectors=vecs, comm=V.mesh.comm)


class StaticProblem:
    """Quasi-static equilibrium of a :class:`Domain` (lengths Å, moduli GPa, energies eV).

    ``materials`` maps every body name to a :class:`~continuum.materials.LinearElastic` or
    :class:`~continuum.materials.CauchyBorn`; ``bcs`` are :mod:`continuum.boundary` conditions;
    ``interfaces`` maps interface names (split when the mesh was built) to an
    :class:`~continuum.interface.InterfaceLaw`. ``degree``: 1 or 2 (Lagrange). ``body_force``: a
    function of the UFL spatial coordinate giving a force density (eV/Å^4, ramped with the load),
    e.g. for manufactured solutions. ``energy_weight``: a numpy function of reference positions
    (k, 3) Å giving a weight (k,) of the strain energy density at each quadrature point, such as
    ``1 - beta`` of a handshake (DESIGN section 5); quadrature of degree ``2 * degree`` then."""

    def __init__(self, domain: Domain, materials: dict[str, Material], *, bcs: tuple[BoundaryCondition, ...] = (),
                 interfaces: dict[str, InterfaceLaw] | None = None, degree: int = 1,
                 solver: SolverSettings | None = None, body_force=None, energy_weight=None):
        self.domain, self.solver = domain, solver or SolverSettings()
        interfaces = dict(interfaces or {})
        self._validate(materials, bcs, interfaces, degree)
        msh = domain.mesh
        fdim = msh.topology.dim - 1
        self.V = fem.functionspace(msh, ("Lagrange", degree, (3,)))
        self.u = fem.Function(self.V, name="displacement_A")
        self.load = fem.Constant(msh, default_scalar_type(0.0))
        self.load_factor = 0.0
        dx = ufl.Measure("dx", domain=msh, subdomain_data=domain.cell_tags)
        ds = ufl.Measure("ds", domain=msh, subdomain_data=domain.facet_tags)
        self.constitutive = {name: Constitutive(msh, m) for name, m in materials.items()}
        # linear laws: the default degree 2(k-1) is exact; Cauchy-Born: 2k, as accurate as the element
        metadata = {name: {"quadrature_degree": 2 * degree} if isinstance(m, CauchyBorn) else {}
                    for name, m in materials.items()}
        weight, dead = 1.0, np.zeros(0, dtype=np.int32)
        self._weighted_cells = np.arange(msh.topology.index_map(msh.topology.dim).size_local, dtype=np.int32)
        if energy_weight is not None:
            weight, dead = self._quadrature_weight(energy_weight, 2 * degree)
            metadata = {name: {"quadrature_degree": 2 * degree, "quadrature_rule": "default"} for name in materials}
        measure = {name: dx(domain.bodies[name], metadata=metadata[name]) for name in materials}
        self._weight, self._measure = weight, measure
        self.strain_forms = {name: fem.form(weight * c.energy_density(self.u) * measure[name])
                             for name, c in self.constitutive.items()}
        v, du = ufl.TestFunction(self.V), ufl.TrialFunction(self.V)
        internal_force = sum(weight * c.virtual_work(self.u, v) * measure[name]
                             for name, c in self.constitutive.items())
        # external loads and Dirichlet conditions
        n = ufl.FacetNormal(msh)
        external = 0
        if body_force is not None:
            external = self.load * ufl.dot(body_force(ufl.SpatialCoordinate(msh)), self.u) * dx
        self.bcs, self._bc_values, constrained_local = [], [], []
        for bc in bcs:
            facets = domain.boundary_facets(bc.boundary, f"boundary condition on {bc.boundary!r}")
            scale = self.load if getattr(bc, "ramp", False) else 1.0
            tag = domain.boundaries[bc.boundary]
            if isinstance(bc, Traction):
                t = ufl.as_vector([component * GPa for component in bc.traction_GPa])
                external = external + scale * ufl.dot(t, self.u) * ds(tag)
            elif isinstance(bc, Pressure):
                external = external - scale * bc.pressure_GPa * GPa * ufl.dot(n, self.u) * ds(tag)
            else:
                if isinstance(bc, Symmetry):
                    components = {_symmetry_axis(domain, facets, bc.boundary): 0.0}
                else:
                    components = {c: value for c, value in enumerate(bc.value_A) if value is not None}
                for c, value in components.items():
                    dofs = fem.locate_dofs_topological(self.V.sub(c), fdim, facets)
                    g = fem.Constant(msh, default_scalar_type(0.0))
                    self.bcs.append(fem.dirichletbc(g, dofs, self.V.sub(c)))
                    self._bc_values.append((g, float(value), bool(getattr(bc, "ramp", False))))
                    constrained_local.append(dofs)
        if self.domain.comm.allreduce(len(dead), op=MPI.SUM):
            # nodes whose every cell has zero weight carry no energy: held where they are (zero displacement)
            self.bcs.append(fem.dirichletbc(np.zeros(3, dtype=default_scalar_type), dead, self.V))
            constrained_local.append((3 * dead[:, None] + np.arange(3)).ravel().astype(np.int32))
        self.external_form = fem.form(external) if external != 0 else None
        residual = internal_force - (ufl.derivative(external, self.u, v) if external != 0 else 0)
        self.internal_force_form = fem.form(internal_force)
        self.F_form = fem.form(residual)
        self.J_form = fem.form(ufl.derivative(residual, self.u, du))
        self.interfaces = {}
        if interfaces:
            constrained = self._global_constrained(constrained_local)
            stiffness = max(float(np.abs(np.diag(m.tensor.C)).max()) for m in materials.values()) * GPa
            self.interfaces = {name: CohesiveInterface(domain, self.V, name, spec, constrained, stiffness,
                                                       weight=energy_weight)
                               for name, spec in interfaces.items()}
        self._setup_algebra()
        self._snes = None  # created when first needed

    def _quadrature_weight(self, function, degree: int):
        """``function`` of the reference coordinates, held at the quadrature points of ``degree``,
        and the local nodes (block indices) of V whose every cell has zero weight at its quadrature
        points and at its vertices (no energy reaches them)."""
        msh = self.domain.mesh
        cell = msh.basix_cell()
        points, _ = basix.make_quadrature(cell, degree)
        weight = fem.Function(fem.functionspace(msh, basix.ufl.quadrature_element(cell, (), degree=degree)))
        n_cells = msh.topology.index_map(msh.topology.dim).size_local
        cells = np.arange(n_cells, dtype=np.int32)
        x = fem.Expression(ufl.SpatialCoordinate(msh), points).eval(msh, cells).reshape(-1, 3) if n_cells else \
            np.zeros((0, 3))
        vertices = msh.geometry.x[msh.geometry.dofmaps[0][:n_cells]].reshape(-1, 3)
        values, at_vertices = (np.asarray(function(y), dtype=float) for y in (x, vertices))
        for v, y in ((values, x), (at_vertices, vertices)):
            if v.shape != (len(y),) or not np.all(np.isfinite(v)) or np.any(v < 0):
                raise ContinuumInputError("energy_weight: expected one finite, non-negative weight per point")
        dofs = weight.function_space.dofmap.list[:n_cells]
        weight.x.array[dofs.ravel()] = values
        weight.x.scatter_forward()
        alive = (values.reshape(n_cells, -1).max(axis=1, initial=0.0) > 0) | \
            (at_vertices.reshape(n_cells, -1).max(axis=1, initial=0.0) > 0)
        scalar, to_parent = self.V.sub(0).collapse()
        count = fem.Function(scalar)
        count.x.array[scalar.dofmap.list[:n_cells][alive].ravel()] = 1.0
        count.x.scatter_reverse(la.InsertMode.add)
        count.x.scatter_forward()
        self._weighted_cells = np.flatnonzero(alive).astype(np.int32)
        dead = np.asarray(to_parent).ravel()[count.x.array == 0] // 3  # V's x-component dofs -> its nodes
        return weight, np.asarray(dead, dtype=np.int32)

    # -- checks ------------------------------------------------------------------------------
    def _validate(self, materials, bcs, interfaces, degree) -> None:
        d = self.domain
        if degree not in (1, 2):
            raise ContinuumInputError(f"degree = {degree!r}: expected 1 or 2")
        for name in materials:
            d.body_tag(name, "materials")
        missing = sorted(set(d.bodies) - set(materials))
        if missing:
            raise ContinuumInputError(f"materials: no material for bodies {missing}; every body needs one")
        for bc in bcs:
            d.boundary_facets(bc.boundary, f"boundary condition on {bc.boundary!r}")
        for name in interfaces:
            d.interface(name)

    def _global_constrained(self, local_dofs: list[np.ndarray]) -> set[int]:
        """Global (unrolled) indices of every Dirichlet-constrained dof, on every rank."""
        imap = self.V.dofmap.index_map
        owned = [d[d < 3 * imap.size_local] for d in local_dofs] or [np.zeros(0, dtype=np.int32)]
        dofs = np.unique(np.concatenate(owned)).astype(np.int32)
        glob = 3 * imap.local_to_global(dofs // 3) + dofs % 3
        return set(np.concatenate(self.domain.comm.allgather(glob)).tolist())

    # -- PETSc SNES ----------------------------------------------------------------------------
    def _setup_algebra(self) -> None:
        """The residual vector and the tangent matrix (its pattern widened by the interfaces)."""
        self.b = fem_petsc.create_vector(self.V)
        self.A = fem_petsc.create_matrix(self.J_form)
        if self.interfaces:  # widen the pattern by the interfaces' couplings once
            self._set(self.u.x.petsc_vec)
            fem_petsc.assemble_matrix(self.A, self.J_form, self.bcs)
            self.A.assemble()
            for iface in self.interfaces.values():
                self.A.axpy(1.0, iface.tangent(), structure=PETSc.Mat.Structure.DIFFERENT_NONZERO_PATTERN)
        if self.solver.linear_solver == "cg":
            self.A.setNearNullSpace(rigid_body_modes(self.V))

    def snes_settings(self) -> dict:
        """PETSc options (without a prefix) of the Newton solver and its linear solver."""
        s = self.solver
        # a linear problem (linear materials, no interfaces) is one linear solve: SNES "ksponly"
        linear = self.interfaces == {} and all(isinstance(c.material, LinearElastic)
                                               for c in self.constitutive.values())
        settings = {"snes_type": "ksponly" if linear else "newtonls", "snes_linesearch_type": s.line_search,
                    "snes_rtol": s.rtol,
                    "snes_atol": s.atol, "snes_stol": 0.0, "snes_max_it": s.max_iterations,
                    "snes_max_funcs": 100 * s.max_iterations}
        if s.linear_solver == "direct":
            settings.update({"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"})
        else:
            settings.update({"ksp_type": "cg", "pc_type": "gamg", "ksp_rtol": s.ksp_rtol, "ksp_max_it": 2000})
        return settings

    @property
    def snes(self):
        """The PETSc SNES that solves a load step (created at first use), on :meth:`residual` and
        :meth:`tangent` with the options of :meth:`snes_settings`."""
        if self._snes is None:
            self._snes = snes_with_options(self.domain.comm, self.snes_settings())
            self._snes.setFunction(self._residual, self.b)
            self._snes.setJacobian(self._jacobian, self.A)
        return self._snes

    def _residual(self, snes, x, b) -> None:  # SNES's callbacks
        self.residual(x, b)

    def _jacobian(self, snes, x, A, P) -> None:
        self.tangent(x, A)

    # -- the public contract: state, gradient, tangent ------------------------------------------
    def _set(self, x) -> None:
        """Make ``u`` (and the interfaces' quadrature fields) those of ``x``."""
        if x.handle != self.u.x.petsc_vec.handle:
            x.copy(self.u.x.petsc_vec)
        self.u.x.scatter_forward()
        for iface in self.interfaces.values():
            iface.update(self.u)
        self._synced = None

    def _sync(self, x) -> None:
        """:meth:`_set`, skipped when asked again about the same, unchanged ``x`` (the residual
        and the tangent of one Newton iteration)."""
        key = (x.handle, x.stateGet())
        if key != getattr(self, "_synced", None):
            self._set(x)
            self._synced = key

    def set_state(self, x) -> None:
        """Make the displacement ``u`` (and the interfaces' fields) those of the PETSc vector ``x``
        (V's layout, Å); :meth:`gradient` and :meth:`tangent` at the unchanged ``u`` then reuse them."""
        self._set(x)
        u = self.u.x.petsc_vec
        self._synced = (u.handle, u.stateGet())

    def gradient(self, x, b, lifting: bool = True) -> None:
        """``b`` = dPi/du (eV/Å) at ``x`` (owned entries, before the Dirichlet rows are set); with
        ``lifting``, plus the linearised effect of moving the boundary nodes to their values."""
        self._sync(x)
        with b.localForm() as local:
            local.set(0.0)
        fem_petsc.assemble_vector(b, self.F_form)
        # until x meets the new boundary values, the linearised effect of moving them is part of the
        # residual: the first Newton step is then the tangent predictor, not a jump of the boundary nodes
        if lifting:
            fem_petsc.apply_lifting(b, [self.J_form], bcs=[self.bcs], x0=[x], alpha=-1.0)
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        for iface in self.interfaces.values():
            iface.add_residual(b)

    def set_dirichlet_rows(self, b, x) -> None:
        """Set the Dirichlet-constrained rows of the residual ``b`` to ``x - g`` (Å; ``g`` the
        boundary values at the applied load)."""
        fem_petsc.set_bc(b, self.bcs, x, -1.0)

    def residual(self, x, b) -> None:
        """The Newton residual at ``x``: :meth:`gradient` with the lifting, Dirichlet rows set."""
        self.gradient(x, b)
        self.set_dirichlet_rows(b, x)

    def tangent(self, x, A=None) -> None:
        """Assemble the tangent d^2Pi/du^2 (eV/Å^2) at ``x`` into ``A`` (default :attr:`A`), with
        the Dirichlet rows and columns replaced by the identity."""
        A = self.A if A is None else A
        self._sync(x)
        A.zeroEntries()
        fem_petsc.assemble_matrix(A, self.J_form, self.bcs)
        A.assemble()
        for iface in self.interfaces.values():
            A.axpy(1.0, iface.tangent(), structure=PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN)

    def fixed_dofs(self) -> np.ndarray:
        """Local indices (unrolled, into the owned entries of V's vectors) of every owned
        Dirichlet-constrained dof, sorted, without repeats."""
        fixed = []
        for bc in self.bcs:
            dofs, owned = bc.dof_indices()
            fixed.append(dofs[:owned])
        return np.unique(np.concatenate(fixed)) if fixed else np.zeros(0, dtype=np.int32)

    def apply_load(self, factor: float) -> None:
        """Set the load factor of the ramped loads and boundary values (0 to 1); :attr:`load_factor`
        (the factor of the last converged state) is left as it is."""
        self.load.value = factor
        for g, value, ramp in self._bc_values:
            g.value = value * factor if ramp else value

    # -- results -----------------------------------------------------------------------------
    def energies(self) -> dict[str, float]:
        """Energy parts (eV) at the current displacement: ``strain:<body>``, ``interface:<name>``,
        ``external`` (work of the applied tractions) and ``total`` = strain + interfaces - external."""
        comm = self.domain.comm
        out = {f"strain:{name}": comm.allreduce(fem.assemble_scalar(f), op=MPI.SUM)
               for name, f in self.strain_forms.items()}
        for name, iface in self.interfaces.items():
            out[f"interface:{name}"] = iface.energy()
        out["external"] = 0.0 if self.external_form is None else comm.allreduce(
            fem.assemble_scalar(self.external_form), op=MPI.SUM)
        out["total"] = sum(v for k, v in out.items() if k != "external") - out["external"]
        return out

    def reaction(self, boundary: str, nodal_forces: np.ndarray | None = None) -> np.ndarray:
        """Force (eV/Å, x y z) that holds ``boundary`` where it is: the internal force summed over its
        nodes. ``nodal_forces``: further internal forces (eV/Å) on the owned entries of V's vectors,
        added first (the atoms' share ``N^T f`` in a coupled problem)."""
        facets = self.domain.boundary_facets(boundary, "reaction")
        self._set(self.u.x.petsc_vec)
        f = fem_petsc.create_vector(self.V)
        with f.localForm() as local:
            local.set(0.0)
        fem_petsc.assemble_vector(f, self.internal_force_form)
        f.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        for iface in self.interfaces.values():
            iface.P.multTransposeAdd(iface.r_full(), f, f)
        if nodal_forces is not None:
            f.array[:] += nodal_forces
        n_owned = self.V.dofmap.index_map.size_local
        dofs = fem.locate_dofs_topological(self.V, self.domain.mesh.topology.dim - 1, facets)
        dofs = dofs[dofs < n_owned]
        total = f.array.reshape(-1, 3)[dofs].sum(axis=0)
        f.destroy()
        return self.domain.comm.allreduce(total, op=MPI.SUM)

    # -- load stepping (continuum.stepping.LoadStepped) ------------------------------------------
    def state(self) -> tuple[float, np.ndarray]:
        """The load factor and a copy of the displacement (to go back to when a load step fails)."""
        return self.load_factor, self.u.x.array.copy()

    def restore(self, state: tuple[float, np.ndarray]) -> None:
        """Go back to a :meth:`state`: its displacement (the interfaces' fields with it) and its load."""
        self.load_factor, values = state
        self.u.x.array[:] = values
        self.set_state(self.u.x.petsc_vec)
        self.apply_load(self.load_factor)

    def solve_to(self, factor: float) -> tuple[bool, int, str]:
        """Newton from the current displacement at the load ``factor``: (converged, iterations, why
        not). Converged, ``u`` is the solution and :attr:`load_factor` is ``factor``."""
        self.apply_load(factor)
        x = self.u.x.petsc_vec.copy()
        self._synced = None  # a new vector may reuse an old one's handle
        ok, its, why = newton(self.snes, x)
        if ok:
            x.copy(self.u.x.petsc_vec)
            self.set_state(self.u.x.petsc_vec)
            self.load_factor = factor
            self.check_strain_range()
        x.destroy()
        return ok, its, why

    def irun(self, steps: int = 1, reactions: tuple[str, ...] = ()):
        """Walk the load factor from its current value to 1 in ``steps`` equal steps; yield each
        converged :class:`StepResult` (with the reactions of the named boundaries, eV/Å)."""
        return load_steps(self, steps, reactions, max_cuts=self.solver.max_cuts)

    # -- dynamics ---------------------------------------------------------------------------------
    def lumped_mass(self, density_amu_A3: dict[str, float]) -> PETSc.Vec:
        """The row-sum-lumped mass matrix (amu, owned entries of V's vectors) of the kinetic energy
        ``int w rho |du/dt|^2 / 2 dV``: ``density_amu_A3`` by body, ``w`` the energy weight (1
        without one; ``1 - beta`` in a coupled problem), on the quadrature of the strain energy."""
        unknown = sorted(set(density_amu_A3) - set(self._measure))
        if unknown or any(not (np.isfinite(v) and v > 0) for v in density_amu_A3.values()):
            raise ContinuumInputError(f"density_amu_A3 = {density_amu_A3!r}: expected a positive density (amu/Å^3) "
                                      f"for each body of {sorted(self._measure)}")
        v, du = ufl.TestFunction(self.V), ufl.TrialFunction(self.V)
        form = fem.form(sum(density_amu_A3[name] * self._weight * ufl.inner(du, v) * self._measure[name]
                            for name in density_amu_A3))
        M = fem_petsc.assemble_matrix(form)
        M.assemble()
        ones, mass = M.createVecRight(), M.createVecLeft()
        ones.set(1.0)
        M.mult(ones, mass)
        for obj in (M, ones):
            obj.destroy()
        return mass

    def boundary_dofs(self, boundary: str, field: str = "boundary") -> list[np.ndarray]:
        """The owned entries of V's vectors (indices ``3 node + component``) on ``boundary``, one
        array per component x, y, z. ``field`` names the setting in errors."""
        facets = self.domain.boundary_facets(boundary, field)
        fdim = self.domain.mesh.topology.dim - 1
        owned = 3 * self.V.dofmap.index_map.size_local
        out = []
        for c in range(3):
            dofs = fem.locate_dofs_topological(self.V.sub(c), fdim, facets)
            out.append(np.sort(dofs[dofs < owned]).astype(np.int64))
        return out

    def face_areas(self, boundary: str, field: str = "boundary") -> PETSc.Vec:
        """``int_face phi_i dA`` (Å^2) of every shape function on ``boundary``, the same in the three
        components of a node (owned entries of V's vectors): each node's share of the face's area,
        for boundary dashpots and lumped face loads. ``field`` names the setting in errors."""
        self.domain.boundary_facets(boundary, field)  # checks the name (collective)
        tag = self.domain.boundaries[boundary]
        ds = ufl.Measure("ds", domain=self.domain.mesh, subdomain_data=self.domain.facet_tags)
        v = ufl.TestFunction(self.V)
        form = fem.form(ufl.inner(ufl.as_vector([1.0, 1.0, 1.0]), v) * ds(tag))
        areas = fem_petsc.create_vector(self.V)
        with areas.localForm() as local:
            local.set(0.0)
        fem_petsc.assemble_vector(areas, form)
        areas.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        return areas

    # -- path following (continuum.continuation.PathFollowed) ------------------------------------
    def opening_control(self, name: str) -> PETSc.Vec:
        """``c`` with ``c . u`` the area mean of the normal opening (Å) of interface ``name``."""
        if name not in self.interfaces:
            raise ContinuumInputError(f"interface {name!r}: not an interface of this problem "
                                      f"(it has {sorted(self.interfaces)})")
        return self.interfaces[name].opening_control()

    def unknowns(self) -> PETSc.Vec:
        return self.u.x.petsc_vec

    def iterate(self) -> PETSc.Vec:
        self._synced = None  # a new vector may reuse an old one's handle
        return self.u.x.petsc_vec.copy()

    def newton_residual(self, x, b) -> None:
        self.residual(x, b)

    def newton_operators(self, x):
        self.tangent(x)
        return self.A, self.A, self.snes.getKSP()

    def commit(self, x, factor: float) -> None:
        x.copy(self.u.x.petsc_vec)
        self.set_state(self.u.x.petsc_vec)
        self.load_factor = factor
        self.apply_load(factor)
        self.check_strain_range()

    #: beyond this Green-Lagrange strain a third-order expansion of the crystal's energy is not trusted
    CAUCHY_BORN_STRAIN_LIMIT = 0.08

    def check_strain_range(self) -> None:
        """Warn (once) when a Cauchy-Born body strains past :attr:`CAUCHY_BORN_STRAIN_LIMIT` (at the
        current displacement, reported at :attr:`load_factor`)."""
        if getattr(self, "_warned_strain", False):
            return
        if not hasattr(self, "_strain_size"):
            S = fem.functionspace(self.domain.mesh, ("DG", 0))
            points = S.element.interpolation_points
            self._strain_size = (fem.Function(S), [
                (name, np.intersect1d(self.domain.cell_tags.find(self.domain.bodies[name]), self._weighted_cells),
                 fem.Expression(ufl.sqrt(ufl.inner(c.strain(self.u), c.strain(self.u))), points))
                for name, c in self.constitutive.items() if isinstance(c.material, CauchyBorn)])
        size, bodies = self._strain_size
        for name, cells, expression in bodies:
            size.interpolate(expression, cells0=cells)
            worst = self.domain.comm.allreduce(float(size.x.array[cells].max(initial=0.0)), op=MPI.MAX)
            if worst > self.CAUCHY_BORN_STRAIN_LIMIT:
                log.warning("body %r reaches a Green-Lagrange strain of %.3f at load factor %.4g: the Cauchy-Born "
                            "energy W(E) is a third-order expansion and is not reliable beyond about %.2f", name,
                            worst, self.load_factor, self.CAUCHY_BORN_STRAIN_LIMIT)
                self._warned_strain = True

    def solve(self, steps: int = 1, reactions: tuple[str, ...] = ()) -> list[StepResult]:
        """All load steps of :meth:`irun` at once."""
        return list(self.irun(steps, reactions))

    def stress_GPa(self):
        """Cauchy stress (GPa) and strain energy density (GPa = GJ/m^3) as cell-wise (DG0) functions,
        updated to the current displacement (the same two functions at every call)."""
        if not hasattr(self, "_cell_fields"):
            msh = self.domain.mesh
            T = fem.functionspace(msh, ("DG", 0, (3, 3)))
            S = fem.functionspace(msh, ("DG", 0))
            sigma, w = fem.Function(T, name="stress_GPa"), fem.Function(S, name="energy_density_GPa")
            expressions = [(self.domain.cell_tags.find(self.domain.bodies[name]),
                            fem.Expression(c.cauchy_stress(self.u) / GPa, T.element.interpolation_points),
                            fem.Expression(c.energy_density(self.u) / GPa, S.element.interpolation_points))
                           for name, c in self.constitutive.items()]
            self._cell_fields = (sigma, w, expressions)
        sigma, w, expressions = self._cell_fields
        for cells, stress, energy in expressions:
            sigma.interpolate(stress, cells0=cells)
            w.interpolate(energy, cells0=cells)
        return sigma, w
