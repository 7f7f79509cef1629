"""A labelled fcc Cu dataset from ASE's EMT calculator.

Families (each frame labelled with energy, forces and, for 3-D periodic cells, stress):
strained and rattled bulk of several sizes, compressed and expanded cells (EOS), (100)/(110)/(111)
slabs, a vacancy, an adatom on (100), snapshots from EMT Langevin MD at 300-1500 K, images along
the adatom hop on Cu(100) (NEB with EMT), and two half-crystals pulled apart across (100) and
(111) planes at openings 0-6 Å (for the cohesive law).

``size`` scales the number of frames per family: 1.0 for the shipped model, ~0.1 for tests.
"""

from __future__ import annotations

import logging

import numpy as np
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc100, fcc110, fcc111
from ase.calculators.emt import EMT
from ase.eos import EquationOfState
from ase.lattice.cubic import FaceCenteredCubic
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta
from ase.mep import NEB
from ase.optimize import BFGS, FIRE

from atomistic import units
from atomistic.training.data import label_with

log = logging.getLogger(__name__)


def emt_lattice_constant() -> float:
    """EMT's equilibrium fcc lattice constant of Cu, Å (EOS fit)."""
    volumes, energies = [], []
    for a in np.linspace(3.5, 3.7, 9):
        atoms = bulk("Cu", "fcc", a=a)
        atoms.calc = EMT()
        volumes.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
    v0, _, _ = EquationOfState(volumes, energies).fit()
    return float((4 * v0) ** (1 / 3))


def _n(count: float, size: float) -> int:
    return max(1, int(round(count * size)))


def _random_strain(rng, amplitude: float) -> np.ndarray:
    e = rng.uniform(-amplitude, amplitude, (3, 3))
    return np.eye(3) + 0.5 * (e + e.T)


def _strained_bulk(rng, a0: float, size: float) -> list[Atoms]:
    out = []
    for reps, count, rattle in (((1, 1, 1), 30, 0.0), ((1, 1, 1), 20, 0.05), ((2, 2, 2), 30, 0.08),
                                ((3, 3, 3), 4, 0.1)):
        for _ in range(_n(count, size)):
            atoms = bulk("Cu", "fcc", a=a0, cubic=True).repeat(reps)
            atoms.set_cell(atoms.cell.array @ _random_strain(rng, 0.03), scale_atoms=True)
            if rattle:
                atoms.rattle(rattle, seed=int(rng.integers(1 << 30)))
            out.append(atoms)
    for _ in range(_n(20, size)):  # primitive cells, small strains: the elastic response
        atoms = bulk("Cu", "fcc", a=a0)
        atoms.set_cell(atoms.cell.array @ _random_strain(rng, 0.02), scale_atoms=True)
        out.append(atoms)
    return out


def _eos(rng, a0: float, size: float) -> list[Atoms]:
    out = []
    for s in np.linspace(0.93, 1.10, _n(24, size)):
        atoms = bulk("Cu", "fcc", a=a0 * s, cubic=True)
        atoms.rattle(0.02, seed=int(rng.integers(1 << 30)))
        out.append(atoms)
    return out


def _slabs(rng, a0: float, size: float) -> list[Atoms]:
    out = []
    makers = ((fcc100, (2, 2, 6)), (fcc110, (2, 2, 8)), (fcc111, (2, 2, 6)))
    for make, shape in makers:
        base = make("Cu", shape, a=a0, vacuum=6.0, periodic=True)
        relaxed = base.copy()
        relaxed.pbc = (True, True, False)
        relaxed.calc = EMT()
        FIRE(relaxed, logfile=None).run(fmax=0.01, steps=200)
        relaxed.calc = None
        relaxed.pbc = True
        out += [base, relaxed]
        for _ in range(_n(12, size)):
            atoms = relaxed.copy()
            atoms.rattle(rng.uniform(0.03, 0.12), seed=int(rng.integers(1 << 30)))
            out.append(atoms)
    return out


def _defects(rng, a0: float, size: float) -> list[Atoms]:
    out = []
    for reps, count in (((2, 2, 2), 12), ((3, 3, 3), 2)):
        for k in range(_n(count, size)):
            atoms = bulk("Cu", "fcc", a=a0, cubic=True).repeat(reps)
            del atoms[0]
            if k == 0:
                atoms.calc = EMT()
                BFGS(atoms, logfile=None).run(fmax=0.01, steps=100)
                atoms.calc = None
            else:
                atoms.rattle(rng.uniform(0.02, 0.1), seed=int(rng.integers(1 << 30)))
            out.append(atoms)
    for _ in range(_n(12, size)):  # adatom on (100), hollow site
        slab = fcc100("Cu", (3, 3, 4), a=a0, vacuum=6.0, periodic=True)
        add_adsorbate(slab, "Cu", 1.7, "hollow")
        slab.center(vacuum=6.0, axis=2)
        slab.rattle(rng.uniform(0.0, 0.1), seed=int(rng.integers(1 << 30)))
        out.append(slab)
    return out


