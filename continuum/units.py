"""The continuum's units: lengths in Å, energies in eV, so that atoms and nodes share one system.

Moduli and stresses are given and reported in GPa (``*_GPa`` names); inside the forms they are in
eV/Å^3. Works of separation are in eV/Å^2 (``*_eV_A2``); ``J_per_m2`` converts.
"""

from __future__ import annotations

from ase import units as _ase

GPa = _ase.GPa  #: one GPa in eV/Å^3
J_per_m2 = _ase.J / _ase.m**2  #: one J/m^2 in eV/Å^2
