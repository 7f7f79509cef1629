"""MD step latency against size, blocks replayed from CUDA graphs against eager blocks.

    python bench/md_latency.py [--device cuda] [--sizes 20 108 1372 10976] [--replicas 1000]
                               [--precision float32] [--json out.json]

Rows, all NVE velocity Verlet with the shipped Cu model (one member), 1 Å skin, host checks every
20 steps, no output inside the timed part, the same process:
- ``N atoms``: fcc Cu at 300 K (20: an icosahedral cluster in vacuum), ms per step and atom-steps
  per second, ``eager`` (every kernel launched from Python) and, on CUDA, ``graphs``
  (:mod:`atomistic.md.captured`); the ratio column is eager / graphs;
- ``R x 32 replicas``: R copies of a 32-atom cell run as one batch, against one cell of the same
  number of atoms (the ratio column is batch / one cell throughput: 1 means batching costs nothing);
- ``committee``: the whole shipped committee (4 members sharing one descriptor: the MD of active
  learning) on ``--committee-atoms`` atoms, eager and, on CUDA, graphs.

On CUDA the launches per step (kernel launches plus graph launches, from the profiler) and the
GPU's busy fraction (summed kernel time over wall time) are given for each mode at 1372 atoms.
Timing rows tolerate near-collisions of the thermal crystal (``min_distance_A`` 1e-6).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ase.build import bulk  # noqa: E402
from ase.cluster import Icosahedron  # noqa: E402

from atomistic import load_potential  # noqa: E402
from atomistic.md import MDSettings, MolecularDynamics, Safety  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
A0 = 3.59


def structure(n: int):
    if n == 20:
        atoms = Icosahedron("Cu", 2)[:20]
        atoms.center(vacuum=6.0)
        return atoms
    repeat = round((n / 4) ** (1 / 3))
    if 4 * repeat**3 != n:
        raise SystemExit(f"--sizes: {n} is not 4 k^3 (fcc) nor 20 (cluster)")
    atoms = bulk("Cu", "fcc", a=A0, cubic=True).repeat(repeat)
    atoms.rattle(0.02, seed=0)
    return atoms


def settings(precision: str, graphs: bool) -> MDSettings:
    return MDSettings(ensemble="nve", steps=0, timestep_fs=2.0, initial_temperature_K=300.0, precision=precision,
                      log_every=0, trajectory_every=0, checkpoint_every=0, check_every=20, cuda_graphs=graphs,
                      safety=Safety(min_distance_A=1e-6))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_md(model, frames, precision, device, graphs, seconds=2.0) -> dict:
    """ms per step of a warmed-up run (its captures done), over about ``seconds``."""
    md = MolecularDynamics(model, frames, settings(precision, graphs), device=device)
    md.run(md.state.step + (60 if md.graphs is not None else 20))  # warm-up (with graphs: eager, then captured)
    sync(device)
    steps, t0 = 0, time.perf_counter()
    while True:
        md.run(md.state.step + 40)
        steps += 40
        sync(device)
        wall = time.perf_counter() - t0
        if wall > seconds or steps >= 4000:
            break
    n = len(md.system.masses)
    return {"ms_per_step": 1e3 * wall / steps, "atom_steps_per_s": n * steps / wall, "steps": steps,
            "graphs": md.graphs.stats() if md.graphs is not None else None}


def launches(model, atoms, precision, device, graphs, steps=40) -> dict:
    """Kernel and graph launches per step and the GPU's busy fraction, from the profiler."""
    from torch.profiler import ProfilerActivity, profile

    md = MolecularDynamics(model, atoms, settings(precision, graphs), device=device)
    md.run(80)
    sync(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        md.run(md.state.step + steps)
        sync(device)
        wall = time.perf_counter() - t0
    events = prof.events()
    api = [e for e in events if e.name in ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel",
                                           "cudaGraphLaunch", "cuGraphLaunch")]
    kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    busy_us = sum(getattr(e, "device_time_total", 0.0) or 0.0 for e in kernels)
    return {"launches_per_step": len(api) / steps, "kernels_per_step": len(kernels) / steps,
            "gpu_busy_fraction": busy_us / 1e6 / wall, "ms_per_step": 1e3 * wall / steps}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 108, 1372])
    parser.add_argument("--replicas", type=int, default=100, help="R in the R x 32 replica row (0: none)")
    parser.add_argument("--committee-atoms", type=int, default=1372, help="atoms of the committee row (0: none)")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed wall time per row")
    parser.add_argument("--json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = torch.device(args.device)
    committee = load_potential(ROOT / "cases" / "models" / "cu_emt.safetensors", device=device)
    model = committee.members[0]
    modes = [False, True] if device.type == "cuda" else [False]
    rows = []
    print(f"| system | {' | '.join('graphs ms/step' if g else 'eager ms/step' for g in modes)} | "
          f"atom-steps/s (best) | ratio |")
    print("|---|" + "---|" * (len(modes) + 2))

    def modes_row(name, potential, n):
        t = {g: time_md(potential, structure(n), args.precision, device, g, args.seconds) for g in modes}
        ratio = t[False]["ms_per_step"] / t[True]["ms_per_step"] if True in t else None
        rows.append({"system": name, "atoms": n, **{("graphs" if g else "eager"): t[g] for g in modes},
                     "eager_over_graphs": ratio})
        print(f"| {name} | {' | '.join(f'{t[g]['ms_per_step']:.3f}' for g in modes)} | "
              f"{t[modes[-1]]['atom_steps_per_s']:.3g} | {'' if ratio is None else f'{ratio:.2f}x'} |", flush=True)

    for n in args.sizes:
        modes_row(f"{n} atoms", model, n)
    if args.replicas:
        cell = bulk("Cu", "fcc", a=A0, cubic=True).repeat(2)
        frames = []
        for k in range(args.replicas):
            a = cell.copy()
            a.rattle(0.02, seed=k)
            frames.append(a)
        g = modes[-1]
        batch = time_md(model, frames, args.precision, device, g, args.seconds)
        n = 32 * args.replicas
        repeat = round((n / 4) ** (1 / 3))
        one = time_md(model, bulk("Cu", "fcc", a=A0, cubic=True).repeat(repeat), args.precision, device, g,
                      args.seconds)
        ratio = batch["atom_steps_per_s"] / one["atom_steps_per_s"]
        rows.append({"system": f"{args.replicas} x 32 replicas", "atoms": n, "batch": batch,
                     "one_cell": {**one, "atoms": 4 * repeat**3}, "batch_over_one_cell": ratio})
        print(f"| {args.replicas} x 32 replicas ({'graphs' if g else 'eager'}) | {batch['ms_per_step']:.3f} "
              f"| {batch['atom_steps_per_s']:.3g} | {ratio:.2f}x of one {4 * repeat**3}-atom cell |", flush=True)
    if args.committee_atoms:
        modes_row(f"committee of {len(committee)}, {args.committee_atoms} atoms", committee, args.committee_atoms)
    profile_rows = []
    if device.type == "cuda":
        atoms = structure(1372)
        for g in modes:
            p = launches(model, atoms, args.precision, device, g)
            profile_rows.append({"mode": "graphs" if g else "eager", "atoms": 1372, **p})
            print(f"1372 atoms, {'graphs' if g else 'eager'}: {p['launches_per_step']:.1f} launches/step, "
                  f"{p['kernels_per_step']:.0f} kernels/step, GPU busy {100 * p['gpu_busy_fraction']:.0f} %",
                  flush=True)
    if args.json:
        machine = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine()
        Path(args.json).write_text(json.dumps({"device": str(device), "machine": machine,
                                               "threads": torch.get_num_threads(), "precision": args.precision,
                                               "rows": rows, "profile": profile_rows}, indent=2))


if __name__ == "__main__":
    main()
