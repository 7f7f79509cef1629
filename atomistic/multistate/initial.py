"""Initial conditions of a swarm of surface-hopping trajectories, as (T, N, 3) batches.

Positions in Å, momenta in amu Å/fs, masses (N,) in amu; everything float64 on ``device``.

    particle_initial_conditions   one particle of Tully's mass, all trajectories alike
    thermal_initial_conditions    a molecule at rest geometry, Maxwell–Boltzmann momenta per trajectory

The thermal momenta *sample* the Maxwell–Boltzmann distribution: each trajectory's kinetic energy
fluctuates as it should across a swarm. :func:`atomistic.md.state.maxwell_boltzmann` is a different
thing on purpose: it starts one MD trajectory and rescales it to exactly the target temperature,
which would remove the energy spread a swarm of trajectories must carry (for a diatomic, every
trajectory would get the same kinetic energy). Drawn with NumPy's ``default_rng(seed)``.
"""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms, units

from atomistic.multistate.fssh import AU_MOMENTUM
from atomistic.multistate.models import TULLY_MASS_AMU


def particle_initial_conditions(trajectories: int, *, x0_bohr: float, y0_bohr: float, momentum_au: float,
                                device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``trajectories`` copies of one particle of Tully's mass (:data:`TULLY_MASS_AMU`) at
    (``x0_bohr``, ``y0_bohr``, 0) bohr with momentum ``momentum_au`` (ħ/bohr) along x.

    Returns positions (T, 1, 3) Å, momenta (T, 1, 3) amu Å/fs and masses (1,) amu."""
    pos = torch.zeros(trajectories, 1, 3, dtype=torch.float64, device=device)
    pos[:, 0, 0], pos[:, 0, 1] = x0_bohr * units.Bohr, y0_bohr * units.Bohr
    mom = torch.zeros_like(pos)
    mom[:, 0, 0] = momentum_au * AU_MOMENTUM
    return pos, mom, np.array([TULLY_MASS_AMU])


def thermal_initial_conditions(atoms: Atoms, trajectories: int, *, temperature_K: float, seed: int,
                               device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``trajectories`` copies of ``atoms`` at their positions, each with its own Maxwell–Boltzmann
    momenta at ``temperature_K`` (0: at rest) and no centre-of-mass drift.

    Draws ``default_rng(seed).normal(size=(T, N, 3))`` once for all trajectories (scaled by
    sqrt(m kB T)). Returns positions (T, N, 3) Å, momenta (T, N, 3) amu Å/fs and masses (N,) amu."""
    rng = np.random.default_rng(seed)
    m = atoms.get_masses()
    p = rng.normal(size=(trajectories, len(m), 3)) * np.sqrt(m * units.kB * temperature_K)[None, :, None]
    p -= m[None, :, None] * (p.sum(1, keepdims=True) / m.sum())  # no centre-of-mass drift
    pos = torch.as_tensor(np.broadcast_to(atoms.positions, (trajectories, len(m), 3)).copy(), dtype=torch.float64,
                          device=device)
    return pos, torch.as_tensor(p * units.fs, dtype=torch.float64, device=device), m
