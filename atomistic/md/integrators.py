"""One MD time step, as a composition of the symmetric splitting B A O A B.

B  half kick        p <- p + (dt/2) F
A  half drift       x <- x + (dt/2) p / m
O  thermostat       Langevin: p <- c p + sqrt((1 - c^2) m kB T) xi, c = exp(-dt / tau)  (BAOAB,
                    Leimkuhler & Matthews 2013); Bussi: p <- alpha p with alpha drawn so that the
                    kinetic energy follows its exact canonical relaxation (Bussi, Donadio &
                    Parrinello 2007, eq. A7)
S  cell rescaling   after the drifts, before the force call (NPT only), see :func:`cell_rescaling`

Without O and S this is velocity Verlet (NVE). Every operation is out of place and on the
device: a step never waits for the host.
"""

from __future__ import annotations

import math

import torch
from ase import units

from atomistic.md.forcefield import VerletForceField
from atomistic.md.settings import Barostat, Thermostat
from atomistic.md.state import MDState, System, kinetic_energy, kinetic_tensor
from atomistic.potential.structure import cell_volume


class Propagator:
    """The step function of one run: ``state -> state``, dt in fs."""

    def __init__(self, system: System, forcefield: VerletForceField, timestep_fs: float,
                 thermostat: Thermostat | None, barostat: Barostat | None, generator: torch.Generator):
        self.system = system
        self.forcefield = forcefield
        self.dt = timestep_fs * units.fs
        self.thermostat = thermostat
        self.barostat = barostat
        self.generator = generator
        self.inv_mass = system.mobile / system.masses  # fixed atoms never move
        if thermostat is not None:
            self.c = math.exp(-self.dt / (thermostat.time_fs * units.fs))
            self.kT = units.kB * thermostat.temperature_K
            # Bussi's exact resampling needs a chi-square variate with n_dof - 1 degrees of
            # freedom per structure: the sum of squares of exactly that many of the normals drawn
            self._chi_mask = _first_k_mask(system, (system.n_dof - 1).clamp(min=0))

    def step(self, state: MDState, stress: bool = False) -> MDState:
        """One step; ``stress``: also compute the virial stress (always done under a barostat, and
        whenever the force field's ``stress`` default is on)."""
        dt, f = self.dt, self.system.mobile
        log_strain = self._barostat_strain(state) if self.barostat is not None else None
        p = state.momenta + 0.5 * dt * state.forces * f
        x = state.positions + 0.5 * dt * p * self.inv_mass
        if self.thermostat is not None:
            p = self._langevin(p) if self.thermostat.kind == "langevin" else self._bussi(p)
        x = x + 0.5 * dt * p * self.inv_mass
        cell = state.cell
        if log_strain is not None:
            x, p, cell = cell_rescaling(self.system, x, p, cell, log_strain)
        out = self.forcefield.evaluate(x, cell, stress=True if stress or self.barostat is not None else None)
        p = p + 0.5 * dt * out.forces * f
        return MDState(positions=x, momenta=p, cell=cell, forces=out.forces, energy=out.energy,
                       stress=out.stress, step=state.step + 1)

    def _normal(self, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.shape, generator=self.generator, device=like.device, dtype=like.dtype)

    def _langevin(self, p: torch.Tensor) -> torch.Tensor:
        sigma = torch.sqrt((1.0 - self.c**2) * self.system.masses * self.kT)
        return (self.c * p + sigma * self._normal(p)) * self.system.mobile

    def _bussi(self, p: torch.Tensor) -> torch.Tensor:
        system = self.system
        ke = kinetic_energy(system, p)
        target = 0.5 * system.n_dof * self.kT
        r1 = torch.randn(system.n_structures, generator=self.generator, device=p.device, dtype=p.dtype)
        squares = self._normal(p) ** 2 * self._chi_mask
        chi = system.per_structure(squares.sum(1))
        fac = (1.0 - self.c) * target / (system.n_dof.clamp(min=1) * ke.clamp(min=1e-300))
        root_c, root_f = math.sqrt(self.c), torch.sqrt(fac)
        # alpha^2 = (sqrt(c) + r1 sqrt(f))^2 + f chi; the sign of alpha is that of the first term
        alpha2 = (root_c + r1 * root_f) ** 2 + fac * chi
        alpha = torch.sign(root_c + r1 * root_f) * torch.sqrt(alpha2)
        alpha = torch.where(ke > 0, alpha, torch.ones_like(alpha))
        return p * alpha[system.batch, None]

    def _barostat_strain(self, state: MDState) -> torch.Tensor:
        """(B, 3) log-strain increments of the three axes for this step, drawn from the pressure
        at the start of the step (explicit Euler–Maruyama)."""
        return barostat_log_strain(self.system, state, self.barostat, self.kT, self.dt, self.generator)


