"""Coupled statics against full atomistics with a defect in the core (the tests and the table of
``docs/verification.md``, "Coupled against fully atomistic").

A cube of Cu, ``cells`` unit cells on a side, with a defect near its middle, under a
non-hydrostatic strain. Two models of the same body:

- **fully atomistic**: every atom; those within a cutoff of the faces held at the affine map
  ``(1 + strain) X``, the rest relaxed with ASE's LBFGS on our ASE calculator;
- **coupled**: the atoms in a centred cube (core of ``core`` unit cells, a handshake of one
  cutoff with the C1 ramp, a pad), the Cauchy-Born continuum out to the faces, whose normal
  displacements are those of the affine map (rollers); the ghost-force correction on, computed
  on the defect-free crystal.

Each model is solved for the perfect crystal and the defect, unloaded and loaded. What the
defect does is the difference between the two in the same model: its relaxation
``du(X) = x_defect(X) - x_perfect(X)`` (Å, at each atom the defect leaves) and its share of the
energy change under the load, ``dE = [E_def(load) - E_def(0)] - [E_perf(load) - E_perf(0)]``
(eV). Artefacts common to both (the held shell's truncated neighbourhoods, what is left of the
ghost forces under strain) cancel in the differences; the defect's physics does not.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
from ase.build import bulk
from scipy.spatial import cKDTree

from tests.coupling_cases import CUTOFF_A, bar_atoms, bar_domain, bar_geometry

#: the load: a non-hydrostatic strain (tension along x and z, compression along y)
STRAIN = np.diag([0.015, -0.005, 0.005])
#: where the relaxations stop (eV/Å)
FMAX_EV_A = 1e-3
#: the atoms compared: within this distance (Å) of the defect's centre
COMPARE_RADIUS_A = 5.5


@dataclass(frozen=True)
class Defect:
    """``kind``: "cluster" (a lattice site and its 12 nearest neighbours removed: a 13-vacancy
    void) or "platelet" (the atoms of one (001) plane within ``radius_A`` of the centre removed:
    a vacancy disc); ``offset_cells``: the centre's offset from the body's middle, unit cells."""

    name: str
    kind: str
    offset_cells: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius_A: float = 4.0


DEFECTS = {
    "off-centre cluster": Defect("off-centre cluster", "cluster", (1.0, 0.5, 0.0)),
    "centred platelet": Defect("centred platelet", "platelet"),
}


#: breaks the ties between lattice sites equally far from a target point (Å), so that every model
#: of the body puts the defect on the same site whatever the order of its atoms
TIE_BREAK_A = np.array([1e-3, 2e-3, 3e-3])


def defect_centre(positions: np.ndarray, length_A: float, a0: float, defect: Defect) -> np.ndarray:
    """The lattice site (Å) nearest the body's middle plus the defect's offset."""
    target = np.full(3, length_A / 2) + a0 * np.asarray(defect.offset_cells) + TIE_BREAK_A
    return positions[int(np.argmin(np.linalg.norm(positions - target, axis=1)))]


def remove_defect(atoms, centre: np.ndarray, a0: float, defect: Defect | None):
    """``atoms`` without the defect's sites (a copy; the perfect crystal when ``defect`` is None)."""
    if defect is None:
        return atoms.copy()
    d = atoms.positions - centre
    if defect.kind == "cluster":
        gone = np.linalg.norm(d, axis=1) < a0 / np.sqrt(2) + 0.1
    elif defect.kind == "platelet":
        gone = (np.abs(d[:, 2]) < 0.1) & (np.linalg.norm(d[:, :2], axis=1) < defect.radius_A)
    else:
        raise ValueError(f"defect kind {defect.kind!r}")
    return atoms[~gone]


@functools.lru_cache(maxsize=8)
def full_atomistic(model, a0: float, cells: int, defect: Defect | None) -> dict:
    """The fully atomistic cube, relaxed unloaded and loaded: reference positions ``X``, relaxed
    positions ``x0`` and ``x1`` (Å), potential energies ``E0`` and ``E1`` (eV), LBFGS steps."""
    from ase.constraints import FixAtoms
    from ase.optimize import LBFGS

    from atomistic.calculator import NNPCalculator

    length = cells * a0
    crystal = bulk("Cu", "fcc", a=a0, cubic=True).repeat((cells,) * 3)
    crystal.positions += a0 / 4
    crystal.pbc = False
    crystal.cell = np.zeros((3, 3))
    atoms = remove_defect(crystal, defect_centre(crystal.positions, length, a0, defect) if defect else None, a0, defect)
    X = atoms.positions.copy()
    shell = np.any((X < CUTOFF_A) | (X > length - CUTOFF_A), axis=1)
    out = {"X": X, "atoms": len(X)}
    for key, strain in (("0", np.zeros((3, 3))), ("1", STRAIN)):
        run = atoms.copy()
        run.positions = X + X @ strain.T
        run.set_constraint(FixAtoms(mask=shell))
        run.calc = NNPCalculator(model)
        optimizer = LBFGS(run, logfile=os.environ.get("DEFECT_LOG"))
        if not optimizer.run(fmax=FMAX_EV_A, steps=5000):
            raise RuntimeError(f"the fully atomistic cube ({defect}) did not relax in 5000 steps")
        out["x" + key], out["E" + key], out["steps" + key] = run.positions.copy(), run.get_potential_energy(), \
            optimizer.nsteps
    return out


