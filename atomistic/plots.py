"""PNG plots of training, active-learning and surface-hopping results (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from atomistic.atomic_files import atomic_path  # noqa: E402


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


def disagreement_plot(path: Path, trace, threshold: float, title: str = "") -> Path:
    """Committee disagreement d (eV/Å) vs MD time (ps) per replica, the query threshold, the
    queries (red) and the stage temperature (K, right axis). ``trace``: the rows of an
    active-learning ``disagreement.csv`` (a structured array)."""
    fig, ax = plt.subplots(figsize=(10, 4.4))
    t = trace["time_fs"] / 1000.0
    for b in np.unique(trace["replica"]):
        sel = trace["replica"] == b
        ax.plot(t[sel], trace["d_eV_per_A"][sel], lw=0.7, alpha=0.8, label=f"replica {int(b)}")
    q = trace["query"] == 1
    ax.plot(t[q], np.nan_to_num(trace["d_eV_per_A"][q], nan=threshold), "rx", ms=6, label="oracle query")
    ax.axhline(threshold, color="k", ls="--", lw=0.8, label=f"threshold {threshold:g} eV/Å")
    ax.set_yscale("log")
    ax.set_xlabel("MD time (ps)")
    ax.set_ylabel("force disagreement d (eV/Å)")
    twin = ax.twinx()
    twin.step(t, trace["temperature_K"], where="post", color="0.6", lw=0.8)
    twin.set_ylabel("temperature (K)", color="0.4")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title)
    return save_png(fig, path)


def learning_progress_plot(path: Path, oracle_calls: Sequence[int], force_rmse: Sequence[float],
                           force_mae: Sequence[float], title: str = "") -> Path:
    """Test force RMSE and MAE (meV/Å) vs oracle calls, with half the starting RMSE marked."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.plot(oracle_calls, force_rmse, "o-", ms=3, label="force RMSE")
    ax.plot(oracle_calls, force_mae, "s-", ms=3, label="force MAE")
    ax.axhline(0.5 * force_rmse[0], color="k", ls="--", lw=0.8, label="half the starting RMSE")
    ax.set_yscale("log")
    ax.set_xlabel("oracle calls (queries)")
    ax.set_ylabel("test force error (meV/Å)")
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return save_png(fig, path)


def calibration_plot(path: Path, sets: dict, pooled: float | None = None, title: str = "") -> Path:
    """Predicted disagreement d vs true largest force error (eV/Å), log-log, one colour per
    committee; ``sets`` maps a label to (d, error) arrays. Spearman's rho in the legend
    (``pooled``: a rho over all committees, shown in the title)."""
    from scipy.stats import spearmanr

    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    lo, hi = np.inf, 0.0
    for name, (d, err) in sets.items():
        d, err = np.asarray(d), np.asarray(err)
        rho = spearmanr(d, err).statistic if len(d) > 2 else float("nan")
        ax.scatter(d, err, s=8, alpha=0.6, label=f"{name} (Spearman {rho:.2f})")
        lo, hi = min(lo, d.min(), err.min()), max(hi, d.max(), err.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="error = d")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("committee disagreement d (eV/Å)")
    ax.set_ylabel("true largest force error (eV/Å)")
    ax.legend(fontsize=8)
    ax.set_title(title if pooled is None else f"{title}\nSpearman over every generation: {pooled:.2f}", fontsize=10)
    return save_png(fig, path)


def hops_plot(path: Path, history: dict, title: str = "") -> Path:
    """Cumulative surface hops vs time (fs) from the records of :meth:`SurfaceHopping.run`:
    accepted (solid) and frustrated (dashed), one colour per from -> to pair that occurred."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    t = np.asarray(history["time_fs"])
    accepted, frustrated = np.asarray(history["accepted"]), np.asarray(history["frustrated"])
    n = accepted.shape[1]
    colour = 0
    for a in range(n):
        for b in range(n):
            if a == b or (accepted[-1, a, b] == 0 and frustrated[-1, a, b] == 0):
                continue
            ax.plot(t, accepted[:, a, b], color=f"C{colour}", label=f"{a} -> {b}: accepted")
            ax.plot(t, frustrated[:, a, b], color=f"C{colour}", ls="--", lw=0.8, label=f"{a} -> {b}: frustrated")
            colour += 1
    if colour == 0:
        ax.text(0.5, 0.5, "no hops", transform=ax.transAxes, ha="center")
    else:
        ax.legend(fontsize=8)
    ax.set_xlabel("time (fs)")
    ax.set_ylabel("cumulative hops")
    ax.set_title(title)
    return save_png(fig, path)


def population_plot(path: Path, history: dict, title: str = "", reference: dict | None = None) -> Path:
    """Surface-hopping populations vs time (fs): the fraction of trajectories on each state
    (solid) and the mean electronic populations |c_k|^2 (dashed), on 0..1 (top), and their
    change since t = 0 on a scale that shows it (bottom). ``reference``: ``{"label": str,
    "populations": (n,) list}``, exact asymptotic populations drawn as dotted lines with a
    marker at the last time."""
    t = np.asarray(history["time_fs"])
    surface, electronic = np.asarray(history["surface"]), np.asarray(history["electronic"])
    fig, (ax, change) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True, height_ratios=(3, 2))
    for k in range(surface.shape[1]):
        ax.plot(t, surface[:, k], color=f"C{k}", label=f"state {k}: trajectories")
        ax.plot(t, electronic[:, k], color=f"C{k}", ls="--", lw=0.8, label=f"state {k}: |c|^2")
        change.plot(t, surface[:, k] - surface[0, k], color=f"C{k}", label=f"state {k}: trajectories")
        change.plot(t, electronic[:, k] - electronic[0, k], color=f"C{k}", ls="--", lw=0.8,
                    label=f"state {k}: |c|^2")
        if reference is not None:
            value = reference["populations"][k]
            ax.plot([t[0], t[-1]], [value, value], color=f"C{k}", ls=":", lw=1.2, marker="o", ms=5, markevery=[1],
                    label=f"state {k}: {reference['label']}")
    ax.set_ylabel("population")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    ax.set_title(title)
    change.set_xlabel("time (fs)")
    change.set_ylabel("change since t = 0")
    change.legend(fontsize=7)
    return save_png(fig, path)


def dissociation_plot(path: Path, time_fs, fraction, error, final_distances_A, threshold_A: float,
                      title: str = "") -> Path:
    """A dissociation seen the way it is measured: the dissociated fraction (bond beyond
    ``threshold_A`` Å) vs time (fs) with its standard error shaded (left), and the histogram of
    the final bond lengths (Å) with the threshold marked (right)."""
    t, f, e = np.asarray(time_fs), np.asarray(fraction), np.asarray(error)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.0))
    left.plot(t, f, color="C3", label=f"bond > {threshold_A:g} Å")
    left.fill_between(t, np.clip(f - e, 0, 1), np.clip(f + e, 0, 1), color="C3", alpha=0.3,
                      label="± 1 standard error")
    left.set_xlabel("time (fs)")
    left.set_ylabel("dissociated fraction")
    left.legend(fontsize=8)
    d = np.asarray(final_distances_A)
    right.hist(d, bins=40, color="C0", label=f"{len(d)} trajectories at the end")
    right.axvline(threshold_A, color="k", ls="--", lw=0.8, label=f"threshold {threshold_A:g} Å")
    right.set_xlabel("final bond length (Å)")
    right.set_ylabel("trajectories")
    right.legend(fontsize=8)
    fig.suptitle(title)
    return save_png(fig, path)
