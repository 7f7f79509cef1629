"""Where a coupled dynamics step spends its time, and the coupled run against full MD of the body.

    python bench/coupled_dynamics.py [--lengths 16 32 64] [--width 4] [--steps 200] [--json out.json]

A Cu bar (the shipped NN-PES in float64 and its Cauchy-Born continuum), ``--width`` unit cells
square and ``--lengths`` unit cells long, its ends held. Coupled: the middle is atomistic (a core
of 4 unit cells, a 5 Å C1 handshake on each side, the pad beyond), the rest continuum with one
hexahedron per unit cell; the free atoms start at 50 K; velocity Verlet at 4 fs
(:class:`coupling.dynamics.CoupledDynamics`). Full MD: every atom of the same bar (free
surfaces), our MD engine (NVE, float64, Verlet list) at the same time step from 50 K. Both take
the same steps, so the ratio of their times per step is the ratio at equal physical time.

The coupled step is split into
- ``atoms``: the NN-PES of the blended atoms (neighbour list, energy and forces),
- ``continuum``: the continuum's state update and residual assembly,
- ``transfer``: ``d = T z`` and ``T^T f`` (PETSc) and the copies in and out,
- ``integrator``: the rest (kicks, drifts, the step check);
``coupling`` = transfer / (atoms + continuum), the coupling's own cost.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ase.build import bulk  # noqa: E402
from ase.data import atomic_masses, atomic_numbers  # noqa: E402
from mpi4py import MPI  # noqa: E402

from atomistic import load_potential  # noqa: E402
from atomistic.md import MDSettings, MolecularDynamics  # noqa: E402
from coupling.dynamics import CoupledDynamics, crystal_density_amu_A3  # noqa: E402
from coupling.problem import CoupledProblem  # noqa: E402
from tests.coupling_cases import bar_atoms, bar_domain, bar_geometry, cu_crystal, held_ends  # noqa: E402

COMM = MPI.COMM_WORLD
TIMESTEP_FS = 4.0
TEMPERATURE_K = 50.0
WARM_UP = 20


def coupled(model, material, a0: float, length: int, width: int, steps: int) -> dict:
    bar = bar_geometry(a0, handshake_A=5.0, core_cells=4, width_cells=width, length_cells=length)
    domain = bar_domain(COMM, bar)
    atoms = bar_atoms(bar) if COMM.rank == 0 else None
    problem = CoupledProblem(domain, {"body1": material}, atoms, model if COMM.rank == 0 else None, bar.handshake,
                             bcs=held_ends())
    problem.solve(1)
    density = crystal_density_amu_A3(float(atomic_masses[atomic_numbers["Cu"]]), "fcc", a0)
    dynamics = CoupledDynamics(problem, density, TIMESTEP_FS)
    dynamics.set_temperature(TEMPERATURE_K, seed=0)
    dynamics.run(WARM_UP)
    before = dict(problem.timings)
    COMM.Barrier()
    t0 = time.perf_counter()
    dynamics.run(steps)
    COMM.Barrier()
    wall = (time.perf_counter() - t0) / steps
    spent = {k: (problem.timings[k] - before.get(k, 0.0)) / steps for k in problem.timings}
    atoms_s = spent.get("atoms", 0.0)
    continuum_s = spent.get("continuum:update", 0.0) + spent.get("continuum:residual", 0.0)
    transfer_s = spent.get("transfer", 0.0)
    return {"atoms": problem.regions(), "dofs": problem.V.dofmap.index_map.size_global * 3, "step_ms": 1e3 * wall,
            "atoms_ms": 1e3 * atoms_s, "continuum_ms": 1e3 * continuum_s, "transfer_ms": 1e3 * transfer_s,
            "integrator_ms": 1e3 * (wall - atoms_s - continuum_s - transfer_s),
            "coupling_share": transfer_s / (atoms_s + continuum_s)}


def full_md(model, a0: float, length: int, width: int, steps: int) -> dict:
    atoms = bulk("Cu", "fcc", a=a0, cubic=True).repeat((length, width, width))
    atoms.positions += a0 / 4  # the coupled run's lattice sites
    atoms.pbc = False
    settings = MDSettings(ensemble="nve", steps=0, timestep_fs=TIMESTEP_FS, initial_temperature_K=TEMPERATURE_K,
                          log_every=0, trajectory_every=0, checkpoint_every=0, check_every=20)
    md = MolecularDynamics(model, atoms, settings, device="cpu")
    md.run(WARM_UP)
    t0 = time.perf_counter()
    md.run(WARM_UP + steps)
    return {"atoms": len(atoms), "step_ms": 1e3 * (time.perf_counter() - t0) / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 32, 64], help="bar lengths, unit cells")
    parser.add_argument("--width", type=int, default=4, help="the bar's section, unit cells square")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per run")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model = load_potential(ROOT / "cases" / "models" / "cu_emt.safetensors")
    material, a0 = cu_crystal(model)
    rows = []
    for length in args.lengths:
        c = coupled(model, material, a0, length, args.width, args.steps)
        f = full_md(model, a0, length, args.width, args.steps) if COMM.rank == 0 else None
        if COMM.rank == 0:
            rows.append({"length_cells": length, "width_cells": args.width, "coupled": c, "full_md": f,
                         "full_over_coupled": f["step_ms"] / c["step_ms"]})
    if COMM.rank != 0:
        return
    print(f"Cu bar {args.width} x {args.width} unit cells, float64, {args.steps} steps of {TIMESTEP_FS:g} fs, "
          f"{COMM.size} rank(s); ms per step")
    head = ("length", "full MD atoms", "full MD", "coupled atoms (free)", "dofs", "coupled", "atoms", "continuum",
            "transfer", "integrator", "coupling", "full MD / coupled")
    print(" | ".join(head))
    for r in rows:
        c, f = r["coupled"], r["full_md"]
        print(" | ".join([f"{r['length_cells']} a0", str(f["atoms"]), f"{f['step_ms']:.1f}",
                          f"{sum(c['atoms'].values())} ({c['atoms']['free']})", str(c["dofs"]), f"{c['step_ms']:.1f}",
                          f"{c['atoms_ms']:.1f}", f"{c['continuum_ms']:.1f}", f"{c['transfer_ms']:.2f}",
                          f"{c['integrator_ms']:.1f}", f"{100 * c['coupling_share']:.1f} %",
                          f"{r['full_over_coupled']:.2f}"]))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
