"""Small coupled problems shared by the tests, the benchmark and the MPI runs: a bar of Cu along x
whose middle is atomistic (coupled to the continuum through its xmin and xmax faces)."""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass

import numpy as np

from continuum.domain import Domain
from continuum.geometry import box
from coupling.handshake import Handshake, fill_region

CUTOFF_A = 5.0  # the shipped model's cutoff


@functools.lru_cache(maxsize=2)
def cu_crystal(model, law: str = "cauchy-born"):
    """The model's Cu: the Cauchy-Born (or linear) material and the lattice constant (Å)."""
    from coupling.materials import crystal_material

    crystal = crystal_material(model, symbol="Cu", a_guess_A=3.6, law=law)
    return crystal.material, crystal.lattice_constant_A


@dataclass
class Bar:
    """The geometry: lengths in Å along x; cross-section ``width`` x ``width``."""

    a0: float
    width: float
    length: float
    atoms_lo: float
    atoms_hi: float
    handshake: Handshake


def bar_geometry(a0: float, *, handshake_A: float, core_cells: int = 2, width_cells: int = 5,
                 continuum_cells: int = 3, ramp: str = "c1", pad_A: float = CUTOFF_A + 0.2,
                 embedded: bool = False, length_cells: int | None = None) -> Bar:
    """A bar ``width_cells`` unit cells square, atoms in the middle: a core of at least
    ``core_cells`` unit cells, a handshake of ``handshake_A`` on each side, a pad, and
    ``continuum_cells`` unit cells of continuum beyond the pad. ``embedded``: a cube instead,
    the atoms coupled on all six faces (``width_cells`` is then ignored). ``length_cells``: the
    bar's length (unit cells), fixed; the continuum then takes what the atoms leave."""
    pad_cells = int(np.ceil(pad_A / a0))
    atom_cells = int(np.ceil((2 * handshake_A) / a0)) + core_cells
    if length_cells is not None:
        continuum_cells = (length_cells - atom_cells) // 2 - pad_cells
        atom_cells = length_cells - 2 * (continuum_cells + pad_cells)
    lo = (continuum_cells + pad_cells) * a0
    hi = lo + atom_cells * a0
    length = hi + (pad_cells + continuum_cells) * a0
    if embedded:
        hs = Handshake((lo, lo, lo), (hi, hi, hi), handshake_A, pad_A, ramp=ramp)
        return Bar(a0, length, length, lo, hi, hs)
    width = width_cells * a0
    hs = Handshake((lo, -1.0, -1.0), (hi, width + 1.0, width + 1.0), handshake_A, pad_A,
                   coupled_faces=("xmin", "xmax"), ramp=ramp)
    return Bar(a0, width, length, lo, hi, hs)


def held_ends():
    """The bar's two end faces held where they are (Dirichlet, not ramped)."""
    from continuum.boundary import Displacement

    return tuple(Displacement(face, (0.0, 0.0, 0.0), ramp=False) for face in ("xmin", "xmax"))


def bar_domain(comm, bar: Bar, cut: tuple[str, float] | None = None, cell_type: str = "hexahedron",
               per_cell: int = 1):
    """The mesh: ``per_cell`` elements per unit cell along each axis; a cut ``(axis, position)``
    (the interface ``gamma``, between ``body1`` below and ``body2`` above) if given."""
    n = tuple(per_cell * int(round(size / bar.a0)) for size in (bar.length, bar.width, bar.width))
    cuts = ((cut[0], cut[1], "gamma"),) if cut is not None else ()
    raw = box((bar.length, bar.width, bar.width), n, cell_type=cell_type, cuts=cuts) if comm.rank == 0 else None
    return Domain.create(raw, comm)


