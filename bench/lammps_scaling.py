"""LAMMPS's domain decomposition driving our model, against our own engine, in one run.

    python bench/lammps_scaling.py [--sizes 10976 108000] [--steps 20 4] [--ranks 1 2] [--device cpu]

Rows, all NVE velocity Verlet on fcc Cu at 300 K with the shipped Cu model in float64:
- ``ours``: our loop (:class:`atomistic.md.MolecularDynamics`) in one process;
- ``lammps xN``: ``mpiexec -n N`` ranks of LAMMPS (``fix external``), each evaluating its own
  sub-domain (:mod:`atomistic.engines.lammps`); torch threads are split between the ranks.

Columns: atom-steps/s, the ratio to ``ours``, and the halo's redundant work per rank: ghost
copies held per owned atom and centres evaluated per owned atom (1 would be no redundancy: the
rest are copies within r_c of an owned atom, whose site energies the forces need). On a GPU
machine, pass ``--device cuda``: each rank takes the GPU ``local rank % count``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = ROOT / "cases" / "models" / "cu_emt.safetensors"


def crystal(n_target: int):
    from ase.build import bulk
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    k = max(1, round((n_target / 4) ** (1 / 3)))
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(k)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300.0, rng=np.random.default_rng(0))
    return atoms


def settings(steps: int):
    from atomistic.md import MDSettings

    return MDSettings(ensemble="nve", steps=steps, timestep_fs=2.0, log_every=0, trajectory_every=0,
                      checkpoint_every=0, check_every=max(1, steps))


def ours(size: int, steps: int, device: str) -> dict:
    from atomistic.md import MolecularDynamics
    from atomistic.potential.io import load_potential

    model = load_potential(MODEL, device=device)
    atoms = crystal(size)
    md = MolecularDynamics(model, atoms, settings(1), device=device)
    md.run(1)  # warm-up: the first list build and any lazy initialisation
    t0 = time.perf_counter()
    md.run(steps)
    wall = time.perf_counter() - t0
    return {"atoms": len(atoms), "steps": steps, "wall_s": wall, "atom_steps_per_s": len(atoms) * steps / wall}


def worker(size: int, steps: int, device: str, out: str) -> None:
    """One LAMMPS measurement, run under mpiexec: warm-up run, timed run, halo statistics."""
    from mpi4py import MPI

    from atomistic.engines.lammps import LammpsEngine
    from atomistic.potential.io import load_potential

    comm = MPI.COMM_WORLD
    model = load_potential(MODEL)
    atoms = crystal(size)
    with LammpsEngine(model, atoms, device="cpu" if device == "cpu" else None) as engine:
        engine.lmp.commands_list(["timestep 0.002", "fix integrate all nve", "thermo 0"])
        engine.run(1)
        comm.Barrier()
        t0 = time.perf_counter()
        engine.run(steps, setup=False)
        comm.Barrier()
        wall = time.perf_counter() - t0
        halo = {k: comm.allreduce(v) for k, v in engine.halo.items()}
    if comm.Get_rank() == 0:
        Path(out).write_text(json.dumps({
            "atoms": len(atoms), "steps": steps, "ranks": comm.Get_size(), "wall_s": wall,
            "atom_steps_per_s": len(atoms) * steps / wall,
            "ghosts_per_owned": halo["ghosts"] / halo["owned"], "centres_per_owned": halo["centres"] / halo["owned"],
            "list_builds": halo["list_builds"]}))


def lammps(size: int, steps: int, ranks: int, device: str, threads: int) -> dict:
    out = ROOT / f".bench_lammps_{os.getpid()}.json"
    mpiexec = Path(sys.executable).parent / "mpiexec"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MULTISCALE_TORCH_THREADS=str(threads))
    subprocess.run([str(mpiexec), "-n", str(ranks), sys.executable, __file__, "--worker", str(size), str(steps),
                    device, str(out)], check=True, env=env, cwd=ROOT)
    result = json.loads(out.read_text())
    out.unlink()
    return result


def _threads() -> None:
    n = os.environ.get("MULTISCALE_TORCH_THREADS")
    if n:
        import torch

        torch.set_num_threads(int(n))


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10976, 108000])
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 4], help="timed steps per size")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    _threads()
    if args.worker:
        size, steps, device, out = args.worker
        worker(int(size), int(steps), device, out)
        return
    cores = os.cpu_count() or 1
    rows = []
    print(f"{'engine':<12}{'atoms':>8}{'steps':>6}{'atom-steps/s':>14}{'vs ours':>9}{'ghosts/owned':>14}"
          f"{'centres/owned':>15}")
    for size, steps in zip(args.sizes, args.steps):
        import torch

        torch.set_num_threads(cores)
        base = ours(size, steps, args.device)
        rows.append({"engine": "ours", **base})
        print(f"{'ours':<12}{base['atoms']:>8}{steps:>6}{base['atom_steps_per_s']:>14.4g}{1.0:>9.2f}")
        for ranks in args.ranks:
            r = lammps(size, steps, ranks, args.device, max(1, cores // ranks))
            rows.append({"engine": f"lammps x{ranks}", **r})
            print(f"{'lammps x' + str(ranks):<12}{r['atoms']:>8}{steps:>6}{r['atom_steps_per_s']:>14.4g}"
                  f"{r['atom_steps_per_s'] / base['atom_steps_per_s']:>9.2f}{r['ghosts_per_owned']:>14.2f}"
                  f"{r['centres_per_owned']:>15.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"cores": cores, "device": args.device, "rows": rows}, indent=1))


if __name__ == "__main__":
    run()
