"""Energy + forces throughput on fcc Cu, side by side with TorchANI, split by stage.

    python bench/energy_forces.py [--device cuda] [--sizes 256 2048 16384 131072] [--dtype float32]

Rows: our Behler–Parrinello model at TorchANI's descriptor length (384: 24 radial G2, 90 angular
channels x 4 G5 terms) with the same 384-128-128-96-1 networks ("ours@384"), our shipped Cu model
("ours-cu", descriptor 56, 64-64 networks) and TorchANI 2.9 (an untrained ANI-1x-sized model:
like_1x AEVs, 384-128-128-96-1 networks, Cu mapped onto the first element slot, cell-list
neighbours). Every step rebuilds the neighbour list. Stages are timed unchunked with a device
synchronisation between them; "total" is the whole energy+forces call as users run it (neighbour
list included; our centre atoms evaluated in chunks of 2048 on CPU, 65536 on CUDA, see
``atomistic.potential.forces.AUTO_CHUNK``).

For our models the script also reports matmul FLOPs per atom (torch's FLOP counter) and the bytes
per atom that autograd saves in the forward pass (read back in the backward: a lower bound on
memory traffic), and the ratio of the measured time to max(FLOPs/peak, bytes/bandwidth).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")

from ase.build import bulk  # noqa: E402

from atomistic import BPPotential, DescriptorSettings, NetworkSettings, load_potential  # noqa: E402
from atomistic.potential.forces import predict  # noqa: E402
from atomistic.potential.neighbors import build_neighbors  # noqa: E402
from atomistic.potential.structure import from_atoms  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TERMS = ((1, 1), (1, -1), (2, 1), (3, 1))  # 24 radial + 90 channels x 4 angular terms = 384


def fcc(n_atoms: int):
    k = round((n_atoms / 4) ** (1 / 3))
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(k)
    atoms.rattle(0.02, seed=0)
    return atoms


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def clock(fn, device, min_time=0.5, max_reps=50):
    fn()  # warm-up
    sync(device)
    reps, start = 0, time.perf_counter()
    while True:
        fn()
        sync(device)
        reps += 1
        elapsed = time.perf_counter() - start
        if elapsed > min_time or reps >= max_reps:
            return elapsed / reps


def ours_equal_length() -> BPPotential:
    torch.manual_seed(0)
    d = DescriptorSettings(cutoff=5.2, n_radial=24, r_min=0.9, angular_cutoff=3.5, n_angular=90,
                           angular_r_min=0.9, angular_terms=TERMS)
    model = BPPotential(["Cu"], d, NetworkSettings(hidden=(128, 128, 96), activation="celu"))
    assert model.descriptor.n_features == 384
    return model


def ours_stages(model, atoms, device, dtype, split=True):
    model = model.to(device=device, dtype=dtype)
    s = from_atoms(atoms, model.species, device=device, dtype=dtype)
    out = {}
    nbrs = build_neighbors(s, model.cutoff, model.angular_cutoff)
    if split:  # stage by stage, unchunked
        out["nl"] = clock(lambda: build_neighbors(s, model.cutoff, model.angular_cutoff), device)
        pos = s.positions.detach().requires_grad_(True)
        cell = s.cell[0]

        def desc():
            return model.raw_features(pos, pos, cell, s.species, nbrs.index, nbrs.shift, nbrs.mask, nbrs.n_angular)

        out["desc"] = clock(desc, device)
        g = desc()
        x = ((g - model.feature_mean[0]) / model.feature_std[0]).detach().requires_grad_(True)
        out["net"] = clock(lambda: model.networks[0](x), device)
        out["bwd"] = clock(lambda: torch.autograd.grad(model.networks[0](desc()).sum(), pos), device) \
            - out["desc"] - out["net"]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def total():
        n = build_neighbors(s, model.cutoff, model.angular_cutoff)
        return predict(model, s, n).forces  # chunk size "auto": 2048 atoms on CPU, 65536 on CUDA

    out["total"] = clock(total, device)
    if device.type == "cuda":
        out["peak_GiB"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def ours_cost_per_atom(model, device, dtype):
    """(matmul FLOPs, saved-activation bytes) per atom for energy+forces, on a 2048-atom crystal."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.to(device=device, dtype=dtype)
    atoms = fcc(2048)
    s = from_atoms(atoms, model.species, device=device, dtype=dtype)
    nbrs = build_neighbors(s, model.cutoff, model.angular_cutoff)
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    with FlopCounterMode(display=False) as counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        predict(model, s, nbrs)
    return counter.get_total_flops() / len(atoms), saved[0] / len(atoms)


