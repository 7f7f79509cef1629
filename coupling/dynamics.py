"""Coupled dynamics: the free atoms and the continuum under one Hamiltonian.

``H = sum_i beta_i m_i |v_i|^2 / 2 + int (1 - beta) rho |du/dt|^2 / 2 dV + Pi``, with the ``beta`` and
the ``Pi`` of a :class:`~coupling.problem.CoupledProblem`, so that a run whose kinetic energy is
damped out settles on the problem's static solution. The unknowns are those of the statics, ``z``:
the nodal displacements and the free atoms'. Handshake and pad atoms follow the nodes (``d = T z``)
and carry their share of the kinetic energy to them, ``beta_i m_i`` spread by ``T^T``; the
continuum's share is its consistent mass matrix weighted by ``1 - beta``. Both are lumped by row
sums, so the mass matrix is diagonal, ``M = rowsum((1 - beta) M_FE) + T^T (beta m)``, and a step
needs no linear solve; :meth:`CoupledDynamics.kinetic_energy` is the kinetic energy of these
lumped masses, the one the integrator conserves with ``Pi``.

The step is the symmetric splitting B A O A B (the MD engine's, :mod:`atomistic.md.integrators`):
half kick, half drift, O, half drift, half kick, with one evaluation of the coupled gradient (the
atoms' forces, the continuum's internal forces, the ghost-force correction: the exact gradient of
``Pi``). Without O it is velocity Verlet, symplectic and time reversible. O is exact for a
friction ``gamma_k`` on each unknown and a bath at ``T_k``: ``v <- c v + sqrt((1 - c^2) kB T_k /
M_k) xi``, ``c = exp(-gamma_k dt)``, unconditionally stable. The frictions add up
(:mod:`coupling.baths` gathers and applies them):

- ``damping_per_fs``: on every unknown, bath at 0 K (settles on the static solution; with a
  warm bath on the same unknown, the noise is that of the warm share of the friction);
- a Langevin :class:`Thermostat` of the core: ``1 / time_fs`` on every free atom at its
  temperature (a Bussi thermostat instead rescales the free atoms' velocities after O so that
  their kinetic energy relaxes canonically, Bussi, Donadio & Parrinello 2007);
- a :class:`Stadium`: friction on the free atoms next to the handshake, rising smoothly from zero
  at ``width_A`` from the handshake to ``1 / time_fs`` at it, at the thermostat's temperature (0 K
  without one): it absorbs the short waves that the slaved handshake and the mesh cannot carry;
- with a thermostat, the nodes that carry atoms (the handshake's, and those under the core that
  interpolate its edge) at 0 K with the thermostat's rate: the continuum is the crystal's energy
  at 0 K and carries the coarse motion only. Heated by the thermal atoms they would share the
  core's temperature, and the softest of them (little continuum weight, few atoms: at the bar's
  edges, at the core's edge) wander until their elements' Cauchy-Born energy (a third-order
  expansion, unbounded below at large strains) loses convexity: without this, a 300 K core blew
  up after 2 to 6 ps. The heat they take is the bath's, and the stadium (at the thermostat's
  temperature) keeps the core's edge at temperature. Even so, over tens of ps the rare large
  fluctuation finds the Cauchy-Born energy's non-convex range; hot runs of many ps want a
  linear-elastic continuum (``cases/dynamics/hot_bar.toml`` says more);
- dashpots on outer faces of the continuum (Lysmer & Kuhlemeyer): ``-Z_n v_n - Z_t v_t`` per
  area, ``Z = sqrt(rho C)`` with the normal and shear stiffness of the crystal across the face,
  lumped on the nodes by their share of the face's area: a plane wave arriving at normal
  incidence leaves without reflection.

Constrained unknowns (Dirichlet values, nodes no energy reaches) keep their values, except those
a :class:`VelocityLoad` moves: their positions follow its history exactly and the work it does,
``int dPi/dz_b . dz_b``, is summed by the trapezoidal rule. ``H + bath - boundary work``
(:meth:`CoupledDynamics.energies`: ``conserved``) stays constant up to the integrator's error;
``bath`` is the energy taken out by the frictions and thermostats.

Units: Å, eV, amu; time in fs at the API (velocities in Å/fs, loads in Å/ps), ASE's time unit
inside.
"""

