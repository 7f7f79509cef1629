"""The MD state (what changes every step) and the system (what does not).

Momenta are ASE's: amu Å / t_ASE, where ``t_ASE = 1 / units.fs`` fs, so that p^2 / 2m is in eV.
Everything is a device tensor; nothing here talks to the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from ase import units

from atomistic.potential.structure import Structures, cell_volume


@dataclass(frozen=True)
class MDState:
    """positions (n, 3) Å; momenta (n, 3) amu Å/t_ASE; cell (B, 3, 3) Å; forces (n, 3) eV/Å;
    energy (B,) potential energy, eV; stress (B, 3, 3) virial stress, eV/Å^3 (ASE sign) or None;
    step: completed time steps. Integrators never modify a state in place: they return a new one,
    so an old state is a free snapshot."""

    positions: torch.Tensor
    momenta: torch.Tensor
    cell: torch.Tensor
    forces: torch.Tensor
    energy: torch.Tensor
    stress: torch.Tensor | None
    step: int


@dataclass(frozen=True)
class System:
    """Constant per-atom and per-structure data.

    masses (n, 1) amu; mobile (n, 1) 1.0 for atoms that move, 0.0 for fixed ones;
    batch (n,) structure index; n_dof (B,) kinetic degrees of freedom; n_atoms (B,) atoms;
    periodic (B,) bool, fully periodic cell.
    """

    structures: Structures
    masses: torch.Tensor
    mobile: torch.Tensor
    n_dof: torch.Tensor
    n_atoms: torch.Tensor
    periodic: torch.Tensor

    @property
    def batch(self) -> torch.Tensor:
        return self.structures.batch

    @property
    def n_structures(self) -> int:
        return self.structures.n_structures

    def per_structure(self, per_atom: torch.Tensor) -> torch.Tensor:
        """Sum a per-atom quantity (n, ...) over each structure -> (B, ...)."""
        out = per_atom.new_zeros((self.n_structures, *per_atom.shape[1:]))
        return out.index_add(0, self.batch, per_atom)


def kinetic_energy(system: System, momenta: torch.Tensor) -> torch.Tensor:
    """(B,) kinetic energy, eV."""
    return 0.5 * system.per_structure((momenta * momenta / system.masses).sum(1))


def kinetic_tensor(system: System, momenta: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) sum_i p_i p_i^T / m_i, eV (twice the kinetic-energy tensor)."""
    return system.per_structure(momenta[:, :, None] * momenta[:, None, :] / system.masses[:, :, None])


def temperature(system: System, momenta: torch.Tensor) -> torch.Tensor:
    """(B,) instantaneous temperature 2 K / (n_dof kB), K."""
    return 2.0 * kinetic_energy(system, momenta) / (system.n_dof.clamp(min=1) * units.kB)


def pressure(system: System, state: MDState) -> torch.Tensor:
    """(B,) instantaneous pressure (kinetic + virial), eV/Å^3; NaN without a periodic cell."""
    volume = cell_volume(state.cell)
    kinetic = torch.diagonal(kinetic_tensor(system, state.momenta), dim1=1, dim2=2).sum(1) / (3.0 * volume)
    virial = -torch.diagonal(state.stress, dim1=1, dim2=2).sum(1) / 3.0
    return torch.where(system.periodic, kinetic + virial, torch.nan)


def maxwell_boltzmann(system: System, temperature_K: float, generator: torch.Generator,
                      remove_drift: torch.Tensor) -> torch.Tensor:
    """Momenta (n, 3) drawn at ``temperature_K``, centre-of-mass momentum removed where
    ``remove_drift`` (B,) is True, then scaled so each structure is exactly at that temperature."""
    m = system.masses
    p = torch.randn(m.shape[0], 3, generator=generator, device=m.device, dtype=m.dtype)
    p = p * torch.sqrt(m * units.kB * temperature_K) * system.mobile
    total_p = system.per_structure(p)
    total_m = system.per_structure(m * system.mobile)
    drift = torch.where(remove_drift[:, None], total_p / total_m.clamp(min=1e-300), torch.zeros_like(total_p))
    p = (p - m * drift[system.batch]) * system.mobile
    ke = kinetic_energy(system, p)
    target = 0.5 * system.n_dof * units.kB * temperature_K
    scale = torch.where(ke > 0, torch.sqrt(target / ke.clamp(min=1e-300)), torch.zeros_like(ke))
    return p * scale[system.batch, None]
