"""What one active-learning generation costs as the dataset grows (issue 6: fine-tuning time per
generation must grow at most linearly with the dataset size).

    python bench/active_learning.py [--sizes 8 16 32 64 128] [--epochs 10] [--device cpu] [--json out.json]

The shipped Cu case's committee (4 members, its descriptor and network) is fine-tuned for a fixed
number of epochs on EMT-labelled frames of its 36-atom Cu(111) slab (rattled by 0.02-0.2 Å), for
each dataset size. Printed per size: seconds per generation, seconds per frame, and the ratio of
the per-frame cost to that of the smallest set. Linear scaling means a constant per-frame cost
(a ratio near 1, or below 1 where a fixed overhead is spread over more frames); quadratic would
double the ratio with every doubling. The bound ``t(n) <= t(n0) * n / n0`` is checked in the
table ("within linear").
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase.calculators.emt import EMT  # noqa: E402

from atomistic.potential.models import BPPotential  # noqa: E402
from atomistic.training.data import label, prepare  # noqa: E402
from atomistic.training.trainer import fit, initialise  # noqa: E402
from multiscale.case_file import load_case  # noqa: E402
from multiscale.common import build_structures  # noqa: E402

CASE = ROOT / "cases" / "active_learning" / "cu_premelting.toml"


def frames(n: int, seed: int = 0):
    case = load_case(CASE)
    base = build_structures(case.structure, CASE.parent)[0]
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = base.copy()
        a.positions += rng.normal(scale=0.02 + 0.18 * k / max(n - 1, 1), size=a.positions.shape)
        a.calc = EMT()
        out.append(label(a, a.get_potential_energy(), a.get_forces()))
    return case, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    case, data = frames(max(args.sizes))
    species = list(case.model.species)
    prepared = prepare(data, species, case.model.descriptor.cutoff)
    settings = replace(case.loop.fine_tune, max_epochs=args.epochs, patience=args.epochs + 1, progress=False,
                       device=args.device)
    rows = []
    for n in sorted(args.sizes):
        subset = prepared[:n]
        members = []
        for k in range(case.committee.members):
            torch.manual_seed(k)
            m = BPPotential(species, case.model.descriptor, case.model.network)
            initialise(m, subset)
            members.append(m)
        t0 = time.perf_counter()
        for k, m in enumerate(members):
            fit(m, subset, subset, settings, seed=k, label=f"member {k}")
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        rows.append({"frames": n, "atoms": n * len(data[0]), "seconds": time.perf_counter() - t0})
    n0, t0 = rows[0]["frames"], rows[0]["seconds"]
    print(f"fine-tuning one generation: {case.committee.members} members x {args.epochs} epochs, "
          f"{len(data[0])}-atom frames, device {args.device}, {torch.get_num_threads()} threads")
    print(f"{'frames':>7} {'s/generation':>13} {'ms/frame':>9} {'per-frame vs smallest':>22} {'within linear':>14}")
    for r in rows:
        r["ms_per_frame"] = 1e3 * r["seconds"] / r["frames"]
        r["per_frame_ratio"] = (r["seconds"] / r["frames"]) / (t0 / n0)
        r["within_linear"] = r["seconds"] <= 1.05 * t0 * r["frames"] / n0
        print(f"{r['frames']:>7} {r['seconds']:>13.2f} {r['ms_per_frame']:>9.1f} {r['per_frame_ratio']:>22.2f} "
              f"{'yes' if r['within_linear'] else 'NO':>14}")
    slope, intercept = np.polyfit([r["frames"] for r in rows], [r["seconds"] for r in rows], 1)
    print(f"least-squares line: t = {intercept:.2f} s + {1e3 * slope:.1f} ms x frames")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "slope_s_per_frame": slope, "intercept_s": intercept,
                                               "epochs": args.epochs, "device": args.device}, indent=2))


if __name__ == "__main__":
    main()
