"""Is the committee's disagreement a useful error estimate? Its errors and disagreement on
labelled held-out configurations, and their rank correlation.

Per structure: ``d`` (the largest pairwise member force difference on any atom, DESIGN §2) vs
the true error ``max_i |F_i - F_i^ref|`` of the committee mean. Per atom: the same two on each
atom. Spearman's rho of each pair says how well the disagreement ranks the true error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from atomistic.potential.committee import Committee, atom_force_disagreement, evaluate_committee


@dataclass
class CommitteeErrors:
    """Errors and disagreement of a committee on labelled frames (all eV/Å unless named).

    d, max_error, energy_spread_per_atom (eV/atom), energy_error_per_atom (eV/atom): per structure;
    atom_disagreement, atom_error: per atom; force_components: (reference, prediction) arrays.
    """

    d: np.ndarray
    max_error: np.ndarray
    energy_spread_per_atom: np.ndarray
    energy_error_per_atom: np.ndarray
    atom_disagreement: np.ndarray
    atom_error: np.ndarray
    force_components: tuple[np.ndarray, np.ndarray]

    @property
    def force_mae(self) -> float:
        ref, pred = self.force_components
        return float(np.abs(pred - ref).mean())

    @property
    def force_rmse(self) -> float:
        ref, pred = self.force_components
        return float(np.sqrt(((pred - ref) ** 2).mean()))

    def summary(self) -> dict:
        """Force MAE/RMSE (meV/Å), energy MAE (meV/atom), Spearman rho per structure and per atom."""
        return {"force_mae_meV_per_A": 1e3 * self.force_mae, "force_rmse_meV_per_A": 1e3 * self.force_rmse,
                "energy_mae_meV_per_atom": 1e3 * float(np.abs(self.energy_error_per_atom).mean()),
                "max_force_error_eV_per_A": float(self.max_error.max()),
                "spearman_structures": spearman(self.d, self.max_error),
                "spearman_atoms": spearman(self.atom_disagreement, self.atom_error),
                "n_structures": len(self.d), "n_atoms": len(self.atom_error)}


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (NaN for fewer than 3 points or a constant input)."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def committee_errors(committee: Committee, frames: Sequence[Atoms], *, batch_size: int = 32) -> CommitteeErrors:
    """Evaluate ``committee`` on labelled ``frames`` (energy and forces from their calculators)."""
    if not frames:
        raise ValueError("committee_errors needs at least one labelled frame")
    out = {k: [] for k in ("d", "max_error", "spread", "e_err", "atom_d", "atom_err", "f_ref", "f_pred")}
    for start in range(0, len(frames), batch_size):
        chunk = frames[start:start + batch_size]
        p = evaluate_committee(committee, chunk)
        n = torch.as_tensor([len(a) for a in chunk], dtype=torch.float64)
        f_ref = torch.as_tensor(np.concatenate([a.get_forces() for a in chunk]))
        e_ref = torch.as_tensor([a.get_potential_energy() for a in chunk])
        f_pred = p.forces.detach().cpu().to(torch.float64)
        err = torch.linalg.vector_norm(f_pred - f_ref, dim=1)
        batch = torch.repeat_interleave(torch.arange(len(chunk)), n.long())  # structure of each atom
        out["d"].append(p.force_disagreement.detach().cpu())
        out["max_error"].append(torch.zeros(len(chunk), dtype=torch.float64).scatter_reduce(
            0, batch, err, reduce="amax", include_self=True))
        out["spread"].append(p.energy_spread.detach().cpu() / n)
        out["e_err"].append((p.energy.detach().cpu() - e_ref) / n)
        out["atom_d"].append(atom_force_disagreement(p.member_forces.detach()).cpu())
        out["atom_err"].append(err)
        out["f_ref"].append(f_ref)
        out["f_pred"].append(f_pred)
    cat = {k: torch.cat(v).to(torch.float64).numpy() for k, v in out.items()}
    return CommitteeErrors(d=cat["d"], max_error=cat["max_error"], energy_spread_per_atom=cat["spread"],
                           energy_error_per_atom=cat["e_err"], atom_disagreement=cat["atom_d"],
                           atom_error=cat["atom_err"], force_components=(cat["f_ref"], cat["f_pred"]))