def coupled(model, material, a0: float, cells: int, core: int, defect: Defect | None, *,
            perfect_reference: bool = True) -> dict:
    """The coupled cube (atoms in a centred cube with a core of ``core`` unit cells), solved
    unloaded and loaded: the atoms' reference positions ``X``, positions ``x0`` and ``x1`` (Å),
    coupled energies ``E0`` and ``E1`` (eV), region counts and Newton iterations.
    ``perfect_reference=False`` computes the ghost-force correction on the defected atoms
    themselves (what the correction did before it had a defect-free reference)."""
    from mpi4py import MPI

    from continuum.boundary import Displacement
    from coupling.problem import CoupledProblem

    continuum_cells = (cells - core - 3) // 2 - 2
    cube = bar_geometry(a0, handshake_A=CUTOFF_A, core_cells=core, embedded=True, continuum_cells=continuum_cells)
    if abs(cube.length - cells * a0) > 1e-9:
        raise ValueError(f"core = {core}: the coupled cube must be {cells} unit cells wide (core + cells odd)")
    perfect = bar_atoms(cube)
    centre = defect_centre(perfect.positions, cube.length, a0, defect) if defect else None
    atoms = remove_defect(perfect, centre, a0, defect)
    bcs = tuple(Displacement(face, tuple((STRAIN[i, i] * cube.length if face.endswith("max") else 0.0)
                                         if face[0] == axis else None for i, axis in enumerate("xyz")))
                for face in ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax"))
    problem = CoupledProblem(bar_domain(MPI.COMM_SELF, cube), {"body1": material}, atoms, model, cube.handshake,
                             bcs=bcs, ghost_force_reference=perfect if perfect_reference else None)
    out = {"X": atoms.positions.copy(), "regions": problem.regions()}
    ok, its0, why = problem.solve_to(0.0)
    if not ok:
        raise RuntimeError(f"unloaded coupled solve failed: {why}")
    out["x0"], out["E0"] = problem.atoms().positions, problem.energies()["total"]
    step = problem.solve(1)[-1]
    out["x1"], out["E1"] = problem.atoms().positions, step.energies_eV["total"]
    out["newton"] = (its0, step.newton_iterations)
    return out


def defect_response(perfect: dict, with_defect: dict) -> dict:
    """What the defect does in one model: ``du0``, ``du1`` (n, 3) Å at the defect's atoms
    (unloaded, loaded) and ``dE`` (eV), its share of the energy change under the load."""
    match = cKDTree(perfect["X"]).query(with_defect["X"])[1]
    return {"X": with_defect["X"],
            "du0": with_defect["x0"] - perfect["x0"][match], "du1": with_defect["x1"] - perfect["x1"][match],
            "dE": (with_defect["E1"] - with_defect["E0"]) - (perfect["E1"] - perfect["E0"]),
            "DeltaE": with_defect["E1"] - with_defect["E0"]}


def compare(full: dict, model_: dict, centre: np.ndarray) -> dict:
    """Coupled against fully atomistic, at the atoms within :data:`COMPARE_RADIUS_A` of the
    defect's centre: rms state errors relative to the defect's own rms relaxation (unloaded
    ``state0``, loaded ``state1``), the largest error (Å), and the relative error of the
    defect's share of the energy change (``energy``)."""
    near = np.linalg.norm(model_["X"] - centre, axis=1) < COMPARE_RADIUS_A
    match = cKDTree(full["X"]).query(model_["X"][near])[1]
    out = {"atoms_compared": int(near.sum())}
    for key in ("0", "1"):
        exact, approx = full["du" + key][match], model_["du" + key][near]
        err = np.linalg.norm(approx - exact, axis=1)
        out["relaxation_rms_A" + key] = float(np.sqrt(np.mean(np.sum(exact**2, axis=1))))
        out["state" + key] = float(np.sqrt(np.mean(err**2))) / out["relaxation_rms_A" + key]
        out["max_error_A" + key] = float(err.max())
    out["dE_full"], out["dE_coupled"] = full["dE"], model_["dE"]
    out["energy"] = abs(model_["dE"] - full["dE"]) / abs(full["dE"])
    return out
