"""An ASE calculator exposing one adiabatic state of a multi-state model.

results: ``energy``, ``free_energy`` (eV) and ``forces`` (eV/Å) of the chosen ``state``;
``adiabatic_energies`` (n,) eV, ``adiabatic_forces`` (n, N, 3) eV/Å and
``couplings`` (n, n, N, 3) 1/Å of all states (the coupling signs are arbitrary).
"""

from __future__ import annotations

import torch
from ase.calculators.calculator import Calculator, all_changes

from atomistic.multistate.adiabatic import adiabatic_states
from atomistic.multistate.network import DiabaticPotential
from atomistic.potential.models import placed


class MultiStateCalculator(Calculator):
    """``atoms.calc = MultiStateCalculator(model, state=1, device="cuda")``; ``model`` is a
    :class:`DiabaticPotential` or any object with ``diabatic(positions)`` and ``n_states``."""

    implemented_properties = ["energy", "free_energy", "forces", "adiabatic_energies", "adiabatic_forces",
                              "couplings"]

    def __init__(self, model, state: int = 0, device: str | torch.device = "cpu", **kwargs):
        super().__init__(**kwargs)
        n = model.n_states
        if not 0 <= state < n:
            raise ValueError(f"state must be in 0..{n - 1} for a {n}-state model, got {state}")
        self.device = torch.device(device)
        self.model, self.state = placed(model, self.device), state  # a copy if it must move

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        model = self.model.bind(self.atoms) if isinstance(self.model, DiabaticPotential) else self.model
        pos = torch.as_tensor(self.atoms.get_positions(), dtype=torch.float64, device=self.device)[None]
        st = adiabatic_states(model, pos)
        energies = st.energies[0].detach().cpu().numpy()
        forces = st.forces[0].detach().cpu().numpy()
        self.results.update(energy=float(energies[self.state]), free_energy=float(energies[self.state]),
                            forces=forces[self.state], adiabatic_energies=energies, adiabatic_forces=forces,
                            couplings=st.couplings[0].detach().cpu().numpy())
