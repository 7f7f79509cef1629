"""Learning curve: test error against training-set size.

Nested subsets of the training pool (the first n frames of one seeded permutation), one model
each, with the same validation set and settings as the committee members.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from atomistic.potential.descriptors import DescriptorSettings
from atomistic.potential.models import BPPotential, NetworkSettings
from atomistic.training.committee import train_model
from atomistic.training.data import Frame
from atomistic.training.trainer import TrainSettings


def train_on_fractions(frames: Sequence[Frame], train_idx: Sequence[int], valid_idx: Sequence[int],
                       fractions: Sequence[float], species: list[str], descriptor: DescriptorSettings,
                       network: NetworkSettings, training: TrainSettings, workdir: Path, *, seed: int = 0,
                       resume: bool = False) -> list[tuple[int, BPPotential]]:
    """(number of training frames, trained model) for each fraction of the training pool."""
    order = np.random.default_rng(seed + 7919).permutation(np.asarray(train_idx))
    valid = [frames[i] for i in valid_idx]
    out = []
    for k, fraction in enumerate(sorted(fractions)):
        n = max(1, int(round(fraction * len(order))))
        subset = [frames[i] for i in np.sort(order[:n])]
        model, _ = train_model(subset, valid, species, descriptor, network, training, seed=seed * 1000 + 500 + k,
                               checkpoint=Path(workdir) / f"size{n}.ckpt", resume=resume,
                               label=f"learning curve {n} frames", tag=["learning_curve", n])
        out.append((n, model))
    return out
