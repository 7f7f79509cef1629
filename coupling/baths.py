"""The baths of coupled dynamics: the friction on each unknown and the O step of B A O A B.

:class:`Frictions` adds up the frictions that :mod:`coupling.dynamics` documents (the damping, the
Langevin thermostat, the stadium, the cold nodes under a thermostatted core, the dashpots);
:class:`OStep` applies them at one time step, exactly for a friction ``gamma_k`` and a bath at
``T_k`` on each unknown: ``v <- c v + sqrt((1 - c^2) kB T_k / M_k) xi``, ``c = exp(-gamma_k dt)``,
then Bussi's rescaling of the free atoms' kinetic energy when the thermostat is Bussi's. Rates in
1/fs, velocities in Å per ASE time unit, masses in amu.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from ase import units

from continuum.backend import load_dolfinx

from .errors import CouplingInputError
from .handshake import FACES

load_dolfinx()
from mpi4py import MPI  # noqa: E402

log = logging.getLogger(__name__)

#: Voigt index of the shear pair (a, b)
_VOIGT = {(1, 2): 3, (2, 1): 3, (0, 2): 4, (2, 0): 4, (0, 1): 5, (1, 0): 5}


@dataclass(frozen=True)
class Frictions:
    """The frictions of a :class:`~coupling.dynamics.CoupledDynamics` on this rank's unknowns."""

    rate: np.ndarray  # (n_local,) 1/fs: the whole friction of each unknown
    warm: np.ndarray  # (n_local,) 1/fs: its part whose bath is at the thermostat's temperature
    noisy: np.ndarray  # (n_local,) bool: unknowns with a warm bath

    @classmethod
    def of(cls, dynamics, dashpots: tuple[str, ...], elastic_constants_GPa) -> Frictions:
        """The damping, the Langevin thermostat and the stadium on the free atoms, the cold baths
        of the nodes that carry atoms under a thermostat, the dashpots on their faces' nodes.
        Collective; bad settings raise :class:`CouplingInputError` on every rank."""
        p, free = dynamics.problem, dynamics.free_unknowns
        thermostat, stadium = dynamics.thermostat, dynamics.stadium
        rate = np.where(free, dynamics.damping_per_fs, 0.0)
        noisy = np.zeros(p.n_local, dtype=bool)
        warm = np.zeros(p.n_local)
        atoms = slice(p.n_fe, p.n_local)
        if stadium is not None:
            handshake = p.comm.bcast(p.region.handshake.width_A if p.on_atoms else None, root=p.atom_rank)
            if stadium.width_A > handshake + 1e-9:
                raise CouplingInputError(f"stadium_A = {stadium.width_A:g} Å: wider than the handshake "
                                         f"({handshake:g} Å); the absorbing layer lies in the free atoms next to it")
            if p.on_atoms:
                layer = np.repeat(stadium.friction_per_fs(dynamics.free_atom_distance_A()), 3)
                rate[atoms] += layer
                warm[atoms] += layer
                noisy[atoms] |= layer > 0
            n_layer = p.comm.bcast(int(np.count_nonzero(noisy[atoms]) // 3) if p.on_atoms else None,
                                   root=p.atom_rank)
            if n_layer == 0:
                log.warning("stadium_A = %g Å holds no free atom: no absorbing layer", stadium.width_A)
        if thermostat is not None and thermostat.kind == "langevin" and p.on_atoms:
            rate[atoms] += 1.0 / thermostat.time_fs
            warm[atoms] += 1.0 / thermostat.time_fs
            noisy[atoms] = True
        _warn_finite_temperature_hazards(p, free, thermostat is not None, stadium is not None)
        if thermostat is not None:  # the nodes that carry atoms, at 0 K (see coupling.dynamics)
            carriers = dynamics.carries_atoms[: p.n_fe] & free[: p.n_fe]
            rate[: p.n_fe][carriers] += 1.0 / thermostat.time_fs
        if dashpots:
            rate[: p.n_fe] += _dashpot_rates(p, dynamics.density, dynamics.inverse_mass.array_r[: p.n_fe],
                                             dashpots, elastic_constants_GPa)
        return cls(rate, warm, noisy)


def _warn_finite_temperature_hazards(p, free: np.ndarray, thermostat: bool, stadium: bool) -> None:
    """Warn (collectively) of soft nodes inside the core and of a large dead load on free atoms,
    the two ways a warm core has been seen to blow up."""
    x = p.V.tabulate_dof_coordinates()[: p.n_fe // 3]
    inside = np.repeat(p.handshake.depth(x) > p.handshake.width_A + 1e-6, 3) & free[: p.n_fe]
    inside = p.comm.allreduce(int(np.count_nonzero(inside)) // 3)
    if inside and (thermostat or stadium):
        log.warning("%d nodes inside the core carry a sliver of the handshake (its inner edge does not lie on "
                    "element faces): they are soft, and at finite temperature the atoms can drive them until "
                    "their elements' Cauchy-Born energy loses convexity; put the core's edges on element "
                    "faces (atoms' box and handshake width in whole elements)", inside)
    dead = p.dead_load
    dead = float(np.abs(dead.array_r[p.n_fe:]).max(initial=0.0)) if dead is not None else 0.0
    dead = p.comm.allreduce(dead, op=MPI.MAX)
    if dead > 0.05 and thermostat:
        log.warning("the ghost-force correction puts constant forces of up to %.3g eV/Å on free atoms: a dead "
                    "load, a potential unbounded below; at finite temperature it can pull a surface atom off "
                    "(cases/dynamics/hot_bar.toml). Consider ghost_force_correction=False for hot runs", dead)


def _dashpot_rates(p, density: dict[str, float], inverse_mass: np.ndarray, dashpots: tuple[str, ...],
                   elastic_constants_GPa) -> np.ndarray:
    """The dashpots' friction rates (1/fs) on this rank's finite-element unknowns (Lysmer &
    Kuhlemeyer: ``Z = sqrt(rho C)`` per area, lumped on the nodes by their share of the face)."""
    if elastic_constants_GPa is None:
        raise CouplingInputError("dashpots: give the continuum's elastic constants (elastic_constants_GPa, "
                                 "6 x 6 Voigt, GPa) for their impedance")
    C = np.asarray(elastic_constants_GPa, dtype=float) * units.GPa
    if C.shape != (6, 6) or not np.all(np.isfinite(C)) or np.any(np.diag(C) <= 0):
        raise CouplingInputError("elastic_constants_GPa: expected the continuum's 6 x 6 Voigt constants (GPa), "
                                 "finite, with a positive diagonal")
    if len(set(density.values())) != 1:
        raise CouplingInputError(f"dashpots: the bodies have different densities {density}; dashpots need one "
                                 "material")
    rho = next(iter(density.values()))
    rate = np.zeros(p.n_fe)
    for face in dashpots:
        if face not in FACES:
            raise CouplingInputError(f"dashpots = {list(dashpots)}: {face!r} is not an outer face of the box; "
                                     f"expected some of {list(FACES)}")
        areas = p.continuum.face_areas(face, "dashpots")
        normal = FACES.index(face) // 2
        stiffness = [C[normal, normal] if c == normal else C[_VOIGT[normal, c], _VOIGT[normal, c]] for c in range(3)]
        impedance = np.sqrt(rho * np.array(stiffness))  # amu / (Å^2 ASE time)
        rate += (areas.array_r.reshape(-1, 3) * impedance).ravel() * inverse_mass * units.fs
        areas.destroy()
    return rate


class OStep:
    """The O step of :class:`Frictions` ``frictions`` at ``timestep_fs`` (fs), on unknowns of
    lumped masses ``mass`` (amu, this rank's), with the ``thermostat``'s temperature on the warm
    baths (none: every bath at 0 K) and its Bussi rescaling of the free atoms when it is Bussi's."""

    def __init__(self, problem, frictions: Frictions, mass: np.ndarray, thermostat, timestep_fs: float):
        p = self.problem = problem
        self.mass, self.thermostat = mass, thermostat
        self.c = np.exp(-frictions.rate * timestep_fs)
        temperature = thermostat.temperature_K if thermostat is not None else 0.0
        self.sigma = None  # noise amplitude on the free atoms' unknowns (atom rank)
        noisy = frictions.noisy
        if temperature > 0 and p.on_atoms and np.any(noisy):
            sigma = np.zeros(p.n_local)
            # exact for the sum of a warm friction (bath at T) and a cold one (0 K): the stationary
            # variance is (warm / total) kB T / m
            share = frictions.warm[noisy] / frictions.rate[noisy]
            sigma[noisy] = np.sqrt((1.0 - self.c[noisy] ** 2) * share * units.kB * temperature / mass[noisy])
            self.sigma = sigma[p.n_fe:]
        self.bussi = None
        if thermostat is not None and thermostat.kind == "bussi":
            self.bussi = np.exp(-timestep_fs / thermostat.time_fs)
        has_friction = p.comm.allreduce(bool(np.any(frictions.rate > 0)), op=MPI.LOR)
        self.active = has_friction or self.bussi is not None  # collective: the same on every rank

    def apply(self, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The velocities (this rank's, Å per ASE time unit) after the step; the noise drawn from
        ``rng`` on the atom rank only."""
        p = self.problem
        out = self.c * v
        if self.sigma is not None:
            out[p.n_fe:] += self.sigma * rng.standard_normal(p.n_local - p.n_fe)
        if self.bussi is not None and p.on_atoms and p.n_free > 0:
            out[p.n_fe:] *= self._bussi_factor(out[p.n_fe:], self.mass[p.n_fe:], rng)
        return out

    def _bussi_factor(self, v: np.ndarray, m: np.ndarray, rng: np.random.Generator) -> float:
        """The factor of the stochastic velocity rescaling (Bussi, Donadio & Parrinello 2007,
        eq. A7) that takes the free atoms' kinetic energy one step towards the canonical one."""
        n = 3 * self.problem.n_free
        kinetic = 0.5 * float(np.dot(m, v * v))
        if kinetic <= 0:
            return 1.0
        target = 0.5 * n * units.kB * self.thermostat.temperature_K
        c = self.bussi
        r1 = rng.standard_normal()
        chi = rng.chisquare(n - 1) if n > 1 else 0.0
        f = (1.0 - c) * target / (n * kinetic)
        root = np.sqrt(c) + r1 * np.sqrt(f)
        return float(np.sign(root) * np.sqrt(root**2 + f * chi))
