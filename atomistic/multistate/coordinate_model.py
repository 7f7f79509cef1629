"""A trainable diabatic matrix of a few Cartesian coordinates, for model systems.

Tully's models and the two-dimensional conical intersection depend on where a particle is, not
only on interatomic distances, so the atom-decomposed :class:`DiabaticPotential` cannot represent
them. ``CoordinateDiabatic`` is a plain network from the chosen coordinates of the first particle
(Å) to the n(n+1)/2 entries of a symmetric H (eV), trained by the same phase-free
:func:`~atomistic.multistate.network.fit_multistate`: it checks the loss and the adiabatic code
path on references with known answers (DESIGN V12).
"""

from __future__ import annotations

import torch
from torch import nn

from atomistic.potential.models import NetworkSettings, element_network


class CoordinateDiabatic(nn.Module):
    """``diabatic(positions (B, N, 3) Å) -> (B, n, n) eV`` from ``positions[:, 0, axes]``."""

    def __init__(self, n_states: int, axes: tuple[int, ...] = (0,), network: NetworkSettings | None = None):
        super().__init__()
        if n_states < 2:
            raise ValueError(f"a multi-state model needs n_states >= 2, got {n_states}")
        if not axes or any(a not in (0, 1, 2) for a in axes):
            raise ValueError(f"axes must be a non-empty subset of (0, 1, 2), got {axes}")
        self.n_states, self.axes = n_states, tuple(axes)
        self.rows, self.cols = torch.triu_indices(n_states, n_states).unbind(0)
        net = element_network(len(axes), network or NetworkSettings())
        net[-1] = nn.Linear(net[-1].in_features, len(self.rows))
        self.network = net
        self.register_buffer("input_mean", torch.zeros(len(axes)))
        self.register_buffer("input_std", torch.ones(len(axes)))
        self.register_buffer("offset", torch.zeros(len(self.rows)))
        self.register_buffer("scale", torch.ones(len(self.rows)))
        self.to(torch.float64)

    def diabatic(self, positions: torch.Tensor) -> torch.Tensor:
        x = (positions[:, 0, list(self.axes)] - self.input_mean) / self.input_std
        out = self.network(x) * self.scale + self.offset
        n = self.n_states
        upper, lower = self.rows * n + self.cols, self.cols * n + self.rows
        h = out.new_zeros(len(out), n * n).index_copy(1, lower, out).index_copy(1, upper, out)
        return h.reshape(-1, n, n)

    def prepare(self, atoms, data) -> CoordinateDiabatic:
        """Standardise the inputs on ``data`` and start the diagonal at each state's mean energy;
        ``atoms`` is not needed (the interface of :meth:`DiabaticPotential.prepare`)."""
        with torch.no_grad():
            x = data.positions[:, 0, list(self.axes)].to(torch.float64)
            self.input_mean.copy_(x.mean(0))
            self.input_std.copy_(x.std(0).clamp_min(1e-6) if len(x) > 1 else torch.ones_like(x[0]))
            diag = self.rows == self.cols
            self.offset.zero_()
            self.offset[diag] = data.energies.mean(0).to(self.offset)
            self.scale.fill_(float(data.energies.std().clamp_min(1e-3)))
        return self
