"""The training loss (DESIGN §2) and the error metrics reported in the usual units."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from atomistic.potential.forces import Prediction
from atomistic.training.batch import Batch
from atomistic.units import eV_per_A3_to_GPa


@dataclass(frozen=True)
class LossWeights:
    """w_E on (eV/atom)^2, w_F on |F - F_ref|^2 per atom in (eV/Å)^2, w_S on GPa^2 per component."""

    energy: float = 10.0
    forces: float = 0.1
    stress: float = 1e-3

    def __post_init__(self):
        for name in ("energy", "forces", "stress"):
            value = getattr(self, name)
            if not (value >= 0 and value < float("inf")):  # NaN fails both
                raise ValueError(f"weights.{name} = {value!r}: expected a finite weight >= 0")
        if self.energy == 0 and self.forces == 0 and self.stress == 0:
            raise ValueError("weights: every weight is 0; nothing would be fitted")


def loss(pred: Prediction, batch: Batch, w: LossWeights) -> torch.Tensor:
    """L = w_E mean((E - E_ref)/N)^2 + w_F mean|F - F_ref|^2 + w_S mean(sigma - sigma_ref)^2."""
    n = batch.n_atoms.to(pred.energy.dtype)
    total = w.energy * (((pred.energy - batch.energy) / n) ** 2).mean()
    if w.forces > 0:
        total = total + w.forces * ((pred.forces - batch.forces) ** 2).sum(-1).mean()
    if w.stress > 0 and pred.stress is not None and bool(batch.has_stress.any()):
        ds = (pred.stress - batch.stress)[batch.has_stress] * eV_per_A3_to_GPa
        total = total + w.stress * (ds**2).mean()
    return total


@dataclass
class Errors:
    """Sums for mean absolute and RMS errors, accumulated over batches."""

    energy_abs: float = 0.0  # eV/atom
    energy_sq: float = 0.0
    n_structures: int = 0
    force_abs: float = 0.0  # eV/Å, per component
    force_sq: float = 0.0
    n_components: int = 0
    stress_abs: float = 0.0  # GPa, per component
    n_stress: int = 0

    def add(self, pred: Prediction, batch: Batch) -> None:
        de = ((pred.energy - batch.energy) / batch.n_atoms).detach()
        self.energy_abs += float(de.abs().sum())
        self.energy_sq += float((de**2).sum())
        self.n_structures += len(de)
        df = (pred.forces - batch.forces).detach()
        self.force_abs += float(df.abs().sum())
        self.force_sq += float((df**2).sum())
        self.n_components += df.numel()
        if pred.stress is not None and bool(batch.has_stress.any()):
            ds = (pred.stress - batch.stress).detach()[batch.has_stress] * eV_per_A3_to_GPa
            self.stress_abs += float(ds.abs().sum())
            self.n_stress += ds.numel()

    def summary(self) -> dict[str, float]:
        """energy_mae_meV_per_atom, energy_rmse_meV_per_atom, force_mae_meV_per_A,
        force_rmse_meV_per_A, stress_mae_GPa (None without stress labels)."""
        out = {
            "energy_mae_meV_per_atom": 1e3 * self.energy_abs / max(self.n_structures, 1),
            "energy_rmse_meV_per_atom": 1e3 * (self.energy_sq / max(self.n_structures, 1)) ** 0.5,
            "force_mae_meV_per_A": 1e3 * self.force_abs / max(self.n_components, 1),
            "force_rmse_meV_per_A": 1e3 * (self.force_sq / max(self.n_components, 1)) ** 0.5,
        }
        out["stress_mae_GPa"] = self.stress_abs / self.n_stress if self.n_stress else None
        return out
