"""Oracle stand-ins for the failure paths: real EMT underneath, with a defect switched on.

They live in an importable module so that a spawned oracle worker process can unpickle them.
"""

from __future__ import annotations

import time

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT


class SlowEMT(Calculator):
    """EMT that sleeps ``seconds`` before answering configurations whose first x exceeds
    ``slow_above`` (Å): a hung code, for the time-out path."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, seconds: float = 30.0, slow_above: float = -np.inf):
        super().__init__()
        self.seconds, self.slow_above, self.emt = seconds, slow_above, EMT()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.atoms.positions[0, 0] > self.slow_above:
            time.sleep(self.seconds)
        a = self.atoms.copy()
        a.calc = self.emt
        self.results = {"energy": a.get_potential_energy(), "forces": a.get_forces()}


class SlowEMTFactory:
    """Picklable factory of :class:`SlowEMT`."""

    name = "slow-emt"

    def __init__(self, seconds: float, slow_above: float):
        self.seconds, self.slow_above = seconds, slow_above

    def __call__(self):
        return SlowEMT(self.seconds, self.slow_above)


class NaNCalculator(Calculator):
    """Returns NaN forces (a broken code that does not raise)."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": 0.0, "forces": np.full((len(self.atoms), 3), np.nan)}


class FlakyEMT(Calculator):
    """EMT that raises on the calls numbered in ``fail_on`` (0-based), like a crashing code."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, fail_on=()):
        super().__init__()
        self.fail_on, self.count, self.emt = set(fail_on), 0, EMT()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        k, self.count = self.count, self.count + 1
        if k in self.fail_on:
            raise RuntimeError(f"simulated crash on call {k}")
        a = self.atoms.copy()
        a.calc = self.emt
        self.results = {"energy": a.get_potential_energy(), "forces": a.get_forces()}
