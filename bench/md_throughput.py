"""Whole-MD-loop throughput (atom-steps/s) against system size, side by side with ASE.

    python bench/md_throughput.py [--device cuda] [--sizes 108 1372 10976 108000] [--dtype float32]

Rows, all NVE velocity Verlet on fcc Cu at 300 K, the same process and structures:
- ``ours-md``: our device loop (:class:`atomistic.md.MolecularDynamics`), Verlet list with a
  1 Å skin, host checks every 20 steps, with the model at TorchANI's descriptor length
  (``ours@384`` of ``bench/energy_forces.py``: 384 features, 384-128-128-96-1 CELU networks);
- ``ours-md-cu``: the same loop with one member of the shipped Cu model;
- ``ase+ours``: ASE's ``VelocityVerlet`` driving our ASE calculator (``ours@384``), the list
  rebuilt every step, positions through the host every step;
- ``ase+torchani``: ASE's ``VelocityVerlet`` driving TorchANI 2.9 (an untrained ANI-1x-sized
  model: like_1x AEVs, 384-128-128-96-1 networks, Cu in the first slot, TorchANI's cell list).
- ``molecule``: a 20-atom Cu cluster, ms per step, for the launch-latency regime.

Untrained models have their energies scaled by 1e-3 so atoms stay put (the cost of a step does
not depend on the weights); they have no repulsion either, so over hundreds of steps a large box
sees near-collisions, which the timing rows tolerate (``min_distance_A`` 1e-6). The ratio column
compares each row with ``ase+torchani``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")

from ase import Atoms, units  # noqa: E402
from ase.calculators.calculator import Calculator, all_changes  # noqa: E402
from ase.cluster import Icosahedron  # noqa: E402
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402
from energy_forces import fcc, ours_equal_length, sync  # noqa: E402

from atomistic import NNPCalculator, load_potential  # noqa: E402
from atomistic.md import MDSettings, MolecularDynamics, Safety  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class TorchANICalculator(Calculator):
    """ASE calculator around an untrained TorchANI model (energy scaled by ``scale``)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, device, dtype, scale=1e-3):
        super().__init__()
        from torchani.aev import AEVComputer
        from torchani.nn import ANINetworks, AtomicNetwork

        torch.manual_seed(0)
        self.aev = AEVComputer.like_1x(num_species=4, neighborlist="cell_list").to(device=device, dtype=dtype)
        self.nets = ANINetworks({s: AtomicNetwork([384, 128, 128, 96, 1], activation="celu")
                                 for s in ("H", "C", "N", "O")}).to(device=device, dtype=dtype)
        self.device, self.dtype, self.scale = device, dtype, scale

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        n = len(self.atoms)
        elem = torch.zeros(1, n, dtype=torch.long, device=self.device)
        coords = torch.as_tensor(self.atoms.positions, dtype=self.dtype, device=self.device)[None].requires_grad_(True)
        cell = torch.as_tensor(self.atoms.cell.array, dtype=self.dtype, device=self.device)
        pbc = torch.as_tensor(self.atoms.pbc, device=self.device)
        e = self.scale * self.nets(elem, self.aev(elem, coords, cell, pbc)).sum()
        (g,) = torch.autograd.grad(e, coords)
        self.results["energy"] = float(e)
        self.results["forces"] = -g[0].detach().cpu().numpy().astype(float)


def quiet(model):
    """A copy of an untrained model whose energies are scaled down by 1e3."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        model.energy_scale.mul_(1e-3)
    return model


def time_ase(atoms: Atoms, calc, steps: int, device) -> float:
    a = atoms.copy()
    a.calc = calc
    dyn = VelocityVerlet(a, timestep=2.0 * units.fs)
    dyn.run(2)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    dyn.run(steps)
    sync(device)
    return (time.perf_counter() - t0) / steps


def time_ours(atoms: Atoms, model, steps: int, device, dtype: str) -> tuple[float, dict]:
    s = MDSettings(ensemble="nve", steps=0, timestep_fs=2.0, precision=dtype, log_every=0, trajectory_every=0,
                   checkpoint_every=0, check_every=20, safety=Safety(max_force_eV_A=1e6, min_distance_A=1e-6))
    md = MolecularDynamics(model, atoms, s, device=device)
    md.run(min(20, steps))  # warm-up (first rebuilds, allocator)
    sync(device)
    first, rebuilds = md.state.step, md.forcefield.rebuilds
    t0 = time.perf_counter()
    md.run(first + steps)
    sync(device)
    return (time.perf_counter() - t0) / steps, {"rebuilds": md.forcefield.rebuilds - rebuilds, "replays": md.replays}


def steps_for(n_atoms: int, device) -> int:
    budget = 2e6 if device.type == "cpu" else 2e8  # atom-steps per row
    return int(max(20, min(400, budget // n_atoms)) // 20 * 20)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[108, 1372, 10976, 108000])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--skip-ase-above", type=int, default=20000)
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.set_flush_denormal(True)
    ours384 = quiet(ours_equal_length()).to(device=device, dtype=dtype)
    cu = load_potential(ROOT / "cases" / "models" / "cu_emt.safetensors", device=device).members[0].to(dtype=dtype)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# MD throughput (NVE, fcc Cu, 300 K), {args.dtype}, {name}, torch {torch.__version__}")
    print("| code | atoms | steps | ms/step | atom-steps/s | vs ase+torchani | notes |")
    print("|---|---|---|---|---|---|---|")
    rows = []

    def report(code, n, steps, t, ref, notes=""):
        rate = n / t
        ratio = f"{ref / t:.2f}x" if ref else "-"
        rows.append({"code": code, "atoms": n, "steps": steps, "s_per_step": t, "atom_steps_per_s": rate,
                     "vs_ase_torchani": (ref / t) if ref else None, "notes": notes})
        print(f"| {code} | {n} | {steps} | {1e3 * t:.2f} | {rate:.3g} | {ratio} | {notes} |", flush=True)

    for n in args.sizes:
        atoms = fcc(n)
        MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
        steps = steps_for(len(atoms), device)
        ref = None
        if len(atoms) <= args.skip_ase_above:
            try:
                ref = time_ase(atoms, TorchANICalculator(device, dtype), max(4, steps // 10), device)
                report("ase+torchani", len(atoms), max(4, steps // 10), ref, None)
            except ImportError as exc:
                print(f"# torchani: {exc}")
            t = time_ase(atoms, NNPCalculator(ours384, device=device, dtype=dtype), max(4, steps // 10), device)
            report("ase+ours", len(atoms), max(4, steps // 10), t, ref)
        t, info = time_ours(atoms, ours384, steps, device, args.dtype)
        report("ours-md", len(atoms), steps, t, ref, f"{info['rebuilds']} rebuilds")
        t, info = time_ours(atoms, cu, steps, device, args.dtype)
        report("ours-md-cu", len(atoms), steps, t, ref, f"{info['rebuilds']} rebuilds")
    # the launch-latency regime: a 20-atom molecule-sized cluster
    cluster = Icosahedron("Cu", 3)[:20]
    cluster.center(vacuum=5.0)
    MaxwellBoltzmannDistribution(cluster, temperature_K=300, rng=np.random.default_rng(0))
    t, _ = time_ours(cluster, cu, 200, device, args.dtype)
    report("ours-md-cu (20-atom cluster)", len(cluster), 200, t, None)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "dtype": args.dtype, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
