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

Velocity Verlet on ``z`` (symplectic and time reversible): one evaluation of the coupled gradient
(the atoms' forces, the continuum's internal forces, the ghost-force correction: the exact gradient
of ``Pi``) per step. Constrained unknowns (Dirichlet values, nodes no energy reaches) keep their
values. An optional velocity damping ``exp(-gamma dt)`` after each step takes the kinetic energy
out (to settle on the static solution; off for energy conservation).

Units: Å, eV, amu; time in fs at the API (velocities in Å/fs), ASE's time unit inside.
"""

from __future__ import annotations

import logging

import numpy as np
from ase import units

from continuum.backend import load_dolfinx

from .errors import CouplingInputError

load_dolfinx()
from petsc4py import PETSc  # noqa: E402  (slepc4py is imported where it is used, after DOLFINx's set-up)

log = logging.getLogger(__name__)

#: the automatic time step, as a fraction of the shortest period (the MD engine's rule)
TIMESTEP_FRACTION = 1 / 20

#: atoms in a conventional cell of each lattice
ATOMS_PER_CELL = {"fcc": 4, "bcc": 2, "sc": 1}


def crystal_density_amu_A3(mass_amu: float, lattice: str, a0_A: float) -> float:
    """Mass per volume (amu/Å^3) of a cubic crystal of atoms of ``mass_amu`` with lattice constant
    ``a0_A`` (Å): the continuum's density, from the crystal it stands for."""
    if lattice not in ATOMS_PER_CELL:
        raise CouplingInputError(f"lattice = {lattice!r}: expected one of {sorted(ATOMS_PER_CELL)}")
    return ATOMS_PER_CELL[lattice] * mass_amu / a0_A**3


class CoupledDynamics:
    """Explicit dynamics of ``problem`` (a :class:`~coupling.problem.CoupledProblem`) from its
    current state (its unknowns, the Dirichlet values in them: solve or set them first), at rest
    until :meth:`set_temperature` or :attr:`velocities` say otherwise.

    ``density_amu_A3``: the continuum's density (amu/Å^3), one number or one per body (see
    :func:`crystal_density_amu_A3`); ``timestep_fs`` (None: :data:`TIMESTEP_FRACTION` of the
    shortest period of the coupled system, :meth:`highest_frequency`); ``damping_per_fs``: the
    rate ``gamma`` of the velocity damping (0: none, Hamiltonian dynamics). Collective: every rank
    makes one."""

    def __init__(self, problem, density_amu_A3: float | dict[str, float], timestep_fs: float | None = None, *,
                 damping_per_fs: float = 0.0):
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
        self.damping_per_fs = float(damping_per_fs)
        self.mass = self._lumped_mass(density)
        self.time_fs, self.steps_done = 0.0, 0
        self._check_constraints()
        self.v = p.z.duplicate()  # velocities of the unknowns, Å per ASE time unit
        self.v.set(0.0)
        self.force = p.z.duplicate()
        self._work = p.z.duplicate()
        self.highest_frequency_per_fs = None
        if timestep_fs is None:
            self.highest_frequency_per_fs = self.highest_frequency()
            timestep_fs = TIMESTEP_FRACTION * 2 * np.pi / self.highest_frequency_per_fs
            log.info("time step %.3g fs: 1/%d of the shortest period of the coupled system (%.3g fs)", timestep_fs,
                     round(1 / TIMESTEP_FRACTION), 2 * np.pi / self.highest_frequency_per_fs)
        self.set_timestep(timestep_fs)
        self._update_force()

    def set_timestep(self, timestep_fs: float) -> None:
        """Use ``timestep_fs`` (fs) from the next step on."""
        if not (np.isfinite(timestep_fs) and timestep_fs > 0):
            raise CouplingInputError(f"timestep_fs = {timestep_fs!r}: expected a positive time step in fs")
        self.timestep_fs = float(timestep_fs)
        self.dt = self.timestep_fs * units.fs

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
        p.T.multTransposeAdd(atoms, mass, mass)
        atoms.destroy()
        free = np.ones(p.n_local, dtype=bool)
        free[p.constrained_unknowns()] = False
        self._free = free
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
        self.v.array[:] = np.where(self._free, values, 0.0)

    def set_temperature(self, temperature_K: float, seed: int = 0) -> None:
        """Maxwell-Boltzmann velocities on the free atoms at exactly ``temperature_K`` (their
        centre-of-mass momentum removed, 3N - 3 degrees of freedom), everything else at rest."""
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
            target = 0.5 * (3 * p.n_free - 3) * units.kB * temperature_K
            v *= np.sqrt(target / kinetic) if kinetic > 0 else 0.0
            values[p.n_fe:] = v.ravel()
        self.v.array[:] = values

    def free_atom_temperature_K(self) -> float:
        """The free atoms' kinetic temperature (K, 3N - 3 degrees of freedom)."""
        p = self.problem
        out = None
        if p.on_atoms and p.n_free > 1:
            m = p.region.masses[p.region.free][:, None]
            v = self.v.array_r[p.n_fe:].reshape(-1, 3)
            out = float((m * v**2).sum()) / ((3 * p.n_free - 3) * units.kB)
        return p.comm.bcast(out, root=p.atom_rank) or 0.0

    def atoms(self):
        """The atoms now (ASE ``Atoms`` on the atom rank, None elsewhere): positions, forces and the
        arrays of :meth:`CoupledProblem.atoms`, and every atom's velocity (``d' = T z'``: slaved atoms
        move with the nodes), in ASE's units."""
        p = self.problem
        velocities = p.T.createVecLeft()
        p.T.mult(self.v, velocities)
        snapshot = p.atoms()
        if snapshot is not None:
            snapshot.set_velocities(velocities.array_r.reshape(-1, 3).copy())
        velocities.destroy()
        return snapshot

    def kinetic_energy(self) -> float:
        """Kinetic energy (eV) of the lumped masses, over all ranks."""
        self._work.pointwiseMult(self.v, self.v)
        return 0.5 * self._work.dot(self.mass)

    def energies(self) -> dict[str, float]:
        """``kinetic``, the parts of ``Pi`` (:meth:`CoupledProblem.energies`; ``total`` is Pi) and
        ``hamiltonian`` = kinetic + Pi (eV), over all ranks."""
        out = {"kinetic": self.kinetic_energy(), **self.problem.energies()}
        out["hamiltonian"] = out["kinetic"] + out["total"]
        return out

    # -- the integrator ------------------------------------------------------------------------------
    def _update_force(self) -> None:
        """``force = -dPi/dz`` at the current unknowns, zero on the constrained ones."""
        p = self.problem
        p.gradient_into(p.z, self.force)
        self.force.scale(-1.0)
        self.force.array[~self._free] = 0.0

    def run(self, steps: int) -> None:
        """Advance ``steps`` velocity-Verlet steps (each followed by the damping, if any)."""
        p, dt = self.problem, self.dt
        damping = np.exp(-self.damping_per_fs * self.timestep_fs)
        for _ in range(int(steps)):
            self._work.pointwiseMult(self.force, self.inverse_mass)
            self.v.axpy(0.5 * dt, self._work)
            p.z.axpy(dt, self.v)
            self._update_force()
            self._work.pointwiseMult(self.force, self.inverse_mass)
            self.v.axpy(0.5 * dt, self._work)
            if damping != 1.0:
                self.v.scale(damping)
            self.time_fs += self.timestep_fs
            self.steps_done += 1

    def reverse(self) -> None:
        """Flip every velocity (time reversal: the same number of steps returns to the start)."""
        self.v.scale(-1.0)