def _md(rng, a0: float, size: float) -> list[Atoms]:
    out = []
    for temperature in (300, 700, 1100, 1500):
        atoms = bulk("Cu", "fcc", a=a0 * (1 + 2e-5 * temperature), cubic=True).repeat((2, 2, 2))
        atoms.calc = EMT()
        thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
        dyn = Langevin(atoms, 4 * units.fs, temperature_K=temperature, friction=0.02, rng=rng, fixcm=False)
        for _ in range(_n(12, size)):
            dyn.run(25)
            snap = atoms.copy()
            snap.calc = None
            out.append(snap)
    return out


def adatom_hop_images(a0: float, n_images: int = 7) -> list[Atoms]:
    """Converged climbing-image NEB path (EMT) of a Cu adatom hopping between (100) hollows."""
    initial = fcc100("Cu", (3, 3, 3), a=a0, vacuum=6.0)
    add_adsorbate(initial, "Cu", 1.7, "hollow")
    initial.center(vacuum=6.0, axis=2)
    fixed = [a.index for a in initial if a.position[2] < initial.positions[:, 2].min() + 0.5]
    from ase.constraints import FixAtoms

    initial.set_constraint(FixAtoms(indices=fixed))
    final = initial.copy()
    final.positions[-1, 0] += a0 / np.sqrt(2)
    for end in (initial, final):
        end.calc = EMT()
        BFGS(end, logfile=None).run(fmax=0.01, steps=200)
    images = [initial] + [initial.copy() for _ in range(n_images - 2)] + [final]
    for im in images[1:-1]:
        im.calc = EMT()
    neb = NEB(images, climb=True, method="improvedtangent")
    neb.interpolate()
    FIRE(neb, logfile=None).run(fmax=0.03, steps=300)
    return images


def _hop(rng, a0: float, size: float) -> list[Atoms]:
    """The converged hop path (9 images), rattled copies of each image, and copies with the
    adatom alone displaced: low-coordinated adatom sites (bridge, on top of the slope) are rare
    elsewhere in the data, and the barrier is what rate calculations need most."""
    out = []
    for im in adatom_hop_images(a0, n_images=9):
        base = im.copy()
        base.set_constraint()
        base.pbc = True
        base.calc = None
        out.append(base)
        for _ in range(_n(6, size)):
            atoms = base.copy()
            atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
            out.append(atoms)
        for _ in range(_n(4, size)):
            atoms = base.copy()
            atoms.positions[-1] += rng.normal(scale=0.2, size=3)
            out.append(atoms)
    return out


def half_crystals(a0: float, plane: str, opening: float, layers: int = 10) -> Atoms:
    """Periodic crystal of ``layers`` planes normal to z, split in the middle by ``opening`` Å."""
    directions = {"100": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
                  "111": [[1, -1, 0], [1, 1, -2], [1, 1, 1]]}[plane]
    atoms = FaceCenteredCubic("Cu", directions=directions, latticeconstant=a0, size=(1, 1, 1), pbc=True)
    per_cell = {"100": 2, "111": 3}[plane]
    atoms = atoms.repeat((1, 1, max(1, layers // per_cell)))
    z = atoms.positions[:, 2]
    upper = z >= 0.5 * atoms.cell[2, 2] - 1e-6
    atoms.positions[upper, 2] += opening
    cell = atoms.cell.array.copy()
    cell[2, 2] += opening
    atoms.set_cell(cell)
    return atoms


def _separation(rng, a0: float, size: float) -> list[Atoms]:
    out = []
    for plane in ("100", "111"):
        for opening in np.linspace(0.0, 6.0, _n(25, size)):
            out.append(half_crystals(a0, plane, float(opening)))
    return out


FAMILIES = {
    "strained_bulk": _strained_bulk, "eos": _eos, "slabs": _slabs, "defects": _defects,
    "md": _md, "adatom_hop": _hop, "separation": _separation,
}


def build(seed: int = 0, size: float = 1.0, families: tuple[str, ...] | None = None) -> list[Atoms]:
    """Generate and label the dataset; each frame carries ``info["family"]``."""
    rng = np.random.default_rng(seed)
    a0 = emt_lattice_constant()
    frames = []
    for name in families or tuple(FAMILIES):
        structures = FAMILIES[name](rng, a0, size)
        for atoms in structures:
            labelled = label_with(atoms, EMT())
            labelled.info.pop("adsorbate_info", None)
            labelled.info["family"] = name
            frames.append(labelled)
        log.info("cu_emt: %-14s %4d frames", name, len(structures))
    return frames