from __future__ import annotations

import logging

import numpy as np
from ase import units

from continuum.backend import load_dolfinx

from .baths import Frictions, OStep
from .dynamics_settings import Pulse, Stadium, Thermostat, VelocityLoad, positive
from .errors import CouplingInputError

load_dolfinx()
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402  (slepc4py is imported where it is used, after DOLFINx's set-up)

log = logging.getLogger(__name__)

#: the automatic time step, as a fraction of the shortest period (the MD engine's rule)
TIMESTEP_FRACTION = 1 / 20

#: atoms in a conventional cell of each lattice
ATOMS_PER_CELL = {"fcc": 4, "bcc": 2, "sc": 1}

#: the largest move (Å) of an unknown in one step before the run is stopped as blown up
LARGEST_STEP_A = 0.5

def crystal_density_amu_A3(mass_amu: float, lattice: str, a0_A: float) -> float:
    """Mass per volume (amu/Å^3) of a cubic crystal of atoms of ``mass_amu`` with lattice constant
    ``a0_A`` (Å): the continuum's density, from the crystal it stands for."""
    if lattice not in ATOMS_PER_CELL:
        raise CouplingInputError(f"lattice = {lattice!r}: expected one of {sorted(ATOMS_PER_CELL)}")
    return ATOMS_PER_CELL[lattice] * mass_amu / a0_A**3


__all__ = ["CoupledDynamics", "Pulse", "Stadium", "Thermostat", "VelocityLoad", "crystal_density_amu_A3"]


class CoupledDynamics:
    """Explicit dynamics of ``problem`` (a :class:`~coupling.problem.CoupledProblem`) from its
    current state (its unknowns, the Dirichlet values in them: solve or set them first), at rest
    until :meth:`set_temperature`, :meth:`launch` or :meth:`set_velocities` say otherwise.

    ``density_amu_A3``: the continuum's density (amu/Å^3), one number or one per body (see
    :func:`crystal_density_amu_A3`); ``timestep_fs`` (None: :data:`TIMESTEP_FRACTION` of the
    shortest period of the coupled system, :meth:`highest_frequency`; a given one is checked
    against velocity Verlet's stable limit ``2 / omega_max`` unless ``check_stability`` is False);
    ``damping_per_fs``: a friction on every unknown (0: none); ``thermostat``
    (:class:`Thermostat`), ``stadium`` (:class:`Stadium`), ``dashpots`` (outer faces of the
    continuum, ``"xmin"`` ... ``"zmax"``, with ``elastic_constants_GPa``, the continuum's 6 x 6
    Voigt constants in the mesh's axes), ``loads`` (:class:`VelocityLoad`) and ``seed`` (of the
    thermostat's noise). Collective: every rank makes one."""

    def __init__(self, problem, density_amu_A3: float | dict[str, float], timestep_fs: float | None = None, *,
                 damping_per_fs: float = 0.0, thermostat: Thermostat | None = None, stadium: Stadium | None = None,
                 dashpots: tuple[str, ...] = (), elastic_constants_GPa=None, loads: tuple[VelocityLoad, ...] = (),
                 seed: int = 0, check_stability: bool = True):
        if timestep_fs is not None and not (np.isfinite(timestep_fs) and timestep_fs > 0):
            raise CouplingInputError(f"timestep_fs = {timestep_fs!r}: expected a positive time step in fs")
        if not (np.isfinite(damping_per_fs) and damping_per_fs >= 0):
            raise CouplingInputError(f"damping_per_fs = {damping_per_fs!r}: expected a rate >= 0 (1/fs)")
        self.problem = p = problem
        bodies = sorted(p.domain.bodies)
        density = density_amu_A3 if isinstance(density_amu_A3, dict) else {b: density_amu_A3 for b in bodies}
        if sorted(density) != bodies or any(not (np.isfinite(v) and v > 0) for v in density.values()):
            raise CouplingInputError(f"density_amu_A3 = {density_amu_A3!r}: expected a positive density (amu/Å^3), "
                                     f"one number or one for each body of {bodies}")
        self.density = density
        self.damping_per_fs, self.thermostat, self.stadium = float(damping_per_fs), thermostat, stadium
        self.loads = tuple(loads)
        self.mass = self._lumped_mass(density)
        self.time_fs, self.steps_done = 0.0, 0
        self._check_constraints()
        self.v = p.z.duplicate()  # velocities of the unknowns, Å per ASE time unit
        self.v.set(0.0)
        self.gradient = p.z.duplicate()  # dPi/dz (eV/Å) at the current unknowns, every row
        self._work = p.z.duplicate()
        self._boundary_dofs: dict[str, list[np.ndarray]] = {}
        if not (isinstance(seed, (int, np.integer)) and seed >= 0):
            raise CouplingInputError(f"seed = {seed!r}: expected an integer >= 0")
        # the baths' noise: its own stream of the seed (set_temperature draws from the seed itself), drawn
        # on the atom rank only, so that any number of ranks gives the same noise
        self.rng = np.random.default_rng([1, int(seed)])
        self._bath_local = self._boundary_work_local = 0.0
        self._frictions = Frictions.of(self, dashpots, elastic_constants_GPa)
        self._moved, self._moved_start, self._moved_velocity = self._loaded_unknowns()
        self._g_moved = np.zeros(len(self._moved))
        self.highest_frequency_per_fs = None
        if timestep_fs is None or check_stability:
            self.highest_frequency_per_fs = self.highest_frequency()
        if timestep_fs is None:
            timestep_fs = TIMESTEP_FRACTION * 2 * np.pi / self.highest_frequency_per_fs
            log.info("time step %.3g fs: 1/%d of the shortest period of the coupled system (%.3g fs)", timestep_fs,
                     round(1 / TIMESTEP_FRACTION), 2 * np.pi / self.highest_frequency_per_fs)
        self.set_timestep(timestep_fs)
        self._update_force()

    def set_timestep(self, timestep_fs: float) -> None:
        """Use ``timestep_fs`` (fs) from the next step on; refused at or above velocity Verlet's
        stable limit ``2 / omega_max`` when the highest frequency is known."""
        if not (np.isfinite(timestep_fs) and timestep_fs > 0):
            raise CouplingInputError(f"timestep_fs = {timestep_fs!r}: expected a positive time step in fs")
        if self.highest_frequency_per_fs is not None:
            limit = 2.0 / self.highest_frequency_per_fs
            if timestep_fs >= limit:
                raise CouplingInputError(
                    f"timestep_fs = {timestep_fs:g} fs: above the stable limit of velocity Verlet for this coupled "
                    f"system, 2 / omega_max = {limit:.3g} fs (its shortest period is "
                    f"{2 * np.pi / self.highest_frequency_per_fs:.3g} fs; 1/20 of it, "
                    f"{TIMESTEP_FRACTION * 2 * np.pi / self.highest_frequency_per_fs:.3g} fs, conserves energy well)")
            if timestep_fs > 2 * TIMESTEP_FRACTION * 2 * np.pi / self.highest_frequency_per_fs:
                log.warning("timestep_fs = %g fs is more than 1/10 of the shortest period (%.3g fs): stable, but the "
                            "energy will fluctuate more", timestep_fs, 2 * np.pi / self.highest_frequency_per_fs)
        self.timestep_fs = float(timestep_fs)
        self.dt = self.timestep_fs * units.fs
        self._o_step = OStep(self.problem, self._frictions, self.mass.array_r, self.thermostat, self.timestep_fs)

    # -- set-up ------------------------------------------------------------------------------------
    def _lumped_mass(self, density: dict[str, float]) -> PETSc.Vec:
        """``rowsum((1 - beta) rho M_FE) + T^T (beta m)`` on the unknowns; refuses a free unknown
        with no mass."""
        p = self.problem
        mass = p.z.duplicate()
        mass.set(0.0)
        fe = p.continuum.lumped_mass(density)
        mass.array[: p.n_fe] = fe.array_r
        fe.destroy()
        atoms = p.T.createVecLeft()
        if p.on_atoms:
            atoms.array[:] = np.repeat(p.region.beta * p.region.masses, 3)
        share = p.z.duplicate()
        p.T.multTranspose(atoms, share)
        self.carries_atoms = share.array_r > 0  # (n_local,) bool: unknowns with a share of the atoms' mass
        mass.axpy(1.0, share)
        for vec in (atoms, share):
            vec.destroy()
        free = np.ones(p.n_local, dtype=bool)
        free[p.constrained_unknowns()] = False
        self.free_unknowns = free  # (n_local,) bool: unknowns no constraint holds
        massless = p.comm.allreduce(int(np.count_nonzero(mass.array_r[free] <= 0)))
        if massless:
            raise CouplingInputError(f"dynamics: {massless} unknowns move freely but carry no mass (a node with no "
                                     "continuum share and no atom interpolated from it); hold them or refine the mesh")
        self.inverse_mass = mass.duplicate()
        inverse = np.zeros(p.n_local)
        inverse[free] = 1.0 / mass.array_r[free]
        self.inverse_mass.array[:] = inverse
        return mass

    def _check_constraints(self) -> None:
        """The constrained unknowns hold their prescribed values (a run never moves them)."""
        p = self.problem
        gap = p.constraint_gap()
        if gap > 1e-9:
            raise CouplingInputError(f"dynamics: the unknowns are {gap:.3g} Å from their Dirichlet values; solve the "
                                     "problem or set them before starting dynamics")

    def free_atom_distance_A(self) -> np.ndarray:
        """Distance (Å) of each free atom from the handshake, into the core (call on the atom rank)."""
        region = self.problem.region
        return region.handshake.depth(region.X[region.free]) - region.handshake.width_A

    def _loaded_unknowns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local indices of the unknowns the velocity loads move, their values now and their
        velocities (Å/fs at full speed)."""
        p = self.problem
        index, velocity, load_of = [], [], []
        held = np.zeros(p.n_local, dtype=bool)
        held[p.constrained_unknowns()] = True
        for n, load in enumerate(self.loads):
            dofs = p.continuum.boundary_dofs(load.boundary, "velocity load: boundary")
            for c, value in enumerate(load.velocity_A_ps):
                if value is None:
                    continue
                mine = dofs[c]
                loose = p.comm.allreduce(int(np.count_nonzero(~held[mine])))
                if loose:
                    raise CouplingInputError(f"velocity load on {load.boundary!r}: component {'xyz'[c]} of the "
                                             "boundary is not held by a displacement condition; add one (a "
                                             "[[boundary]] of type displacement naming it)")
                index.append(mine)
                velocity.append(np.full(len(mine), value * 1e-3))
                load_of.append(np.full(len(mine), n))
        index = np.concatenate(index).astype(np.int64) if index else np.zeros(0, dtype=np.int64)
        velocity = np.concatenate(velocity) if velocity else np.zeros(0)
        self._load_of = np.concatenate(load_of) if load_of else np.zeros(0, dtype=np.int64)
        if p.comm.allreduce(int(len(np.unique(index)) != len(index))):  # collective: every rank raises
            raise CouplingInputError("velocity loads: two loads move the same nodes (boundaries that share an edge "
                                     "and a component); move each component of a node once")
        return index, p.z.array_r[index].copy(), velocity

    def _load_travel(self, time_fs: float) -> np.ndarray:
        """Displacement (Å) of the moved unknowns since the start, at ``time_fs``."""
        travel = np.array([load.travel_fs(time_fs) for load in self.loads] or [0.0])
        return travel[self._load_of] * self._moved_velocity

    def highest_frequency(self, tolerance: float = 1e-4) -> float:
        """The largest angular frequency (rad/fs) of the coupled system at the current state: the
        square root of the largest eigenvalue of ``M^-1/2 K M^-1/2`` on the free unknowns (``K``
        the Hessian of ``Pi``, applied as a difference of its gradient; SLEPc's Krylov-Schur to
        ``tolerance``). It covers the atoms, the elements and what the blending does to both."""
        from slepc4py import SLEPc

        from .problem import ForwardDifferences

        p = self.problem
        scale = self.inverse_mass.copy()
        scale.sqrtabs()
        hessian = ForwardDifferences(p.gradient_into)  # K, as a difference of the gradient
        hessian.set_base(p.z)
        at, kx = p.z.duplicate(), p.z.duplicate()

        class Operator:  # M^-1/2 K M^-1/2
            def mult(self, mat, x, y):
                at.pointwiseMult(x, scale)
                hessian.apply(at, kx)
                y.pointwiseMult(kx, scale)

        sizes = (p.n_local, p.n_global)
        B = PETSc.Mat().createPython((sizes, sizes), Operator(), comm=p.comm)
        B.setUp()
        eps = SLEPc.EPS().create(p.comm)
        eps.setOperators(B)
        eps.setProblemType(SLEPc.EPS.ProblemType.HEP)
        eps.setWhichEigenpairs(SLEPc.EPS.Which.LARGEST_REAL)
        eps.setDimensions(1)
        eps.setTolerances(tolerance, 1000)
        eps.solve()
        if eps.getConverged() < 1:
            raise CouplingInputError("dynamics: the largest frequency of the coupled system did not converge; give "
                                     "the time step (timestep_fs)")
        largest = eps.getEigenvalue(0).real  # eV/Å^2/amu
        for obj in (eps, B, scale, at, kx, hessian):
            obj.destroy()
        p.gradient_into(p.z, self._work)  # the problem's caches back at the current state
        if not largest > 0:
            raise CouplingInputError(f"dynamics: the largest eigenvalue of M^-1 K is {largest:.3g} eV/Å^2/amu; the "
                                     "state is not stable")
        return float(np.sqrt(largest)) * units.fs

    # -- the state ----------------------------------------------------------------------------------
    @property
    def velocities_A_fs(self) -> np.ndarray:
        """The velocities of this rank's unknowns (Å/fs), a copy."""
        return self.v.array_r * units.fs

    def set_velocities(self, values_A_fs: np.ndarray) -> None:
        """Set the velocities of this rank's unknowns (Å/fs); constrained ones stay at rest."""
        values = np.asarray(values_A_fs, dtype=float).reshape(-1) / units.fs
        self.v.array[:] = np.where(self.free_unknowns, values, 0.0)

    def set_temperature(self, temperature_K: float, seed: int = 0) -> None:
        """Maxwell-Boltzmann velocities on the free atoms at exactly ``temperature_K`` (3N degrees of
        freedom: the free atoms exchange momentum with the continuum; their centre-of-mass momentum
        is removed so that the core does not drift off), everything else at rest."""
        if not (np.isfinite(temperature_K) and temperature_K >= 0):
            raise CouplingInputError(f"temperature_K = {temperature_K!r}: expected a temperature >= 0 K")
        p = self.problem
        values = np.zeros(p.n_local)
        if p.on_atoms and p.n_free > 1:
            m = p.region.masses[p.region.free][:, None]
            rng = np.random.default_rng(seed)
            v = rng.normal(size=(p.n_free, 3)) * np.sqrt(units.kB * max(temperature_K, 0.0) / m)
            v -= (m * v).sum(axis=0) / m.sum()
            kinetic = 0.5 * float((m * v**2).sum())
            target = 0.5 * 3 * p.n_free * units.kB * temperature_K
            v *= np.sqrt(target / kinetic) if kinetic > 0 else 0.0
            values[p.n_fe:] = v.ravel()
        self.v.array[:] = values

    def launch(self, pulse: Pulse, speed_A_fs: float) -> None:
        """Add ``pulse`` to the state: its displacement to the free unknowns (nodes and free atoms,
        at their reference positions; slaved atoms follow the nodes) and its velocity, that of a
        wave running at ``speed_A_fs`` (Å/fs). Constrained unknowns keep their values."""
        positive("pulse speed_A_fs", speed_A_fs, "a positive speed in Å/fs")
        p = self.problem
        x = p.V.tabulate_dof_coordinates()[: p.n_fe // 3]
        if p.on_atoms:
            x = np.vstack([x, p.region.X[p.region.free]])
        du, dv = pulse.fields(x, speed_A_fs)
        dv /= units.fs
        free = self.free_unknowns.reshape(-1, 3)
        held = ~free & (self.mass.array_r.reshape(-1, 3) > 0)  # held unknowns that are part of something
        outside = p.comm.allreduce(float(np.abs(du[held]).max(initial=0.0)), op=MPI.MAX)
        if outside > 1e-6 * abs(pulse.amplitude_A):
            log.warning("the pulse reaches held unknowns (up to %.3g Å there): they keep their values", outside)
        p.z.array[:] = p.z.array_r + np.where(free, du, 0.0).ravel()
        self.v.array[:] = self.v.array_r + np.where(free, dv, 0.0).ravel()
        self._update_force()

    def free_atom_temperature_K(self) -> float:
        """The free atoms' kinetic temperature (K, 3N degrees of freedom)."""
        p = self.problem
        out = None
        if p.on_atoms and p.n_free > 0:
            m = p.region.masses[p.region.free][:, None]
            v = self.v.array_r[p.n_fe:].reshape(-1, 3)
            out = float((m * v**2).sum()) / (3 * p.n_free * units.kB)
        return p.comm.bcast(out, root=p.atom_rank) or 0.0

    def atoms(self):
        """The atoms now (ASE ``Atoms`` on the atom rank, None elsewhere): positions, forces and the
        arrays of :meth:`CoupledProblem.atoms`, and every atom's velocity (``d' = T z'``: slaved atoms
        move with the nodes), in ASE's units."""
        p = self.problem
        velocities, v = p.T.createVecLeft(), self.v.duplicate()
        v.array[:] = self._velocities()
        p.T.mult(v, velocities)
        v.destroy()
        snapshot = p.atoms()
        if snapshot is not None:
            snapshot.set_velocities(velocities.array_r.reshape(-1, 3).copy())
        velocities.destroy()
        return snapshot

    def _velocities(self) -> np.ndarray:
        """This rank's velocities (Å per ASE time unit) with those of the moved unknowns, which the
        integrator keeps at zero (their motion is prescribed, not integrated)."""
        v = self.v.array_r.copy()
        if len(self._moved):
            rate = np.array([load.rate(self.time_fs) for load in self.loads] or [0.0])
            v[self._moved] = rate[self._load_of] * self._moved_velocity / units.fs
        return v

    def nodal_velocity(self) -> np.ndarray:
        """The owned nodal velocities (Å/fs), in the layout of the displacement's owned entries;
        moved boundaries at their prescribed velocity."""
        return self._velocities()[: self.problem.n_fe] * units.fs

    def kinetic_energy(self) -> float:
        """Kinetic energy (eV) of the lumped masses, over all ranks."""
        self._work.pointwiseMult(self.v, self.v)
        return 0.5 * self._work.dot(self.mass)

    def energies(self) -> dict[str, float]:
        """``kinetic`` (eV) and its parts ``kinetic_free_atoms`` and ``kinetic_nodes`` (the
        continuum's and the slaved atoms' share), the parts of ``Pi``
        (:meth:`CoupledProblem.energies`; ``total`` is Pi), ``hamiltonian`` = kinetic + Pi,
        ``bath`` (the energy the frictions and thermostats took out, since the start),
        ``boundary_work`` (done on the system by the velocity loads) and ``conserved`` =
        hamiltonian + bath - boundary_work, and ``free_site_energy`` (the free atoms' site
        energies, a part of ``atoms``: with ``kinetic_free_atoms``, the core's energy), over all
        ranks."""
        p = self.problem
        m, v = self.mass.array_r, self.v.array_r
        free_atoms = 0.5 * float(np.dot(m[p.n_fe:], v[p.n_fe:] ** 2))
        nodes = 0.5 * float(np.dot(m[: p.n_fe], v[: p.n_fe] ** 2))
        local = np.array([free_atoms, nodes, self._bath_local, self._boundary_work_local])
        free_atoms, nodes, bath, work = p.comm.allreduce(local, op=MPI.SUM)
        out = {"kinetic": free_atoms + nodes, "kinetic_free_atoms": free_atoms, "kinetic_nodes": nodes,
               **p.energies()}
        out["hamiltonian"] = out["kinetic"] + out["total"]
        out["bath"], out["boundary_work"] = float(bath), float(work)
        out["free_site_energy"] = p.free_site_energy()
        out["conserved"] = out["hamiltonian"] + out["bath"] - out["boundary_work"]
        return out

    # -- the integrator ------------------------------------------------------------------------------
    def _update_force(self) -> None:
        """``dPi/dz`` at the current unknowns (the force is its negative; the inverse mass, zero
        on the constrained unknowns, keeps them still); the gradient on the moved unknowns kept
        for the boundary work."""
        p = self.problem
        p.gradient_into(p.z, self.gradient)
        self._g_moved = self.gradient.array_r[self._moved].copy()

    def boundary_force(self, boundary: str) -> np.ndarray:
        """The force (eV/Å, x y z) that holds or moves ``boundary``: ``dPi/dz`` summed over its
        unknowns at the current state (the ``coupled`` kind's reaction; the boundary's own nodes'
        inertia left out), over all ranks (collective). Times the boundary's velocity it is the
        rate of the boundary work."""
        if boundary not in self._boundary_dofs:
            self._boundary_dofs[boundary] = self.problem.continuum.boundary_dofs(boundary, "boundary")
        g = self.gradient.array_r
        local = np.array([g[dofs].sum() for dofs in self._boundary_dofs[boundary]])
        return self.problem.comm.allreduce(local, op=MPI.SUM)

    def _kick(self) -> None:
        self._work.pointwiseMult(self.gradient, self.inverse_mass)
        self.v.axpy(-0.5 * self.dt, self._work)

    def _drift(self, fraction: float, time_fs: float) -> None:
        """``z += fraction dt v``; the moved unknowns to where their loads have them at ``time_fs``."""
        self.problem.z.axpy(fraction * self.dt, self.v)
        if len(self._moved):
            self.problem.z.array[self._moved] = self._moved_start + self._load_travel(time_fs)

    def _bath(self) -> None:
        """The O step (:class:`~coupling.baths.OStep`); the kinetic energy it takes out is added
        to the bath."""
        before = self.v.array_r.copy()
        v = self._o_step.apply(before, self.rng)
        self.v.array[:] = v
        self._bath_local += 0.5 * float(np.dot(self.mass.array_r, before**2 - v**2))

    def run(self, steps: int) -> None:
        """Advance ``steps`` steps of B A O A B (velocity Verlet when nothing has friction)."""
        bath = self._o_step.active
        for _ in range(int(steps)):
            t0 = self.time_fs
            g0, z0 = self._g_moved, self.problem.z.array_r[self._moved].copy()
            self._kick()
            self._check_step()
            if bath:
                self._drift(0.5, t0 + 0.5 * self.timestep_fs)
                self._bath()
                self._drift(0.5, t0 + self.timestep_fs)
            else:
                self._drift(1.0, t0 + self.timestep_fs)
            self._update_force()
            self._kick()
            if len(self._moved):
                dz = self.problem.z.array_r[self._moved] - z0
                self._boundary_work_local += 0.5 * float(np.dot(g0 + self._g_moved, dz))
            self.steps_done += 1
            self.time_fs += self.timestep_fs

    def _check_step(self) -> None:
        """Stop before the drift of a step that would move an unknown by more than
        :data:`LARGEST_STEP_A` or that holds a non-finite velocity (collective): the positions are
        still the last good ones (the velocities have had their first half kick)."""
        p = self.problem
        speed = np.abs(self.v.array_r)
        speed[~np.isfinite(speed)] = np.inf
        here = float(speed.max(initial=0.0)) * self.dt
        largest = p.comm.allreduce(here, op=MPI.MAX)
        if largest > LARGEST_STEP_A:
            from atomistic.errors import MDBlowUp

            where = None
            if here == largest:
                k = int(np.argmax(speed))
                if k >= p.n_fe:
                    i = int(p.region.free[(k - p.n_fe) // 3])
                    where = f"free atom {i} at {np.round(p.region.X[i], 2).tolist()} Å"
                else:
                    x = p.V.tabulate_dof_coordinates()[k // 3]
                    where = f"the node at {np.round(x, 2).tolist()} Å (mass {self.mass.array_r[k]:.3g} amu)"
            where = p.comm.allreduce([where] if where else [], op=MPI.SUM)[0]
            raise MDBlowUp(f"coupled dynamics blew up at step {self.steps_done + 1} (t = {self.time_fs:g} fs): "
                           f"{where} would move {largest:.3g} Å in one step (more than {LARGEST_STEP_A} Å); the "
                           "time step is too long or the loading too violent for the material", step=self.steps_done)

    def reverse(self) -> None:
        """Flip every velocity (time reversal: without baths or moving boundaries the same number
        of steps returns to the start)."""
        self.v.scale(-1.0)

    # -- checkpoints ---------------------------------------------------------------------------------
    def state(self) -> tuple[np.ndarray, dict]:
        """What a restart needs: this rank's part (the unknowns, their velocities, where the moved
        unknowns started, this rank's sums of the bath and the boundary work) as one float64
        array, and what every rank shares (time, steps, time step, the noise generator's state),
        JSON-able. Collective."""
        p = self.problem
        local = np.concatenate([p.z.array_r, self.v.array_r, self._moved_start,
                                [self._bath_local, self._boundary_work_local]])
        rng = p.comm.bcast(self.rng.bit_generator.state if p.on_atoms else None, root=p.atom_rank)
        return local, {"time_fs": self.time_fs, "steps": self.steps_done, "timestep_fs": self.timestep_fs,
                       "rng": rng}

    def restore(self, local: np.ndarray, shared: dict) -> None:
        """Continue from a :meth:`state` of a run of the same problem on the same ranks: the run
        goes on as if it had never stopped (bit for bit). Collective."""
        p, n, k = self.problem, self.problem.n_local, len(self._moved)
        local = np.asarray(local, dtype=float)
        if p.comm.allreduce(int(local.shape != (2 * n + k + 2,))):  # collective: every rank raises
            raise CouplingInputError("dynamics: a saved state does not fit this problem (another number of "
                                     "unknowns or moved boundary values on some rank)")
        p.z.array[:] = local[:n]
        self.v.array[:] = local[n: 2 * n]
        self._moved_start = local[2 * n: 2 * n + k].copy()
        self._bath_local, self._boundary_work_local = float(local[-2]), float(local[-1])
        self.time_fs, self.steps_done = float(shared["time_fs"]), int(shared["steps"])
        if p.on_atoms:
            self.rng.bit_generator.state = shared["rng"]
        self.set_timestep(float(shared["timestep_fs"]))
        self._update_force()
