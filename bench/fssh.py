"""Time per batched surface-hopping step vs the number of trajectories (issue 7).

    python bench/fssh.py [--trajectories 1 10 100 1000 10000] [--device cpu|cuda] [--steps 50]

Tully's simple avoided crossing (two states, one particle) and the trained-model path
(a two-state ``DiabaticPotential`` of a diatomic, untrained weights: the cost does not depend on
them). Printed per batch size: ms per step, µs per trajectory-step, and the speed-up over running
the same trajectories one at a time (measured on one trajectory, scaled), in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase import Atoms  # noqa: E402

from atomistic import DescriptorSettings, NetworkSettings  # noqa: E402
from atomistic.multistate import (  # noqa: E402
    AU_MOMENTUM,
    TULLY_MASS_AMU,
    DiabaticPotential,
    FSSHSettings,
    SurfaceHopping,
    TullySimple,
)


def setup(kind: str, n: int, device: str):
    if kind == "tully1":
        pos = torch.zeros(n, 1, 3, dtype=torch.float64, device=device)
        pos[:, 0, 0] = -0.5
        mom = torch.zeros_like(pos)
        mom[:, 0, 0] = 20.0 * AU_MOMENTUM
        return TullySimple(), pos, mom, [TULLY_MASS_AMU]
    model = DiabaticPotential(["Li", "F"], 2, DescriptorSettings(cutoff=5.0, n_radial=16, angular_cutoff=3.0,
                                                                 n_angular=0), NetworkSettings(hidden=(32, 32)))
    bound = model.to(device).bind(Atoms("LiF", positions=[[0, 0, 0], [0, 0, 2.5]]))
    rng = np.random.default_rng(0)
    pos = torch.as_tensor(np.stack([np.zeros((n, 3)), [0, 0, 2.5] + rng.normal(scale=0.05, size=(n, 3))], 1),
                          device=device)
    mom = torch.as_tensor(rng.normal(scale=0.3, size=(n, 2, 3)), device=device)
    return bound, pos, mom, [6.94, 19.0]


def time_steps(kind, n, device, steps):
    model, pos, mom, masses = setup(kind, n, device)
    run = SurfaceHopping.start(model, pos, mom, masses, 0, FSSHSettings(timestep_fs=0.1))
    run.step()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        run.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, nargs="+", default=[1, 10, 100, 1000, 10000])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    print(f"device {args.device}, {torch.get_num_threads()} CPU threads, float64, FSSH step dt = 0.1 fs")
    print(f"{'model':>9} {'trajectories':>12} {'ms/step':>9} {'us/traj-step':>13} {'vs one at a time':>17}")
    for kind in ("tully1", "diatomic"):
        single = time_steps(kind, 1, args.device, args.steps)
        for n in args.trajectories:
            t = single if n == 1 else time_steps(kind, n, args.device, args.steps)
            print(f"{kind:>9} {n:>12} {1e3 * t:>9.2f} {1e6 * t / n:>13.2f} {single * n / t:>16.1f}x")


if __name__ == "__main__":
    main()