def barostat_log_strain(system: System, state: MDState, barostat: Barostat, kT: float, dt: float,
                        generator: torch.Generator) -> torch.Tensor:
    """Stochastic cell rescaling (Bernetti & Bussi 2020), first-order in time.

    For the log-lengths eps_a of the three axes (isotropic: eps = ln V, shared), overdamped
    Langevin dynamics with mobility mu = beta_T / (d tau V) samples
    rho ~ V^N exp(-(U + K + P0 V) / kT) when the momenta are scaled with the cell, and gives

        d eps_a = -(beta_T / (d tau)) (P0 - P_aa) dt + sqrt(2 kT beta_T dt / (d tau V)) xi_a,

    with d = 3 (anisotropic) or 1 (isotropic, P = tr(P) / 3, eps = ln V) and P_aa the kinetic
    plus virial pressure. (The Itô drift of the volume-dependent mobility cancels the Jacobian
    term kT / V.) Returns (B, 3) increments of ln L_a.
    """
    volume = cell_volume(state.cell)
    pk = torch.diagonal(kinetic_tensor(system, state.momenta), dim1=1, dim2=2) / volume[:, None]
    p_aa = pk - torch.diagonal(state.stress, dim1=1, dim2=2)  # (B, 3), eV/Å^3
    p0 = barostat.pressure_GPa * units.GPa
    beta = barostat.compressibility_per_GPa / units.GPa
    tau = barostat.time_fs * units.fs
    xi = torch.randn(volume.shape[0], 3, generator=generator, device=volume.device, dtype=volume.dtype)
    if barostat.kind == "isotropic":
        p = p_aa.mean(1, keepdim=True)
        d_ln_v = -(beta / tau) * (p0 - p) * dt + torch.sqrt(2.0 * kT * beta * dt / (tau * volume))[:, None] * xi[:, :1]
        return (d_ln_v / 3.0).expand(-1, 3)
    return -(beta / (3 * tau)) * (p0 - p_aa) * dt + torch.sqrt(2.0 * kT * beta * dt / (3 * tau * volume))[:, None] * xi


def cell_rescaling(system: System, positions, momenta, cell, log_strain):
    """Scale Cartesian axis a by exp(log_strain[:, a]): positions and cell rows stretch, momenta
    shrink by the inverse factor."""
    factor = torch.exp(log_strain)  # (B, 3)
    per_atom = factor[system.batch]
    return positions * per_atom, momenta / per_atom, cell * factor[:, None, :]


def _first_k_mask(system: System, k: torch.Tensor) -> torch.Tensor:
    """(n, 3) float mask selecting the first ``k[b]`` of the 3 n_b momentum components of each
    structure b (in atom order)."""
    n = system.masses.shape[0]
    batch = system.batch
    counts = torch.bincount(batch, minlength=system.n_structures)
    start = torch.cumsum(counts, 0) - counts
    local = (torch.arange(n, device=batch.device) - start[batch])[:, None] * 3 + torch.arange(3, device=batch.device)
    return (local < k[batch, None]).to(system.masses.dtype)
