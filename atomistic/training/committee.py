"""Train a committee: one split into train/validation/test, then M members with different seeds
and different random subsets of the training pool, each with its own checkpoint.

(Earlier versions said "ensemble": ``EnsembleSettings`` and ``train_ensemble`` remain as aliases.)"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from atomistic.potential.committee import Committee
from atomistic.potential.descriptors import DescriptorSettings
from atomistic.potential.models import BPPotential, NetworkSettings
from atomistic.training.data import Frame
from atomistic.training.trainer import TrainSettings, fit, initialise

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommitteeSettings:
    """``members`` models; each trains on ``subset_fraction`` of the training pool.
    ``valid_fraction`` and ``test_fraction`` of all frames are held out (shared by all members)."""

    members: int = 4
    subset_fraction: float = 0.9
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self):
        if self.members < 1:
            raise ValueError(f"members must be >= 1, got {self.members}")
        if not 0 < self.subset_fraction <= 1:
            raise ValueError(f"subset_fraction must be in (0, 1], got {self.subset_fraction}")
        if not (0 < self.valid_fraction < 1 and 0 <= self.test_fraction < 1
                and self.valid_fraction + self.test_fraction < 1):
            raise ValueError("valid_fraction and test_fraction must be in [0, 1) and sum below 1")


def split(n: int, settings: CommitteeSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the train pool, validation and test sets (a seeded permutation)."""
    perm = np.random.default_rng(settings.seed).permutation(n)
    n_test = int(round(settings.test_fraction * n))
    n_valid = max(1, int(round(settings.valid_fraction * n)))
    return perm[n_test + n_valid:], perm[n_test:n_test + n_valid], perm[:n_test]


def _fingerprint(species, descriptor, network, training, tag, subset, valid) -> str:
    """Digest of everything a model's training depends on (progress bars excluded)."""
    h = hashlib.sha256(json.dumps([species, asdict(descriptor), asdict(network),
                                   {k: v for k, v in asdict(training).items() if k != "progress"},
                                   tag], sort_keys=True, default=str).encode())
    for f in list(subset) + list(valid):
        h.update(f.positions.numpy().tobytes())
        h.update(np.float64(f.energy).tobytes())
    return h.hexdigest()[:16]


def train_model(subset: Sequence[Frame], valid: Sequence[Frame], species: list[str],
                descriptor: DescriptorSettings, network: NetworkSettings, training: TrainSettings, *,
                seed: int, checkpoint: Path, resume: bool, label: str, tag) -> tuple[BPPotential, dict]:
    """One model: seeded initialisation, standardisation and offsets from ``subset``, then
    :func:`fit` with a checkpoint whose fingerprint covers settings, ``tag`` and data."""
    torch.manual_seed(seed)
    model = BPPotential(species, descriptor, network)
    initialise(model, subset)
    fingerprint = _fingerprint(species, descriptor, network, training, tag, subset, valid)
    history = fit(model, subset, valid, training, checkpoint, seed=seed, resume=resume, label=label,
                  fingerprint=fingerprint)
    return model.to("cpu", torch.float64).eval(), history


def train_committee(frames: Sequence[Frame], species: list[str], descriptor: DescriptorSettings,
                    network: NetworkSettings, training: TrainSettings, settings: CommitteeSettings,
                    workdir: Path, *, resume: bool = False) -> tuple[Committee, list[dict], dict]:
    """Returns the committee, each member's history and the split indices."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    train_idx, valid_idx, test_idx = split(len(frames), settings)
    valid = [frames[i] for i in valid_idx]
    members, histories = [], []
    for k in range(settings.members):
        rng = np.random.default_rng(settings.seed * 1000 + k + 1)
        n_sub = max(1, int(round(settings.subset_fraction * len(train_idx))))
        subset = [frames[i] for i in np.sort(rng.choice(train_idx, n_sub, replace=False))]
        model, history = train_model(
            subset, valid, species, descriptor, network, training, seed=settings.seed * 1000 + k,
            checkpoint=workdir / f"member{k}.ckpt", resume=resume, label=f"member {k + 1}/{settings.members}",
            tag=[asdict(settings), k])
        members.append(model)
        histories.append(history)
    indices = {"train": train_idx.tolist(), "valid": valid_idx.tolist(), "test": test_idx.tolist()}
    return Committee(members), histories, indices


#: the names of earlier versions (a committee was called an ensemble)
EnsembleSettings = CommitteeSettings
train_ensemble = train_committee
