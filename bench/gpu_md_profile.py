"""Where an MD step's time goes on a GPU: kernels launched per step and the top operators.

    python bench/gpu_md_profile.py [--atoms-repeat 3 6] [--out profile.json]

For each size, 20 NVE steps of the shipped Cu model (float32) run under torch.profiler after a
warm-up; the table gives wall time per step, CUDA kernels per step, the summed kernel time per
step (the GPU's busy time) and the operators with the most kernels. A step whose kernel time is
far below its wall time is launch-bound: the case for CUDA graphs or fused kernels. Blocks run
eagerly here (``cuda_graphs = False``); ``bench/md_latency.py`` compares them with graphs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ase.build import bulk  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from atomistic import load_potential  # noqa: E402
from atomistic.md import MDSettings, MolecularDynamics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms-repeat", type=int, nargs="+", default=[3, 6, 14])
    parser.add_argument("--out", default="gpu_md_profile.json")
    args = parser.parse_args()
    model = load_potential(ROOT / "cases" / "models" / "cu_emt.safetensors", device="cuda").members[0].float()
    rows = []
    for repeat in args.atoms_repeat:
        atoms = bulk("Cu", "fcc", a=3.59, cubic=True).repeat(repeat)
        atoms.rattle(0.02, seed=0)
        s = MDSettings(ensemble="nve", steps=0, timestep_fs=2.0, precision="float32", log_every=0,
                       trajectory_every=0, checkpoint_every=0, check_every=20, cuda_graphs=False)
        md = MolecularDynamics(model, atoms, s, device="cuda")
        md.run(40)
        torch.cuda.synchronize()
        steps = 20
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            t0 = time.perf_counter()
            md.run(md.state.step + steps)
            torch.cuda.synchronize()
            wall = (time.perf_counter() - t0) / steps
        events = prof.key_averages()
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        busy = sum(e.device_time_total if hasattr(e, "device_time_total") else e.cuda_time_total for e in kernels)
        top = sorted(events, key=lambda e: -getattr(e, "device_time_total", 0.0))[:12]
        row = {"atoms": len(atoms), "ms_per_step": 1e3 * wall, "kernels_per_step": len(kernels) / steps,
               "gpu_busy_ms_per_step": busy / 1e3 / steps,
               "top_ops": [{"name": e.key, "calls_per_step": e.count / steps,
                            "device_ms_per_step": getattr(e, "device_time_total", 0.0) / 1e3 / steps} for e in top]}
        rows.append(row)
        print(f"{len(atoms):>7} atoms: {row['ms_per_step']:.2f} ms/step, {row['kernels_per_step']:.0f} kernels/step, "
              f"GPU busy {row['gpu_busy_ms_per_step']:.2f} ms/step", flush=True)
        for op in row["top_ops"][:8]:
            print(f"    {op['name'][:60]:<60} {op['calls_per_step']:8.1f}/step {op['device_ms_per_step']:.3f} ms")
    Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
