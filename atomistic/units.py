"""The one unit system of the project: ASE's (eV, Å, amu; time in fs at the API).

Every physical quantity that crosses a public function is in these units unless its name says
otherwise (``pressure_GPa``, ``temperature_K``, ``timestep_fs``).
"""

from __future__ import annotations

from ase import units as _ase

eV = 1.0  #: energy unit
Angstrom = 1.0  #: length unit
amu = 1.0  #: mass unit
fs = _ase.fs  #: one femtosecond in ASE's internal time unit
kB = _ase.kB  #: Boltzmann constant, eV/K
GPa = _ase.GPa  #: one GPa in eV/Å^3
eV_per_A3_to_GPa = 1.0 / _ase.GPa  #: multiply a stress in eV/Å^3 by this to get GPa
J_per_m2 = _ase.J / _ase.m**2  #: one J/m^2 in eV/Å^2

UNITS = {"energy": "eV", "length": "Angstrom", "mass": "amu", "time": "fs", "stress": "eV/Angstrom^3"}