def bar_atoms(bar: Bar, cut: tuple[str, float] | None = None, body_tags=(1, 2)):
    """Cu atoms on the lattice (a quarter cell in from the mesh's faces) where the handshake wants
    them (core, handshake, pad); body labels by side of the ``cut``."""
    atoms = fill_region("Cu", "fcc", bar.a0, ((1, 0, 0), (0, 1, 0)), bar.handshake, (bar.length, bar.width, bar.width),
                        site_A=(bar.a0 / 4,) * 3)
    if cut is not None:
        axis = "xyz".index(cut[0])
        atoms.arrays["body"] = np.where(atoms.positions[:, axis] < cut[1], body_tags[0], body_tags[1])
    return atoms


def lattice_keys(positions: np.ndarray, a0: float) -> list[tuple[int, int, int]]:
    """Each position's fcc site (Å) as integers in quarter cells: the key that matches an atom
    to its site while it sits within an eighth of a cell of it."""
    return [tuple(k) for k in np.round(np.asarray(positions) / (a0 / 4)).astype(int)]


@functools.lru_cache(maxsize=8)
def _relaxed_wire_unit(model, a0: float, width_cells: int, strain: float):
    """Two unit cells of the periodic wire of :func:`relaxed_wire`, relaxed: the unit (ASE
    ``Atoms``, no calculator) and its lattice sites (Å, unstretched). Read-only: copy to change."""
    from ase.build import bulk
    from ase.optimize import FIRE

    from atomistic.calculator import NNPCalculator

    unit = bulk("Cu", "fcc", a=a0, cubic=True).repeat((2, width_cells, width_cells))
    unit.positions += a0 / 4
    sites = unit.get_positions()
    stretch = 1.0 + strain
    unit.positions[:, 0] *= stretch
    unit.set_cell(np.diag([2 * a0 * stretch, width_cells * a0 + 20.0, width_cells * a0 + 20.0]))
    unit.set_pbc((True, False, False))
    unit.calc = NNPCalculator(model)
    FIRE(unit, logfile=None).run(fmax=1e-4, steps=5000)
    unit.calc = None
    return unit, sites


def relaxed_wire(model, a0: float, width_cells: int, length_cells: int = 2, strain: float = 0.0):
    """A free-standing Cu wire along x, ``width_cells`` unit cells square (its lattice sites a
    quarter cell in, as :func:`bar_atoms`), periodic over ``length_cells`` (even) unit cells
    stretched by ``strain``, relaxed at that length (the wire repeats every two cells: two are
    relaxed, once per model, size and strain, and repeated). Returns the wire and its lattice
    sites (Å, unstretched)."""
    unit, sites = _relaxed_wire_unit(model, a0, width_cells, float(strain))
    repeats = length_cells // 2
    wire = unit.repeat((repeats, 1, 1))
    shifts = np.repeat(np.arange(repeats) * 2 * a0, len(unit))
    lattice = np.tile(sites, (repeats, 1))
    lattice[:, 0] += shifts
    return wire, lattice


def wire_atoms(bar: Bar, model):
    """:func:`bar_atoms` at the rest positions of the free-standing wire of the bar's section
    (relaxed at the bulk lattice's length): a thin bar's surfaces relax, and a reference
    configuration that is not at rest near the handshake turns the ghost-force correction's dead
    load into a prestrain of the core (+2 % in a wire 3 unit cells across, against -2 % without
    the correction; see docs/verification.md, "Waves through the handshake")."""
    a0 = bar.a0
    unit, sites = relaxed_wire(model, a0, int(round(bar.width / a0)))
    relaxation = dict(zip(lattice_keys(sites, a0), unit.positions - sites))
    atoms = bar_atoms(bar)
    folded = atoms.positions.copy()
    folded[:, 0] = np.mod(folded[:, 0], 2 * a0)
    atoms.positions += np.array([relaxation[k] for k in lattice_keys(folded, a0)])
    return atoms


