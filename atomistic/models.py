"""Behler–Parrinello NN-PES: descriptor -> standardise -> one MLP per element -> sum.

``E = sum_i [ e0(Z_i) + scale * NN_{Z_i}((G_i - mean_Z) / std_Z) ]`` (DESIGN §2). The model maps
positions to per-atom energies; every derivative lives in :mod:`atomistic.forces`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .descriptors import BehlerParrinello, DescriptorSettings
from .neighbors import Neighbors

ACTIVATIONS = {"silu": nn.SiLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "celu": nn.CELU}


@dataclass(frozen=True)
class NetworkSettings:
    """Per-element network: hidden layer widths and a smooth activation."""

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "silu"

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden layer widths must be positive integers, got {self.hidden}")


def element_network(n_in: int, settings: NetworkSettings) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for h in settings.hidden:
        layers += [nn.Linear(width, h), ACTIVATIONS[settings.activation]()]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


class BPPotential(nn.Module):
    """A Behler–Parrinello potential for a fixed list of elements.

    Attributes stored with the weights: per-element descriptor mean/std (standardisation),
    per-element energy offsets ``e0`` (eV, trainable) and the output ``energy_scale`` (eV).
    """

    def __init__(self, species: list[str], descriptor: DescriptorSettings = DescriptorSettings(),
                 network: NetworkSettings = NetworkSettings()):
        super().__init__()
        if len(set(species)) != len(species) or not species:
            raise ValueError(f"species must be a non-empty list of distinct symbols, got {species}")
        self.species = list(species)
        self.descriptor_settings = descriptor
        self.network_settings = network
        self.descriptor = BehlerParrinello(descriptor, len(species))
        n = self.descriptor.n_features
        self.networks = nn.ModuleList(element_network(n, network) for _ in species)
        self.e0 = nn.Parameter(torch.zeros(len(species), dtype=torch.float64))
        self.register_buffer("feature_mean", torch.zeros(len(species), n, dtype=torch.float64))
        self.register_buffer("feature_std", torch.ones(len(species), n, dtype=torch.float64))
        self.register_buffer("energy_scale", torch.ones((), dtype=torch.float64))
        self.to(torch.float64)

    @property
    def cutoff(self) -> float:
        """Radial cutoff, Å."""
        return self.descriptor_settings.cutoff

    @property
    def angular_cutoff(self) -> float:
        return self.descriptor_settings.angular_cutoff

    @property
    def dtype(self) -> torch.dtype:
        return self.e0.dtype

    def settings(self) -> dict:
        return {"descriptor": asdict(self.descriptor_settings), "network": asdict(self.network_settings)}

    def features(self, positions: torch.Tensor, cell_per_atom: torch.Tensor, species: torch.Tensor,
                 neighbors: Neighbors, centres: slice = slice(None)) -> torch.Tensor:
        """Standardised descriptors of the centre atoms ``centres`` (n_centres, n_features)."""
        vectors = neighbor_vectors(positions, cell_per_atom, neighbors, centres)
        g = self.descriptor(vectors, neighbors.mask[centres], species[neighbors.index[centres]],
                            neighbors.n_angular)
        sp = species[centres]
        return (g - self.feature_mean[sp]) / self.feature_std[sp]

    def atomic_energies(self, positions: torch.Tensor, cell_per_atom: torch.Tensor, species: torch.Tensor,
                        neighbors: Neighbors, centres: slice = slice(None)) -> torch.Tensor:
        """Energy of each centre atom, eV, (n_centres,).

        positions (n_atoms, 3) Å; cell_per_atom (n_atoms, 3, 3) Å (or (3, 3) for one structure);
        species (n_atoms,) index into ``self.species``; neighbours from :func:`build_neighbors`.
        """
        x = self.features(positions, cell_per_atom, species, neighbors, centres)
        sp = species[centres]
        if len(self.networks) == 1:
            out = self.networks[0](x).squeeze(-1)
        else:
            out = x.new_zeros(x.shape[0])
            for k, net in enumerate(self.networks):
                idx = torch.nonzero(sp == k).squeeze(-1)
                out = out.index_put((idx,), net(x[idx]).squeeze(-1))
        return self.e0[sp] + self.energy_scale * out


def neighbor_vectors(positions: torch.Tensor, cell: torch.Tensor, neighbors: Neighbors,
                     centres: slice = slice(None)) -> torch.Tensor:
    """r_ij = x_j - x_i + shift @ cell for the centre atoms, (n_centres, n_max, 3) Å.

    ``cell`` is (3, 3) for a single structure or (n_atoms, 3, 3), the cell of each atom's structure.
    """
    idx = neighbors.index[centres]
    shift = neighbors.shift[centres]
    if cell.dim() == 2:
        offset = shift @ cell
    else:
        offset = torch.einsum("nmk,nkl->nml", shift, cell[centres])
    neighbours = torch.index_select(positions, 0, idx.reshape(-1)).reshape(*idx.shape, 3)
    return neighbours - positions[centres, None, :] + offset
