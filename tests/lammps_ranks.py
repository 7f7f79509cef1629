"""What the LAMMPS-engine tests run on every rank: ``mpiexec -n N python -m tests.lammps_ranks OUT``.

Each check compares LAMMPS driving our model with our own single-process code on the same
input, and rank 0 writes the largest differences to ``OUT`` (JSON):

- ``evaluate``: energy, forces and virial of (a) a triclinic periodic cell with rattled atoms,
  some outside the cell, (b) a perfect cubic lattice, whose atoms sit exactly on the planes that
  split the box between ranks, (c) two bodies within a cutoff of each other, masked (non-periodic),
  (d) a slab periodic in its plane only, (e) a dimer, so that on 3 ranks one rank owns no atom;
- ``trajectory``: 100 NVE steps from the same state, with a drift velocity of about 20 Å/ps so
  that every atom crosses sub-domain boundaries and migrates between ranks;
- ``failure``: the model raises on one rank only; every rank must stop with the error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from atomistic.engines.lammps import LammpsEngine
from atomistic.md import MDSettings, MolecularDynamics
from atomistic.potential.forces import evaluate
from atomistic.potential.io import load_potential

MODEL = Path(__file__).resolve().parents[1] / "cases" / "models" / "cu_emt.safetensors"


def systems() -> dict[str, Atoms]:
    rng = np.random.default_rng(0)
    tri = bulk("Cu", "fcc", a=3.61).repeat((4, 4, 4))
    tri.positions += rng.normal(0.0, 0.1, tri.positions.shape)
    tri.positions[:6] += tri.cell[0] + tri.cell[2]  # outside the cell: wrapped by the engine, unwrapped back
    lattice = bulk("Cu", "fcc", a=3.59, cubic=True).repeat((4, 4, 4))
    slab = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 2))
    slab.pbc = False
    other = slab.copy()
    other.positions[:, 2] += 2 * 3.61 + 2.2  # a gap of 2.2 Å: cross-body pairs well inside the cutoff
    two = slab + other
    two.positions += rng.normal(0.0, 0.05, two.positions.shape)
    two.arrays["body"] = np.repeat([0, 1], len(slab))
    surface = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 2))
    surface.center(vacuum=6.0, axis=2)
    surface.pbc = (True, True, False)  # periodic in the plane, shrink-wrapped across it
    surface.positions += rng.normal(0.0, 0.05, surface.positions.shape)
    dimer = Atoms("Cu2", positions=[[0.0, 0.0, 0.0], [2.4, 0.3, 0.1]])  # on 3 ranks, one owns nothing
    return {"triclinic": tri, "lattice_on_boundaries": lattice, "masked_bodies": two, "surface_slab": surface,
            "dimer": dimer}


def check_evaluate(model) -> dict:
    out = {}
    for name, atoms in systems().items():
        ref = evaluate(model, atoms, stress=bool(atoms.pbc.all()))
        with LammpsEngine(model, atoms) as engine:
            ev = engine.evaluate()
        row = {"energy": abs(ev.energy - float(ref.energy[0])),
               "forces": float(np.abs(ev.forces - ref.forces.numpy()).max()),
               "force_scale": float(np.abs(ref.forces.numpy()).max())}
        if "body" in atoms.arrays:  # the masking is in force: without it the energy would differ by this
            unmasked = evaluate(model, atoms, mask_bodies=False)
            row["unmasked_energy_shift"] = abs(float(unmasked.energy[0] - ref.energy[0]))
        if atoms.pbc.all():
            virial = -atoms.get_volume() * ref.stress[0].numpy()
            row["virial"] = float(np.abs(ev.virial - virial).max())
            row["virial_scale"] = float(np.abs(virial).max())
        out[name] = row
    return out


def check_trajectory(model) -> dict:
    from atomistic.engines.lammps_md import run_lammps_md

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 3))
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(1))
    drift = np.array([20.0, 10.0, -15.0]) / (1000.0 * 0.09822694788464063)  # Å/ps in ASE velocity units
    atoms.set_velocities(atoms.get_velocities() + drift)
    settings = MDSettings(ensemble="nve", steps=100, timestep_fs=2.0, log_every=10, trajectory_every=0,
                          checkpoint_every=0)
    ours = MolecularDynamics(model, atoms, settings).run().atoms[0]
    theirs = run_lammps_md(model, atoms, settings).atoms
    return {"positions": float(np.abs(theirs.positions - ours.positions).max()),
            "velocities": float(np.abs(theirs.get_velocities() - ours.get_velocities()).max()),
            "moved": float(np.abs(ours.positions - atoms.positions).max())}


def check_failure(model) -> dict:
    """The model fails on the last rank only, at its third evaluation: every rank must stop with the
    error (none left waiting in a collective), at the same step."""
    import copy

    from mpi4py import MPI

    from atomistic.engines.lammps_md import run_lammps_md

    comm = MPI.COMM_WORLD
    model = copy.deepcopy(model)
    calls = {"n": 0}
    energies = model.atomic_energies

    def failing(*args, **kwargs):
        calls["n"] += 1
        if comm.Get_rank() == comm.Get_size() - 1 and calls["n"] >= 3:
            raise FloatingPointError("injected failure")
        return energies(*args, **kwargs)

    model.atomic_energies = failing
    settings = MDSettings(ensemble="nve", steps=20, timestep_fs=2.0, initial_temperature_K=300.0, log_every=5,
                          trajectory_every=0, checkpoint_every=0)
    message = None
    try:
        run_lammps_md(model, bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 3)), settings)
    except RuntimeError as exc:
        message = str(exc)
    stopped = comm.allgather(message is not None)
    return {"every_rank_stopped": all(stopped), "message": message}


def main(out: str) -> None:
    from mpi4py import MPI

    model = load_potential(MODEL)
    result = {"ranks": MPI.COMM_WORLD.Get_size(), "evaluate": check_evaluate(model),
              "trajectory": check_trajectory(model), "failure": check_failure(model)}
    if MPI.COMM_WORLD.Get_rank() == 0:
        Path(out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