def bonded_bars(comm, model, material, a0: float, law, pull_A: float, *, mask_bodies: bool = True):
    """Two Cu bars bonded by ``law`` on the plane y = 3 a0 along their whole length, through the
    continuum, the handshake and the atoms (bodies ``body1`` below, ``body2`` above); ymin held,
    ymax pulled by ``pull_A`` along y. ``model`` is read on rank 0."""
    from continuum.boundary import Displacement
    from continuum.interface import InterfaceLaw
    from coupling.problem import CoupledProblem

    bar = bar_geometry(a0, handshake_A=CUTOFF_A, width_cells=6, continuum_cells=2)
    cut = ("y", 3 * a0)
    domain = bar_domain(comm, bar, cut=cut)
    atoms = bar_atoms(bar, cut=cut, body_tags=(domain.bodies["body1"], domain.bodies["body2"])) \
        if comm.rank == 0 else None
    bcs = (Displacement("ymin", (0.0, 0.0, 0.0), ramp=False), Displacement("ymax", (0.0, pull_A, 0.0)))
    problem = CoupledProblem(domain, {"body1": material, "body2": material}, atoms, model, bar.handshake, bcs=bcs,
                             interfaces={"gamma": InterfaceLaw(law)}, mask_bodies=mask_bodies)
    return problem, bar


def main(name: str) -> None:  # under mpiexec: the energies of one coupled case as JSON on rank 0
    from mpi4py import MPI

    from atomistic import load_potential
    from coupling.cohesive_law import separation_curve

    comm = MPI.COMM_WORLD
    model, setup = None, None
    if comm.rank == 0:
        from pathlib import Path

        model = load_potential(Path(__file__).resolve().parents[1] / "cases" / "models" / "cu_emt.safetensors")
        material, a0 = cu_crystal(model)
        setup = (material, a0, separation_curve(model, "Cu", a0, plane="100").uber())
    material, a0, law = comm.bcast(setup, root=0)
    problem, _ = bonded_bars(comm, model, material, a0, law, pull_A={"pull": 0.3}[name])
    steps = problem.solve(2)
    if comm.rank == 0:
        print(json.dumps({"energies": steps[-1].energies_eV, "ranks": comm.size,
                          "newton": [s.newton_iterations for s in steps]}))


STRAINS = {"uniaxial": np.diag([0.01, 0.0, 0.0]), "hydrostatic": 0.01 * np.eye(3),
           "shear": np.array([[0.0, 0.005, 0.0], [0.005, 0.0, 0.0], [0.0, 0.0, 0.0]])}


def patch_test(model, material, a0: float, width_A: float, ramp: str) -> dict:
    """DESIGN V7 on a bar (9 x 9 unit cells, coupled through xmin and xmax, the mesh at a0/2):
    under each uniform strain of :data:`STRAINS`, the largest residual force (eV/Å) on the free
    atoms and on the nodes, with and without the ghost-force correction. Atoms and nodes within
    two cutoffs and a lattice constant of the bar's free surfaces are left out (surface forces
    are physics, not coupling error), as are the nodes of the end faces (they carry the load)."""
    from mpi4py import MPI

    from coupling.problem import CoupledProblem

    bar = bar_geometry(a0, handshake_A=width_A, ramp=ramp, width_cells=9)
    problem = CoupledProblem(bar_domain(MPI.COMM_SELF, bar, per_cell=2), {"body1": material}, bar_atoms(bar), model,
                             bar.handshake)
    band = 2 * CUTOFF_A + a0

    def inner(X):
        return np.all((X[:, 1:] > band) & (X[:, 1:] < bar.width - band), axis=1)

    region = problem.region
    out = {"atoms": region.n_atoms}
    for name, strain in STRAINS.items():
        problem.set_displacement(lambda X, s=strain: X @ s.T)
        for corrected in (False, True):
            x, nodal, free = problem.split(problem.gradient(corrected=corrected))
            nodes = inner(x) & (x[:, 0] > 1e-6) & (x[:, 0] < bar.length - 1e-6)
            atoms = inner(region.X[region.free])
            key = "corrected" if corrected else "raw"
            out[name, key] = (float(np.linalg.norm(free[atoms], axis=1).max()),
                              float(np.linalg.norm(nodal[nodes], axis=1).max()))
    return out


if __name__ == "__main__":
    main(sys.argv[1])
