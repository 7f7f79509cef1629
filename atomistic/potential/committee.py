"""Committees of NN-PES models: mean prediction and disagreement (DESIGN §2).

A committee is M models trained alike whose spread estimates the model error (called an
"ensemble" in earlier versions: the old names ``Ensemble``, ``EnsemblePrediction`` and
``predict_ensemble`` remain as aliases; "ensemble" now means only NVE/NVT/NPT).

energy_spread       standard deviation of the members' total energies, eV
force_disagreement  d = max_i max_{a<b} |F_i^a - F_i^b|, eV/Å (largest pairwise difference
                    between member force vectors on any atom)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from ase import Atoms
from torch import nn

from atomistic.potential.forces import Prediction, model_inputs, predict
from atomistic.potential.models import BPPotential
from atomistic.potential.neighbors import Neighbors
from atomistic.potential.structure import Structures


class Committee(nn.Module):
    """M models with the same species and cutoffs; predictions are member means."""

    def __init__(self, members: list[BPPotential]):
        super().__init__()
        if not members:
            raise ValueError("a committee needs at least one member")
        first = members[0]
        for m in members[1:]:
            if m.species != first.species or m.cutoff != first.cutoff or m.angular_cutoff != first.angular_cutoff:
                raise ValueError("committee members must share species, cutoff and angular cutoff")
        self.members = nn.ModuleList(members)

    species = property(lambda self: self.members[0].species)
    cutoff = property(lambda self: self.members[0].cutoff)
    angular_cutoff = property(lambda self: self.members[0].angular_cutoff)
    dtype = property(lambda self: self.members[0].dtype)

    def use_compile(self, enabled: bool = True, **options) -> Committee:
        """Compile every member's energy path (see :meth:`BPPotential.use_compile`)."""
        for m in self.members:
            m.use_compile(enabled, **options)
        return self

    def __len__(self) -> int:
        return len(self.members)

    def atomic_energies(self, positions, cell_per_atom, species, neighbors, centres=slice(None)):
        """Mean per-atom energy of the members, eV: the committee is itself an energy model.

        Members with the same descriptor settings share one descriptor evaluation (the costly
        part), so an M-member committee costs far less than M models.
        """
        first = self.members[0]
        if any(m._compiled is not None for m in self.members) or any(
                m.descriptor_settings != first.descriptor_settings for m in self.members[1:]):
            e = [m.atomic_energies(positions, cell_per_atom, species, neighbors, centres) for m in self.members]
            return torch.stack(e).mean(0)
        cell = cell_per_atom if cell_per_atom.dim() == 2 else cell_per_atom[centres]
        g = first.raw_features(positions, positions[centres], cell, species, neighbors.index[centres],
                               neighbors.shift[centres], neighbors.mask[centres], neighbors.n_angular)
        return torch.stack([m.readout(g, species[centres]) for m in self.members]).mean(0)


@dataclass
class CommitteePrediction(Prediction):
    """Member means plus the committee's disagreement (see module docstring)."""

    energy_spread: torch.Tensor | None = None  # (n_structures,) eV
    force_disagreement: torch.Tensor | None = None  # (n_structures,) eV/Å
    member_energy: torch.Tensor | None = None  # (M, n_structures) eV
    member_forces: torch.Tensor | None = None  # (M, n_atoms, 3) eV/Å
    member_stress: torch.Tensor | None = None  # (M, n_structures, 3, 3) eV/Å^3


def atom_force_disagreement(member_forces: torch.Tensor) -> torch.Tensor:
    """Per atom, the largest pairwise difference of member force vectors (n_atoms,), eV/Å."""
    m = member_forces.shape[0]
    a, b = torch.triu_indices(m, m, offset=1, device=member_forces.device)
    if len(a) == 0:
        return member_forces.new_zeros(member_forces.shape[1])
    return torch.linalg.vector_norm(member_forces[a] - member_forces[b], dim=-1).amax(0)


def pairwise_force_disagreement(member_forces: torch.Tensor, batch: torch.Tensor, n_structures: int) -> torch.Tensor:
    """d per structure from member forces (M, n_atoms, 3), eV/Å."""
    diff = atom_force_disagreement(member_forces)
    out = member_forces.new_zeros(n_structures)
    return out.scatter_reduce(0, batch, diff, reduce="amax", include_self=True)


def predict_committee(committee: Committee, structures: Structures, neighbors: Neighbors, *,
                      stress: bool = False, chunk_size: int | str | None = "auto") -> CommitteePrediction:
    """Per-member energies, forces (and stress) and their mean and disagreement."""
    preds = [predict(m, structures, neighbors, stress=stress, chunk_size=chunk_size) for m in committee.members]
    energies = torch.stack([p.energy for p in preds])
    forces = torch.stack([p.forces for p in preds])
    stresses = torch.stack([p.stress for p in preds]) if stress else None
    return CommitteePrediction(
        energy=energies.mean(0),
        energies=torch.stack([p.energies for p in preds]).mean(0),
        forces=forces.mean(0),
        stress=stresses.mean(0) if stress else None,
        energy_spread=energies.std(0, unbiased=False),
        force_disagreement=pairwise_force_disagreement(forces, structures.batch, structures.n_structures),
        member_energy=energies,
        member_forces=forces,
        member_stress=stresses,
    )


def evaluate_committee(committee: Committee, atoms: Atoms | Sequence[Atoms], *,
                       device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                       stress: bool = False, chunk_size: int | str | None = "auto",
                       mask_bodies: bool = True) -> CommitteePrediction:
    """:func:`predict_committee` on ASE ``atoms`` (one or a list); ``device`` defaults to the
    committee's and ``dtype`` to its ``dtype`` (see :func:`~atomistic.potential.forces.evaluate`)."""
    structures, neighbors = model_inputs(committee, atoms, device=device, dtype=dtype, mask_bodies=mask_bodies)
    return predict_committee(committee, structures, neighbors, stress=stress, chunk_size=chunk_size)


#: the names of earlier versions (a committee was called an ensemble)
Ensemble = Committee
EnsemblePrediction = CommitteePrediction
predict_ensemble = predict_committee
