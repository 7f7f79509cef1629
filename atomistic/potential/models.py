"""Behler–Parrinello NN-PES: descriptor -> standardise -> one MLP per element -> sum.

``E = sum_i [ e0(Z_i) + scale * NN_{Z_i}((G_i - mean_Z) / std_Z) ]`` (DESIGN §2). The model maps
positions to per-atom energies; every derivative lives in :mod:`atomistic.potential.forces`.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass

import torch
from torch import nn

from atomistic.potential.descriptors import BehlerParrinello, DescriptorSettings
from atomistic.potential.neighbors import Neighbors

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


_NO_HOST_SYNC: ContextVar[bool] = ContextVar("no_host_sync", default=False)


@contextmanager
def without_host_sync():
    """Inside: models take their paths that never wait for the host (what a CUDA graph can hold),
    e.g. :meth:`BPPotential.readout` without gathering each element's rows."""
    token = _NO_HOST_SYNC.set(True)
    try:
        yield
    finally:
        _NO_HOST_SYNC.reset(token)


def model_device(model, device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else the device of the model's parameters (CPU if it has none)."""
    if device is not None:
        return torch.device(device)
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def placed(model: nn.Module, device: str | torch.device | None = None, dtype: torch.dtype | None = None):
    """``model`` on ``device`` in ``dtype`` (None: where and what it is): the model itself when it is
    already there, else a converted copy, so that a caller's model is never changed behind its back
    (a calculator asking for float32 must not turn the caller's float64 model into float32)."""
    if not isinstance(model, nn.Module):  # an analytic model: nothing of the caller's to protect
        return model.to(device) if device is not None else model
    target = model_device(model, device)
    if target.type == "cuda" and target.index is None:
        target = torch.device("cuda", torch.cuda.current_device())
    tensors = [*model.parameters(), *model.buffers()]
    if all(t.device == target and (dtype is None or not t.is_floating_point() or t.dtype == dtype) for t in tensors):
        return model
    return copy.deepcopy(model).to(device=target, dtype=dtype)


class BPPotential(nn.Module):
    """A Behler–Parrinello potential for a fixed list of elements.

    Attributes stored with the weights: per-element descriptor mean/std (standardisation),
    per-element energy offsets ``e0`` (eV, trainable) and the output ``energy_scale`` (eV).
    """

    def __init__(self, species: list[str], descriptor: DescriptorSettings | None = None,
                 network: NetworkSettings | None = None):
        super().__init__()
        if len(set(species)) != len(species) or not species:
            raise ValueError(f"species must be a non-empty list of distinct symbols, got {species}")
        self.species = list(species)
        descriptor = descriptor or DescriptorSettings()
        network = network or NetworkSettings()
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

    def atomic_energies(self, positions: torch.Tensor, cell_per_atom: torch.Tensor, species: torch.Tensor,
                        neighbors: Neighbors, centres: slice = slice(None)) -> torch.Tensor:
        """Energy of each centre atom, eV, (n_centres,).

        positions (n_atoms, 3) Å; cell_per_atom (n_atoms, 3, 3) Å (or (3, 3) for one structure);
        species (n_atoms,) index into ``self.species``; neighbours from :func:`build_neighbors`.
        """
        cell = cell_per_atom if cell_per_atom.dim() == 2 else cell_per_atom[centres]
        energies = self._compiled or self.row_energies
        return energies(positions, positions[centres], cell, species, species[centres], neighbors.index[centres],
                        neighbors.shift[centres], neighbors.mask[centres], neighbors.n_angular)

    def row_energies(self, positions: torch.Tensor, centre_positions: torch.Tensor, cell: torch.Tensor,
                     species: torch.Tensor, centre_species: torch.Tensor, index: torch.Tensor, shift: torch.Tensor,
                     mask: torch.Tensor, n_angular: int) -> torch.Tensor:
        """The energy path as a pure tensor function of one block of neighbour-table rows, eV."""
        g = self.raw_features(positions, centre_positions, cell, species, index, shift, mask, n_angular)
        return self.readout(g, centre_species)

    def readout(self, g: torch.Tensor, centre_species: torch.Tensor, gather: bool | None = None) -> torch.Tensor:
        """Per-atom energies, eV, from unstandardised descriptors ``g`` (n_centres, n_features).

        With several elements, each network sees the rows of its element (``gather``), or every
        row, each row keeping its own element's output (no host synchronisation: what a CUDA
        graph needs; E times the networks' work). None: gather, except inside
        :func:`without_host_sync` (a captured MD block and its warm-up) or a CUDA capture.
        """
        x = (g - self.feature_mean[centre_species]) / self.feature_std[centre_species]
        if gather is None:
            gather = not (_NO_HOST_SYNC.get() or (x.is_cuda and torch.cuda.is_current_stream_capturing()))
        if len(self.networks) == 1:
            out = self.networks[0](x).squeeze(-1)
        elif not gather:
            out = x.new_zeros(x.shape[0])
            for k, net in enumerate(self.networks):
                out = torch.where(centre_species == k, net(x).squeeze(-1), out)
        else:
            out = x.new_zeros(x.shape[0])
            for k, net in enumerate(self.networks):
                idx = torch.nonzero(centre_species == k).squeeze(-1)
                out = out.index_put((idx,), net(x[idx]).squeeze(-1))
        return self.e0[centre_species] + self.energy_scale * out

    def raw_features(self, positions: torch.Tensor, centre_positions: torch.Tensor, cell: torch.Tensor,
                     species: torch.Tensor, index: torch.Tensor, shift: torch.Tensor, mask: torch.Tensor,
                     n_angular: int) -> torch.Tensor:
        """Unstandardised descriptors of a block of rows, (n_centres, n_features)."""
        vectors = pair_vectors(positions, centre_positions, cell, index, shift)
        return self.descriptor(vectors, mask, species[index], n_angular)

    _compiled = None

    def use_compile(self, enabled: bool = True, **options) -> BPPotential:
        """Run the energy path through ``torch.compile`` (fused kernels; for energies, forces and
        stress, not for double backward: training and Hessians use the eager path).

        For CUDA: 1.5x faster and 2.3x less memory than eager on an H100 (docs/benchmarks.md).
        On CPUs (torch 2.14, 2 cores, float32 MD) it takes about a minute to compile and makes a
        20-atom cluster's step 1.35x faster, a 1372-atom crystal's not at all: worth it only for
        long runs of small systems. torch 2.13's CPU code generator failed on this graph.
        """
        options.setdefault("dynamic", False)  # one specialisation per block shape (chunks share one)
        self._compiled = torch.compile(self.row_energies, **options) if enabled else None
        return self


def pair_vectors(positions: torch.Tensor, centre_positions: torch.Tensor, cell: torch.Tensor,
                 index: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """r_ij = x_j - x_i + shift @ cell, (n_centres, n_max, 3) Å; ``cell`` (3, 3) or one per centre."""
    offset = shift @ cell if cell.dim() == 2 else torch.einsum("nmk,nkl->nml", shift, cell)
    neighbours = torch.index_select(positions, 0, index.reshape(-1)).reshape(*index.shape, 3)
    return neighbours - centre_positions[:, None, :] + offset

