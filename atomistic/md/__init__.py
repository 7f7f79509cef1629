"""Molecular dynamics on the device: NVE (velocity Verlet), NVT (BAOAB Langevin, Bussi) and NPT
(stochastic cell rescaling), batched replicas, Verlet lists, checkpoints and blow-up guards.

    from atomistic.md import MDSettings, MolecularDynamics, Thermostat
    md = MolecularDynamics(model, atoms, MDSettings(ensemble="nvt", steps=10_000, timestep_fs=2.0,
                           thermostat=Thermostat("langevin", temperature_K=300.0)), output="run")
    result = md.run()
"""

from atomistic.errors import MDBlowUp
from atomistic.md.driver import MDResult, MolecularDynamics
from atomistic.md.monitor import DriftReport, energy_drift
from atomistic.md.settings import Barostat, MDSettings, Safety, Thermostat

__all__ = ["Barostat", "DriftReport", "MDBlowUp", "MDResult", "MDSettings", "MolecularDynamics", "Safety",
           "Thermostat", "energy_drift"]
