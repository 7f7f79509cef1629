"""ASE calculator for NN-PES models and committees of them.

results: ``energy``, ``free_energy`` (eV), ``forces`` (eV/Å), ``stress`` (eV/Å^3, Voigt, periodic
cells only), ``energies`` (per atom, eV); for a committee also ``energy_spread`` (eV, standard
deviation of the member energies) and ``force_disagreement`` (eV/Å, DESIGN §2 ``d``). These two
names are a public contract.
"""

from __future__ import annotations

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from atomistic.potential.committee import Committee, evaluate_committee
from atomistic.potential.forces import evaluate
from atomistic.potential.models import BPPotential, placed


class NNPCalculator(Calculator):
    """``atoms.calc = NNPCalculator(load_potential(path), device="cuda")``.

    ``mask_bodies``: if the atoms carry a per-atom ``body`` array, drop interactions between
    different bodies (DESIGN §5). ``chunk_size``: evaluate very large systems in blocks of atoms.
    ``flush_denormal``: set the CPU's flush-to-zero mode (``torch.set_flush_denormal``) for the
    process; the far tails of the Gaussian basis otherwise produce denormal numbers, which make
    CPU arithmetic several times slower. It changes only values below 1e-38 (float32).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, model: BPPotential | Committee, device: str | torch.device = "cpu", *,
                 dtype: torch.dtype | None = None, mask_bodies: bool = True,
                 chunk_size: int | str | None = "auto", flush_denormal: bool = True, **kwargs):
        super().__init__(**kwargs)
        if flush_denormal:
            torch.set_flush_denormal(True)
        self.device = torch.device(device)
        self.model = placed(model, self.device, dtype or model.dtype)  # a copy if it must move
        self.mask_bodies = mask_bodies
        self.chunk_size = chunk_size
        if isinstance(model, Committee):
            self.implemented_properties = self.implemented_properties + ["energy_spread", "force_disagreement"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        model = self.model
        stress = bool(atoms.pbc.all()) and atoms.cell.rank == 3
        options = dict(device=self.device, stress=stress, chunk_size=self.chunk_size, mask_bodies=self.mask_bodies)
        if isinstance(model, Committee):
            p = evaluate_committee(model, atoms, **options)
            self.results["energy_spread"] = float(p.energy_spread[0])
            self.results["force_disagreement"] = float(p.force_disagreement[0])
        else:
            p = evaluate(model, atoms, **options)
        self.results["energy"] = self.results["free_energy"] = float(p.energy[0])
        self.results["energies"] = p.energies.detach().cpu().numpy()
        self.results["forces"] = p.forces.detach().cpu().numpy()
        if stress:
            s = p.stress[0].detach().cpu().numpy()
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
