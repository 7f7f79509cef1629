"""Collate prepared frames into one batch: concatenated structures, padded neighbours, labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from atomistic.potential.neighbors import Neighbors, pad_edges
from atomistic.potential.structure import Structures
from atomistic.training.data import Frame


@dataclass
class Batch:
    """structures + neighbours + labels: energy (B,) eV, forces (N, 3) eV/Å,
    stress (B, 3, 3) eV/Å^3 with ``has_stress`` (B,) bool."""

    structures: Structures
    neighbors: Neighbors
    energy: torch.Tensor
    forces: torch.Tensor
    stress: torch.Tensor
    has_stress: torch.Tensor

    @property
    def n_atoms(self) -> torch.Tensor:
        return torch.bincount(self.structures.batch, minlength=self.structures.n_structures)


def collate(frames: Sequence[Frame], cutoff: float, angular_cutoff: float,
            device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64) -> Batch:
    offsets, start = [], 0
    for f in frames:
        offsets.append(start)
        start += f.n_atoms
    i = torch.cat([f.edges[0] + o for f, o in zip(frames, offsets)])
    j = torch.cat([f.edges[1] + o for f, o in zip(frames, offsets)])
    s = torch.cat([f.edges[2] for f in frames])
    d = torch.cat([f.edges[3] for f in frames])
    n_atoms = tuple(f.n_atoms for f in frames)
    structures = Structures(
        positions=torch.cat([f.positions for f in frames]),
        cell=torch.stack([f.cell for f in frames]),
        pbc=torch.stack([f.pbc for f in frames]),
        species=torch.cat([f.species for f in frames]),
        batch=torch.repeat_interleave(torch.arange(len(frames)), torch.tensor(n_atoms)),
        n_atoms=n_atoms,
    ).to(device, dtype)
    # edges from prepare() are within the cutoff already (any beyond it would weigh zero anyway)
    neighbors = pad_edges(i.to(device), j.to(device), s.to(device), d.to(device), start, cutoff,
                          angular_cutoff, dtype)
    stress = torch.stack([f.stress if f.stress is not None else torch.zeros(3, 3, dtype=torch.float64)
                          for f in frames])
    return Batch(
        structures=structures,
        neighbors=neighbors,
        energy=torch.tensor([f.energy for f in frames], dtype=dtype, device=device),
        forces=torch.cat([f.forces for f in frames]).to(device, dtype),
        stress=stress.to(device, dtype),
        has_stress=torch.tensor([f.stress is not None for f in frames], device=device),
    )