def torchani_stages(atoms, device, dtype):
    import torchani
    from torchani.aev import AEVComputer
    from torchani.nn import ANINetworks, AtomicNetwork

    torch.manual_seed(0)
    aev = AEVComputer.like_1x(num_species=4, neighborlist="cell_list").to(device=device, dtype=dtype)
    nets = ANINetworks({sym: AtomicNetwork([384, 128, 128, 96, 1], activation="celu")
                        for sym in ("H", "C", "N", "O")}).to(device=device, dtype=dtype)
    n = len(atoms)
    elem = torch.zeros(1, n, dtype=torch.long, device=device)  # Cu -> the first slot
    coords = torch.as_tensor(atoms.positions, dtype=dtype, device=device)[None].requires_grad_(True)
    cell = torch.as_tensor(atoms.cell.array, dtype=dtype, device=device)
    pbc = torch.tensor([True, True, True], device=device)
    out = {}
    cutoff = aev.radial.cutoff
    out["nl"] = clock(lambda: aev.neighborlist(cutoff, elem, coords.detach(), cell, pbc), device)
    neighbors = aev.neighborlist(cutoff, elem, coords, cell, pbc)  # carries the graph to coords
    out["desc"] = clock(lambda: aev.compute_from_neighbors(elem, coords, neighbors), device)
    aevs = aev.compute_from_neighbors(elem, coords, neighbors).detach()
    out["net"] = clock(lambda: nets(elem, aevs), device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def total():
        e = nets(elem, aev(elem, coords, cell, pbc))
        return torch.autograd.grad(e.sum(), coords)[0]

    out["total"] = clock(total, device)
    out["bwd"] = out["total"] - out["nl"] - out["desc"] - out["net"]
    if device.type == "cuda":
        out["peak_GiB"] = torch.cuda.max_memory_allocated() / 2**30
    out["version"] = torchani.__version__
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 2048, 16384, 131072])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--skip-torchani-above", type=int, default=10**9)
    parser.add_argument("--peak-tflops", type=float, default=None, help="float32 matmul peak, TFLOP/s")
    parser.add_argument("--bandwidth-tbs", type=float, default=None, help="memory bandwidth, TB/s")
    parser.add_argument("--json", help="write the rows here too")
    parser.add_argument("--compile", action="store_true", help="add rows with torch.compile'd energy paths")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.set_flush_denormal(True)  # for both codes: denormal tails slow CPU arithmetic several-fold
    models = {"ours@384": ours_equal_length()}
    shipped = ROOT / "cases" / "models" / "cu_emt.safetensors"
    if shipped.exists():
        m = load_potential(shipped)
        models["ours-cu"] = m.members[0] if hasattr(m, "members") else m
    if args.compile:
        import copy

        models["ours@384+compile"] = copy.deepcopy(models["ours@384"]).use_compile()
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# energy+forces, fcc Cu, {args.dtype}, {name}, torch {torch.__version__}")
    costs = {k: ours_cost_per_atom(m, device, dtype) for k, m in models.items() if "compile" not in k}
    for k, (flops, nbytes) in costs.items():
        print(f"# {k}: {flops / 1e3:.1f} kFLOP/atom (matmul), {nbytes / 1e3:.1f} kB/atom saved activations")
    header = ("| code | atoms | nl ms | desc ms | net ms | bwd ms | total ms | atom-steps/s | µs/atom | peak GiB "
              "| vs TorchANI | vs bound |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    rows = []
    for n in args.sizes:
        atoms = fcc(n)
        results = {}
        if n <= args.skip_torchani_above:
            try:
                results["torchani"] = torchani_stages(atoms, device, dtype)
            except (ImportError, RuntimeError) as exc:  # not installed, or out of memory
                print(f"# torchani at {len(atoms)} atoms: {type(exc).__name__}: {str(exc)[:120]}")
            if device.type == "cuda":
                torch.cuda.empty_cache()
        for key, model in models.items():
            if "compile" in key and len(atoms) < 16384:
                continue  # compile for the large systems only (each new shape costs a compilation)
            try:
                split = len(atoms) <= 131072 and "compile" not in key
                results[key] = ours_stages(model, atoms, device, dtype, split=split)
            except Exception as exc:  # e.g. out of memory or a compiler error: report and go on
                print(f"# {key} at {len(atoms)} atoms: {type(exc).__name__}: {str(exc)[:160]}")
            if device.type == "cuda":
                torch.cuda.empty_cache()
        ref = results.get("torchani", {}).get("total")
        for key, r in results.items():
            rate = len(atoms) / r["total"]
            bound = ""
            if key in costs and args.peak_tflops and args.bandwidth_tbs:
                flops, nbytes = costs[key]
                t_bound = len(atoms) * max(flops / (args.peak_tflops * 1e12), 2 * nbytes / (args.bandwidth_tbs * 1e12))
                bound = f"{r['total'] / t_bound:.1f}x"
            row = {"code": key, "atoms": len(atoms), **{k: v for k, v in r.items() if k != "version"},
                   "atom_steps_per_s": rate, "us_per_atom": 1e6 / rate,
                   "speedup_vs_torchani": (ref / r["total"]) if ref else None}
            rows.append(row)
            ms = lambda k, r=r: f"{1e3 * r[k]:.2f}" if k in r else "-"  # noqa: E731
            peak = f"{r['peak_GiB']:.2f}" if "peak_GiB" in r else "-"
            speed = f"{ref / r['total']:.2f}x" if ref else "-"
            print(f"| {key} | {len(atoms)} | {ms('nl')} | {ms('desc')} | {ms('net')} | {ms('bwd')} | {ms('total')} "
                  f"| {rate:.3g} | {1e6 / rate:.3f} | {peak} | {speed} | {bound or '-'} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "dtype": args.dtype, "costs": costs, "rows": rows},
                                              indent=2))


if __name__ == "__main__":
    main()
