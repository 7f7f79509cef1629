"""Coupled dynamics against full MD of the same body, with the same model: a pulse in a Cu bar.

A Cu bar (``WIDTH_CELLS`` unit cells square, ``LENGTH_CELLS`` long, free lateral surfaces, both
ends held) at rest at 0 K, relaxed; then a longitudinal bar-wave pulse (Gaussian, ``sigma = 1.5
a0``, a peak strain of about 0.5 %, with Love's lateral contraction) is launched from the middle
towards +x. It crosses the core, the handshake and the continuum, reflects at the held end and
comes back through the middle: ``LENGTH_CELLS a0 / c_bar`` in all.

- coupled: :class:`coupling.dynamics.CoupledDynamics`, the middle atomistic (a core of
  ``core_cells`` unit cells and a 5 Å C1 handshake on each side), the rest the Cauchy-Born
  continuum of the model (one hexahedron per unit cell), the mesh's end faces held;
- full MD: every atom of the bar (the same lattice sites), the atoms within half a unit cell of
  either end held (ASE's ``FixAtoms``), relaxed, then our MD engine (NVE, Verlet list).

The coupled run's atoms sit at the rest positions of the free-standing wire of the same section
(:func:`tests.coupling_cases.wire_atoms`), which the full MD's relaxed bar has away from its ends:
at the bulk lattice, the ghost-force correction would prestrain the core by 2 %, and its pulse
would run at another speed.

Both run velocity Verlet at ``TIMESTEP_FS`` from their own relaxed state, the pulse's fields
evaluated at the rest positions. The error is the
displacement history of the atoms within one unit cell of the middle (every core has them
free): ``sqrt(sum |u_coupled - u_full|^2 / sum |u_full|^2)`` over them and over the samples
(every 10 steps), each run's displacements from its own relaxed state.

    python -m tests.full_md_cases [core_cells ...]     # the table of docs/verification.md
"""

from __future__ import annotations

import sys
import time

import numpy as np
from ase import units

from .coupling_cases import bar_domain, bar_geometry, cu_crystal, held_ends, wire_atoms

WIDTH_CELLS = 3
LENGTH_CELLS = 24
TIMESTEP_FS = 4.0
SAMPLE_EVERY = 10
HANDSHAKE_A = 5.0


def setting(model, length_cells: int = LENGTH_CELLS, round_trip: bool = True) -> dict:
    """The material, the bar wave's speed (Å/fs), the pulse and the run's length (steps): out to
    the held end and back to the middle (the first half of the samples is the way out), or, not
    ``round_trip``, the way out alone."""
    from coupling.dynamics import Pulse, crystal_density_amu_A3
    from coupling.dynamics_settings import lateral_ratios, wave_speed_A_fs

    material, a0 = cu_crystal(model)
    density = crystal_density_amu_A3(63.546, "fcc", a0)
    c0 = wave_speed_A_fs(material.tensor.C, density, wave="bar")
    length, width = length_cells * a0, WIDTH_CELLS * a0
    sigma = 1.5 * a0
    duration = (1.0 if round_trip else 0.5) * length / c0 / TIMESTEP_FS  # steps
    pulse = Pulse(0, length / 2, sigma, 0.005 * sigma * np.sqrt(np.e), lateral=lateral_ratios(material.tensor.C),
                  lateral_centre_A=(0.0, width / 2, width / 2))
    return {"material": material, "a0": a0, "density": density, "c0": c0, "pulse": pulse, "length": length,
            "length_cells": length_cells, "width": width, "steps": int(np.ceil(duration / SAMPLE_EVERY)) * SAMPLE_EVERY}


def watched(X: np.ndarray, st: dict) -> np.ndarray:
    """Which of the reference positions ``X`` (k, 3) Å are the middle's atoms (within one unit cell)."""
    return np.abs(X[:, 0] - st["length"] / 2) <= st["a0"]


def coupled_history(model, core_cells: int, st: dict | None = None) -> dict:
    """The coupled run: the middle atoms' reference positions and displacement history (samples,
    atoms, 3) Å, the atoms, and the seconds per step."""
    from mpi4py import MPI

    from coupling.dynamics import CoupledDynamics
    from coupling.problem import CoupledProblem

    st = st or setting(model)
    bar = bar_geometry(st["a0"], handshake_A=HANDSHAKE_A, core_cells=core_cells, width_cells=WIDTH_CELLS,
                       length_cells=st["length_cells"])
    problem = CoupledProblem(bar_domain(MPI.COMM_SELF, bar), {"body1": st["material"]}, wire_atoms(bar, model),
                             model, bar.handshake, bcs=held_ends())
    problem.solve(1)
    dynamics = CoupledDynamics(problem, st["density"], TIMESTEP_FS, check_stability=False)
    region = problem.region
    X = region.X[region.free]
    mine = watched(X, st)
    rest = problem.atoms().positions[region.free][mine]
    dynamics.launch(st["pulse"], st["c0"])
    history = [problem.atoms().positions[region.free][mine] - rest]
    t0 = time.perf_counter()
    while dynamics.steps_done < st["steps"]:
        dynamics.run(SAMPLE_EVERY)
        history.append(problem.atoms().positions[region.free][mine] - rest)
    return {"X": X[mine], "u": np.array(history), "atoms": problem.regions(),
            "step_s": (time.perf_counter() - t0) / st["steps"]}


