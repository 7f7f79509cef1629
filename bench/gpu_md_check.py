"""MD checks for a lent CUDA machine: the step makes no host round-trip (CUDA sync-debug mode
raises on any synchronising call inside a block), blocks replayed from CUDA graphs against eager
blocks (float64 trajectories, seeded NVT, the graphs' counts), NVE drift on CUDA in float64 and
float32 (graphs on, the default, and off), and CUDA vs CPU trajectories. Prints a summary;
writes JSON to --out."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ase.build import bulk  # noqa: E402

from atomistic import load_potential  # noqa: E402
from atomistic.md import MDSettings, MolecularDynamics, Thermostat  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def crystal(repeat):
    """A rattled crystal with momenta drawn on the host (the same on every device), about 600 K."""
    atoms = bulk("Cu", "fcc", a=3.59, cubic=True).repeat(repeat)
    atoms.rattle(0.03, seed=0)
    rng = np.random.default_rng(0)
    p = rng.normal(scale=np.sqrt(63.5 * 8.617e-5 * 600.0), size=(len(atoms), 3))
    atoms.set_momenta(p - p.mean(0))
    return atoms


def no_sync_in_block(model) -> dict:
    """Run a block of NVT steps with torch.cuda.set_sync_debug_mode('error')."""
    s = MDSettings(ensemble="nvt", steps=40, timestep_fs=4.0, thermostat=Thermostat("bussi", 300.0, 100.0),
                   check_every=20, log_every=5)
    md = MolecularDynamics(model, crystal(6), s, device="cuda")
    md.run(20)  # warm-up outside the check
    start = md.state
    torch.cuda.set_sync_debug_mode("error")
    try:
        state = start
        for _ in range(10):
            state = md.propagator.step(state)
            md.forcefield.margin(state.positions, state.cell)
        ok, err = True, ""
    except RuntimeError as exc:
        ok, err = False, str(exc)[:300]
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return {"no_host_sync_per_step": ok, "error": err}


def graphs_vs_eager(model) -> dict:
    """The same float64 runs with graphs and without: NVE with a thin skin (rebuilds, halved
    blocks) and Langevin NVT from one seed; largest position difference after 200 steps."""
    out = {}
    for name, extra in (("nve", {}), ("nvt", {"ensemble": "nvt", "thermostat": Thermostat("langevin", 600.0, 50.0)})):
        s = MDSettings(steps=200, timestep_fs=4.0, skin_A=0.3, check_every=10, log_every=5, trajectory_every=50,
                       checkpoint_every=0, seed=7, **extra)
        runs = {}
        for graphs in (True, False):
            md = MolecularDynamics(model, crystal(4), replace(s, cuda_graphs=graphs), device="cuda")
            r = md.run()
            runs[graphs] = (r.atoms[0].positions, r.cuda_graphs)
        out[name] = {"max_position_difference_A": float(np.abs(runs[True][0] - runs[False][0]).max()),
                     "graphs": runs[True][1]}
    return out


def nve(model, device, precision, repeat=4, ps=10.0, graphs=True):
    s = MDSettings(ensemble="nve", steps=0, timestep_fs=None, log_every=10, precision=precision, cuda_graphs=graphs)
    md = MolecularDynamics(model, crystal(repeat), s, device=device)
    steps = int(ps * 1000 / md.timestep_fs)
    t = time.perf_counter()
    r = md.run(steps)
    return {"device": device, "precision": precision, "graphs": r.cuda_graphs, "atoms": 4 * repeat**3,
            "timestep_fs": md.timestep_fs,
            "drift_meV_per_atom_ps": r.drift[0].drift_meV_per_atom_ps, "growing": r.drift[0].growing,
            "atom_steps_per_s": r.atom_steps_per_s, "seconds": time.perf_counter() - t,
            "final_positions": r.atoms[0].positions}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="gpu_md_check.json")
    args = parser.parse_args()
    model = load_potential(ROOT / "cases" / "models" / "cu_emt.safetensors")
    result = {"device": torch.cuda.get_device_name(), "sync": no_sync_in_block(model)}
    result["graphs_vs_eager"] = graphs_vs_eager(model)
    print(json.dumps(result, indent=2), flush=True)
    runs = [nve(model, "cuda", "float64"), nve(model, "cuda", "float32"), nve(model, "cpu", "float64", ps=1.0),
            nve(model, "cuda", "float64", graphs=False)]
    short_cuda = nve(model, "cuda", "float64", ps=1.0)
    result["cuda_vs_cpu_positions_1ps"] = float(
        np.abs(short_cuda["final_positions"] - runs[2]["final_positions"]).max())
    for r in runs:
        r.pop("final_positions")
    result["nve"] = runs
    print(json.dumps(result, indent=2))
    Path(args.out).write_text(json.dumps(result, indent=2))
