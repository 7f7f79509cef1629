"""PNG plots of training results (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .atomic_files import atomic_path  # noqa: E402


def save_png(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` atomically (temporary file, then rename) and close it."""
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return path


def parity(path: Path, energy_ref, energy_pred, force_ref, force_pred, title: str = "") -> Path:
    """Energy per atom (eV/atom) and force components (eV/Å): prediction vs reference."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, ref, pred, unit, name in ((axes[0], energy_ref, energy_pred, "eV/atom", "energy"),
                                      (axes[1], force_ref, force_pred, "eV/Å", "force components")):
        ref, pred = np.asarray(ref).ravel(), np.asarray(pred).ravel()
        lo, hi = min(ref.min(), pred.min()), max(ref.max(), pred.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.scatter(ref, pred, s=4, alpha=0.5)
        mae = np.abs(ref - pred).mean()
        ax.set_xlabel(f"reference {name} ({unit})")
        ax.set_ylabel(f"NN-PES {name} ({unit})")
        ax.set_title(f"{name}: MAE {1e3 * mae:.2f} m{unit}")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def learning_curve(path: Path, n_frames: Sequence[int], energy_mae: Sequence[float],
                   force_mae: Sequence[float], title: str = "") -> Path:
    """Test-set energy (meV/atom) and force (meV/Å) MAE against training frames, log-log."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, err, name in ((axes[0], energy_mae, "energy MAE (meV/atom)"), (axes[1], force_mae, "force MAE (meV/Å)")):
        ax.loglog(n_frames, err, "o-")
        ax.set_xlabel("training frames")
        ax.set_ylabel(f"test {name}")
        ax.grid(True, which="both", lw=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def training_curves(path: Path, histories: Sequence[dict]) -> Path:
    """Training and validation loss, and validation force MAE, vs epoch for every member."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for k, h in enumerate(histories):
        c = f"C{k}"
        axes[0].semilogy(h["epoch"], h["train_loss"], color=c, lw=0.8, label=f"member {k + 1} train")
        axes[0].semilogy(h["epoch"], h["valid_loss"], color=c, lw=0.8, ls="--", label=f"member {k + 1} valid")
        axes[1].semilogy(h["epoch"], h["valid_force_mae_meV_per_A"], color=c, lw=0.8, label=f"member {k + 1}")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("validation force MAE (meV/Å)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
