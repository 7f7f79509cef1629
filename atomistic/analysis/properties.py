"""Material properties of any ASE calculator for a cubic (fcc) crystal.

The same functions run on the NN-PES and on the reference (EMT), so a validation table compares
like with like. Lattice constants in Å, elastic constants and bulk modulus in GPa, surface
energies in J/m^2, formation energies in eV. Stress-strain derivatives use the calculator's stress,
which for the NN-PES is the autograd strain derivative of its energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk, fcc100, fcc110, fcc111
from ase.eos import EquationOfState
from ase.optimize import FIRE

from atomistic.units import GPa, J_per_m2


def _with(atoms: Atoms, calc) -> Atoms:
    atoms.calc = calc
    return atoms


def equation_of_state(calc, symbol: str, a_guess: float, span: float = 0.03, n: int = 11) -> tuple[float, float]:
    """Equilibrium fcc lattice constant (Å) and bulk modulus (GPa) from a Birch–Murnaghan fit."""
    volumes, energies = [], []
    for s in np.linspace(1 - span, 1 + span, n):
        atoms = _with(bulk(symbol, "fcc", a=a_guess * s), calc)
        volumes.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
    v0, _, b = EquationOfState(volumes, energies, eos="birchmurnaghan").fit()
    return float((4 * v0) ** (1 / 3)), float(b / GPa)


def cubic_elastic_constants(calc, symbol: str, a0: float, strain: float = 0.005) -> dict[str, float]:
    """C11, C12, C44 (GPa) by central differences of the stress of the conventional cell.

    fcc has one atom per primitive cell (every atom an inversion centre), so no internal
    relaxation enters. C44 uses the engineering shear strain gamma_yz.
    """
    def stress(deformation: np.ndarray) -> np.ndarray:
        atoms = bulk(symbol, "fcc", a=a0, cubic=True)
        atoms.set_cell(atoms.cell.array @ deformation.T, scale_atoms=True)
        return _with(atoms, calc).get_stress(voigt=True) / GPa

    d = np.zeros((3, 3))
    d[0, 0] = strain
    s_plus, s_minus = stress(np.eye(3) + d), stress(np.eye(3) - d)
    c11 = (s_plus[0] - s_minus[0]) / (2 * strain)
    c12 = (s_plus[1] - s_minus[1]) / (2 * strain)
    d = np.zeros((3, 3))
    d[1, 2] = d[2, 1] = strain / 2  # gamma_yz = strain
    s_plus, s_minus = stress(np.eye(3) + d), stress(np.eye(3) - d)
    c44 = (s_plus[3] - s_minus[3]) / (2 * strain)
    return {"C11": float(c11), "C12": float(c12), "C44": float(c44)}


def _relax(atoms: Atoms, fmax: float = 0.005, steps: int = 500) -> Atoms:
    FIRE(atoms, logfile=None).run(fmax=fmax, steps=steps)
    return atoms


def bulk_energy_per_atom(calc, symbol: str, a0: float) -> float:
    """eV/atom of the perfect crystal at lattice constant ``a0``."""
    return _with(bulk(symbol, "fcc", a=a0, cubic=True), calc).get_potential_energy() / 4


def surface_energy(calc, symbol: str, a0: float, plane: str, layers: int = 8, relax: bool = True) -> float:
    """Relaxed (or unrelaxed) surface energy of the fcc (100), (110) or (111) face, J/m^2."""
    make = {"100": fcc100, "110": fcc110, "111": fcc111}[plane]
    slab = _with(make(symbol, (1, 1, layers), a=a0, vacuum=8.0, periodic=True), calc)
    slab.pbc = (True, True, False)
    if relax:
        _relax(slab)
    area = np.linalg.norm(np.cross(slab.cell[0], slab.cell[1]))
    e_surf = (slab.get_potential_energy() - len(slab) * bulk_energy_per_atom(calc, symbol, a0)) / (2 * area)
    return float(e_surf / J_per_m2)


def vacancy_formation_energy(calc, symbol: str, a0: float, repeat: int = 3) -> float:
    """Relaxed vacancy formation energy at fixed cell, eV: E(N-1) - (N-1)/N E(N)."""
    perfect = _with(bulk(symbol, "fcc", a=a0, cubic=True).repeat(repeat), calc)
    n = len(perfect)
    e_perfect = perfect.get_potential_energy()
    defect = perfect.copy()
    del defect[0]
    _relax(_with(defect, calc))
    return float(defect.get_potential_energy() - (n - 1) / n * e_perfect)


@dataclass(frozen=True)
class Row:
    name: str
    unit: str
    model: float
    reference: float
    tolerance: float | None  # relative, None where only reported

    @property
    def relative_error(self) -> float:
        return (self.model - self.reference) / self.reference


#: DESIGN V6 tolerances (relative); properties absent here are reported, not gated.
V6_TOLERANCES = {"a0": 0.01, "C11": 0.05, "C12": 0.05, "C44": 0.05, "gamma_100": 0.05, "gamma_111": 0.05}


def fcc_properties(calc, symbol: str, a_guess: float) -> dict[str, float]:
    """a0 (Å), B (GPa), C11/C12/C44 (GPa), gamma_100/gamma_111 (J/m^2), E_vac (eV)."""
    a0, b = equation_of_state(calc, symbol, a_guess)
    out = {"a0": a0, "B": b}
    out.update(cubic_elastic_constants(calc, symbol, a0))
    out["gamma_100"] = surface_energy(calc, symbol, a0, "100")
    out["gamma_111"] = surface_energy(calc, symbol, a0, "111")
    out["E_vac"] = vacancy_formation_energy(calc, symbol, a0)
    return out


UNITS = {"a0": "Å", "B": "GPa", "C11": "GPa", "C12": "GPa", "C44": "GPa", "gamma_100": "J/m^2",
         "gamma_111": "J/m^2", "E_vac": "eV"}


def validation_table(model_calc, reference_calc, symbol: str, a_guess: float) -> list[Row]:
    """Every fcc property of the model next to the reference's, with the V6 tolerances."""
    m = fcc_properties(model_calc, symbol, a_guess)
    r = fcc_properties(reference_calc, symbol, a_guess)
    return [Row(k, UNITS[k], m[k], r[k], V6_TOLERANCES.get(k)) for k in m]