def full_history(model, st: dict | None = None) -> dict:
    """Full MD of the bar: the middle atoms' reference positions and displacement history, the
    number of atoms, and the seconds per step."""
    from ase.build import bulk
    from ase.constraints import FixAtoms
    from ase.optimize import FIRE

    from atomistic.calculator import NNPCalculator
    from atomistic.md import MDSettings, MolecularDynamics

    st = st or setting(model)
    a0 = st["a0"]
    atoms = bulk("Cu", "fcc", a=a0, cubic=True).repeat((st["length_cells"], WIDTH_CELLS, WIDTH_CELLS))
    atoms.translate((a0 / 4, a0 / 4, a0 / 4))  # the coupled run's lattice sites (bar_atoms)
    atoms.set_pbc(False)
    X = atoms.get_positions()
    ends = (X[:, 0] < a0 / 2) | (X[:, 0] > st["length"] - a0 / 2)
    atoms.set_constraint(FixAtoms(mask=ends))
    atoms.calc = NNPCalculator(model)
    FIRE(atoms, logfile=None).run(fmax=1e-4, steps=5000)
    relaxed = atoms.get_positions()
    mine = watched(X, st)
    u, v = st["pulse"].fields(relaxed, st["c0"])  # at the rest positions, as the coupled run's
    u[ends], v[ends] = 0.0, 0.0
    atoms.set_positions(relaxed + u)
    atoms.set_velocities(v / units.fs)
    settings = MDSettings(ensemble="nve", steps=0, timestep_fs=TIMESTEP_FS, log_every=0, trajectory_every=0,
                          checkpoint_every=0, check_every=SAMPLE_EVERY)
    md = MolecularDynamics(model, atoms, settings, device="cpu")
    history = {0: atoms.get_positions()[mine] - relaxed[mine]}
    t0 = time.perf_counter()
    for state in md.irun(st["steps"]):
        if state.step % SAMPLE_EVERY == 0:
            history[state.step] = state.positions.numpy()[mine] - relaxed[mine]
    history = [history[k] for k in range(0, st["steps"] + 1, SAMPLE_EVERY)]
    return {"X": X[mine], "u": np.array(history), "atoms": len(atoms),
            "step_s": (time.perf_counter() - t0) / st["steps"]}


def error(coupled: dict, full: dict, samples: slice = slice(None)) -> float:
    """The relative RMS difference of the two displacement histories over ``samples``, atoms
    matched by site."""
    match = np.argmin(np.linalg.norm(full["X"][None] - coupled["X"][:, None], axis=2), axis=1)
    assert np.allclose(full["X"][match], coupled["X"], atol=0.3), "the runs' lattice sites differ"
    reference = full["u"][samples][:, match]
    return float(np.sqrt(((coupled["u"][samples] - reference) ** 2).sum() / (reference**2).sum()))


def halves(coupled: dict, full: dict) -> dict[str, float]:
    """The error on the way out (the first half of the samples), on the way back, and overall."""
    half = len(full["u"]) // 2
    return {"out": error(coupled, full, slice(0, half + 1)), "back": error(coupled, full, slice(half, None)),
            "all": error(coupled, full)}


def table(model, cores: tuple[int, ...], log=print) -> list[dict]:
    st = setting(model)
    full = full_history(model, st)
    log(f"full MD: {full['atoms']} atoms, {st['steps']} steps of {TIMESTEP_FS:g} fs, {1e3 * full['step_s']:.1f} ms "
        f"per step; largest displacement of the middle atoms {np.abs(full['u']).max():.3g} Å")
    rows = []
    for core in cores:
        c = coupled_history(model, core, st)
        rows.append({"core_cells": core, "atoms": c["atoms"], "error": halves(c, full),
                     "coupled_ms": 1e3 * c["step_s"], "full_ms": 1e3 * full["step_s"],
                     "full_over_coupled": full["step_s"] / c["step_s"]})
        e = rows[-1]["error"]
        log(f"core {core} a0: {c['atoms']}, error out {e['out']:.3g}, back {e['back']:.3g}, all {e['all']:.3g}, "
            f"{1e3 * c['step_s']:.1f} ms per step, "
            f"full MD / coupled {rows[-1]['full_over_coupled']:.2f}")
    return rows


def main(argv: list[str]) -> None:
    from atomistic import load_potential

    from .conftest import SHIPPED_MODEL

    cores = tuple(int(a) for a in argv) or (2, 6, 10, 14)
    table(load_potential(SHIPPED_MODEL), cores)


if __name__ == "__main__":
    main(sys.argv[1:])
