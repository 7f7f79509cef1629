"""Fit one model: standardisation and offsets from data, Adam with a plateau schedule, early
stopping on the validation loss, an atomic checkpoint every epoch, resume."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from atomistic.atomic_files import atomic_path
from atomistic.errors import CheckpointMismatch
from atomistic.potential.forces import predict
from atomistic.potential.models import BPPotential
from atomistic.training.batch import Batch, collate
from atomistic.training.data import Frame
from atomistic.training.loss import Errors, LossWeights, loss

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings. ``lr`` is Adam's initial learning rate; on a validation plateau of
    ``lr_patience`` epochs it is multiplied by ``lr_factor`` down to ``min_lr``. Training stops
    after ``max_epochs`` or ``patience`` epochs without improvement (early stopping)."""

    max_epochs: int = 200
    batch_size: int = 16
    lr: float = 3e-3
    lr_factor: float = 0.5
    lr_patience: int = 15
    min_lr: float = 1e-5
    patience: int = 50
    #: clip each batch's gradient norm at this multiple of its running mean (0 = no clipping):
    #: rare outlier batches then cannot kick Adam out of a good basin
    grad_clip: float = 3.0
    weights: LossWeights = field(default_factory=LossWeights)
    dtype: str = "float64"  # "float32" or "float64"
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self):
        for name in ("max_epochs", "batch_size", "lr_patience", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0, got {self.grad_clip}")
        if not 0 < self.lr < float("inf"):  # NaN fails
            raise ValueError(f"lr = {self.lr!r}: expected a finite positive learning rate")
        if not 0 < self.lr_factor < 1:
            raise ValueError(f"lr_factor = {self.lr_factor!r}: expected a number in (0, 1)")
        if not 0 <= self.min_lr < float("inf"):
            raise ValueError(f"min_lr = {self.min_lr!r}: expected a finite number >= 0")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


FEATURE_STD_FLOOR = 1e-2  # descriptor units (G2 counts weighted neighbours: O(1-10))


def initialise(model: BPPotential, frames: Sequence[Frame]) -> None:
    """Set the standardisation (per-element descriptor mean/std), the offsets ``e0`` by least
    squares on the energies, and the output scale (per-atom RMS of the residual energy), eV."""
    counts = np.zeros((len(frames), len(model.species)))
    energies = np.array([f.energy for f in frames])
    for k, f in enumerate(frames):
        counts[k] = np.bincount(f.species.numpy(), minlength=len(model.species))
    e0, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    residual = (energies - counts @ e0) / counts.sum(1)
    feats = [[] for _ in model.species]
    with torch.no_grad():
        for start in range(0, len(frames), 32):
            b = collate(frames[start : start + 32], model.cutoff, model.angular_cutoff)
            s, nb = b.structures, b.neighbors
            g = model.raw_features(s.positions, s.positions, s.cell[s.batch], s.species, nb.index, nb.shift,
                                   nb.mask, nb.n_angular)
            for k in range(len(model.species)):
                feats[k].append(g[s.species == k])
    with torch.no_grad():
        for k in range(len(model.species)):
            g = torch.cat(feats[k])
            if len(g) == 0:
                raise ValueError(f"no atoms of {model.species[k]} in the training data")
            model.feature_mean[k] = g.mean(0)
            # floor: a feature the data never switches on (a Gaussian at distances no pair
            # reaches) must not be blown up by 1/std when a new structure switches it on
            model.feature_std[k] = g.std(0).clamp_min(FEATURE_STD_FLOOR) if len(g) > 1 else 1.0
        model.e0.copy_(torch.as_tensor(e0))
        model.energy_scale.fill_(max(float(np.sqrt(np.mean(residual**2))), 1e-3))


def _batches(frames: Sequence[Frame], size: int, model: BPPotential, settings: TrainSettings,
             order: Sequence[int] | None = None) -> list[Batch]:
    order = range(len(frames)) if order is None else order
    idx = list(order)
    return [collate([frames[i] for i in idx[k : k + size]], model.cutoff, model.angular_cutoff,
                    settings.device, settings.torch_dtype) for k in range(0, len(idx), size)]


def evaluate(model: BPPotential, batches: Sequence[Batch], weights: LossWeights) -> tuple[float, dict]:
    """Mean loss and error summary over ``batches`` (no parameter gradients)."""
    errors, total, n = Errors(), 0.0, 0
    for b in batches:
        p = predict(model, b.structures, b.neighbors, stress=weights.stress > 0)
        total += float(loss(p, b, weights)) * b.structures.n_structures
        n += b.structures.n_structures
        errors.add(p, b)
    return total / max(n, 1), errors.summary()


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def fit(model: BPPotential, train: Sequence[Frame], valid: Sequence[Frame], settings: TrainSettings,
        checkpoint: Path | None = None, *, seed: int = 0, resume: bool = False,
        label: str = "model", fingerprint: str = "") -> dict:
    """Train ``model`` in place; returns the history. The best-validation weights are kept.

    With ``checkpoint`` the full state (weights, optimiser, schedule, history, RNG) is written
    atomically after every epoch; ``resume`` continues from it, provided it carries the same
    ``fingerprint`` (a digest of the settings and data the caller trains with).
    """
    torch.manual_seed(seed)
    model.to(device=settings.device, dtype=settings.torch_dtype)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=settings.lr_factor, patience=settings.lr_patience, min_lr=settings.min_lr)
    history: dict[str, list] = {"epoch": [], "train_loss": [], "valid_loss": [], "lr": [],
                                "valid_energy_mae_meV_per_atom": [], "valid_force_mae_meV_per_A": []}
    best = {"loss": math.inf, "epoch": -1, "state": copy.deepcopy(model.state_dict())}
    epoch0 = 0
    grad_scale = 0.0  # running mean of the gradient norm
    rng = np.random.default_rng(seed)
    state = None
    if resume and checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True, map_location=settings.device)
        if state.get("fingerprint", "") != fingerprint:
            raise CheckpointMismatch(
                f"{checkpoint}: written for other settings or data than this run; remove the "
                "checkpoints or run without --resume")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, best, epoch0 = state["history"], state["best"], state["epoch"] + 1
        grad_scale = state["grad_scale"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        log.info("%s: resumed from %s at epoch %d", label, checkpoint, epoch0)
    valid_batches = _batches(valid, 64, model, settings)
    finished = state is not None and bool(state.get("done", False))
    epochs = range(epoch0, epoch0 if finished else settings.max_epochs)
    bar = tqdm(epochs, desc=label, disable=not settings.progress, leave=False, unit="epoch")
    for epoch in bar:
        model.train()
        total, n = 0.0, 0
        for b in _batches(train, settings.batch_size, model, settings, rng.permutation(len(train))):
            opt.zero_grad(set_to_none=True)
            p = predict(model, b.structures, b.neighbors, stress=settings.weights.stress > 0, create_graph=True)
            value = loss(p, b, settings.weights)
            value.backward()
            if settings.grad_clip > 0:
                limit = settings.grad_clip * grad_scale if grad_scale > 0 else math.inf
                norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), limit))
                grad_scale = norm if grad_scale == 0 else 0.9 * grad_scale + 0.1 * min(norm, limit)
            opt.step()
            total += float(value.detach()) * b.structures.n_structures
            n += b.structures.n_structures
        model.eval()
        v_loss, v_err = evaluate(model, valid_batches, settings.weights)
        sched.step(v_loss)
        lr = opt.param_groups[0]["lr"]
        for key, val in (("epoch", epoch), ("train_loss", total / n), ("valid_loss", v_loss), ("lr", lr),
                         ("valid_energy_mae_meV_per_atom", v_err["energy_mae_meV_per_atom"]),
                         ("valid_force_mae_meV_per_A", v_err["force_mae_meV_per_A"])):
            history[key].append(val)
        if v_loss < best["loss"]:
            best = {"loss": v_loss, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
        bar.set_postfix(E=f"{v_err['energy_mae_meV_per_atom']:.2f}meV/at",
                        F=f"{v_err['force_mae_meV_per_A']:.0f}meV/A", lr=f"{lr:.1e}")
        done = epoch - best["epoch"] >= settings.patience  # early stop
        if checkpoint is not None:
            _save_checkpoint(checkpoint, {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "history": history, "best": best, "epoch": epoch, "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(), "done": done, "grad_scale": grad_scale,
                "fingerprint": fingerprint})
        if done:
            log.info("%s: early stop at epoch %d (best %d)", label, epoch, best["epoch"])
            break
    model.load_state_dict(best["state"])
    log.info("%s: best validation loss %.3e at epoch %d", label, best["loss"], best["epoch"])
    return history
