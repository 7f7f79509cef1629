"""GPU checks for a lent CUDA machine: CUDA vs CPU agreement of the shipped model, then the
energy+forces benchmark. Prints a summary; writes JSON next to --out."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ase.build import bulk  # noqa: E402

from atomistic import NNPCalculator, load_potential  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def agreement() -> dict:
    model = load_potential(ROOT / "cases" / "models" / "cu_emt.safetensors")
    atoms = bulk("Cu", "fcc", a=3.59, cubic=True).repeat(4)
    atoms.rattle(0.05, seed=1)
    out = {}
    ref = None
    for device, dtype in (("cpu", torch.float64), ("cuda", torch.float64), ("cuda", torch.float32)):
        a = atoms.copy()
        a.calc = NNPCalculator(model, device=device, dtype=dtype)
        t = time.perf_counter()
        r = (a.get_potential_energy(), a.get_forces(), a.get_stress(), a.calc.results["force_disagreement"])
        key = f"{device}-{str(dtype).split('.')[-1]}"
        if ref is None:
            ref = r
        out[key] = {"energy_err_eV": abs(r[0] - ref[0]), "force_err_eV_per_A": float(np.abs(r[1] - ref[1]).max()),
                    "stress_err": float(np.abs(r[2] - ref[2]).max()), "d": r[3], "seconds": time.perf_counter() - t}
    # the compiled energy path (CUDA) against the eager one
    import copy

    eager = model.members[0].to("cuda", torch.float32)
    compiled = copy.deepcopy(eager).use_compile()
    for a in (atoms, atoms.repeat((2, 1, 1))):
        r = []
        for m in (eager, compiled):
            b = a.copy()
            b.calc = NNPCalculator(m, device="cuda", dtype=torch.float32)
            r.append((b.get_potential_energy(), b.get_forces()))
        out[f"compiled-vs-eager-{len(a)}"] = {"energy_err_eV": abs(r[0][0] - r[1][0]),
                                               "force_err_eV_per_A": float(np.abs(r[0][1] - r[1][1]).max())}
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="gpu_check.json")
    args = parser.parse_args()
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "agreement": agreement()}
    print(json.dumps(result, indent=2))
    Path(args.out).write_text(json.dumps(result, indent=2))
