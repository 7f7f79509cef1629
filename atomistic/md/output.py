"""What a run writes: thermodynamic log (CSV), trajectory (extxyz), checkpoints, plots.

Log and trajectory are appended at host checks; a checkpoint records how many bytes of each
were written, so a resumed run first cuts them back to that point and nothing is duplicated.
Checkpoints are written atomically and load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from atomistic.atomic_files import atomic_path, write_extxyz
from atomistic.errors import CheckpointMismatch

THERMO_FIELDS = ("step", "time_fs", "structure", "potential_energy_eV", "kinetic_energy_eV", "total_energy_eV",
                 "temperature_K", "pressure_GPa", "volume_A3")
CHECKPOINT_VERSION = 2
#: versions :func:`load_checkpoint` reads; a version-1 checkpoint holds no forces, so a run resumed
#: from one recomputes them (with a fresh neighbour list: equal to the last bit only by chance)
READABLE_CHECKPOINT_VERSIONS = (1, 2)


class ThermoLog:
    """``thermo.csv``: one row per structure per logged step (columns :data:`THERMO_FIELDS`)."""

    def __init__(self, path: Path, append: bool):
        self.path = path
        if not append or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(THERMO_FIELDS)

    def append(self, rows: list[tuple]) -> None:
        buf = io.StringIO()
        w = csv.writer(buf)
        for row in rows:
            w.writerow([row[0], f"{row[1]:.6g}", row[2]] + [f"{v:.10g}" for v in row[3:]])
        with open(self.path, "a", newline="") as f:
            f.write(buf.getvalue())

    def size(self) -> int:
        return self.path.stat().st_size


class TrajectoryWriter:
    """``trajectory.extxyz``: frames with positions, momenta, cell, step and time."""

    def __init__(self, path: Path, append: bool):
        self.path = path
        if not append and path.exists():
            path.unlink()

    def append(self, frames: list[Atoms]) -> None:
        if frames:
            write_extxyz(self.path, frames, append=True, durable=False)

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0


def truncate(path: Path, size: int) -> None:
    """Cut ``path`` back to ``size`` bytes (what the checkpoint saw)."""
    if path.exists():
        with open(path, "r+b") as f:
            f.truncate(size)


def save_checkpoint(path: Path, *, positions, momenta, cell, step: int, generator: torch.Generator,
                    fingerprint: str, outputs: dict[str, int], extra: dict | None = None,
                    forces=None, energy=None, stress=None) -> None:
    """Atomically write the state needed to continue the run bit for bit.

    ``forces``, ``energy``, ``stress``: those the running loop carries into its next step. They
    were summed over the neighbour table of an earlier build, so recomputing them at ``positions``
    with a fresh table can differ in the last bit; a resumed run uses these instead.
    """
    def host(t):
        return None if t is None else t.detach().cpu()

    payload = {
        "version": CHECKPOINT_VERSION,
        "positions": positions.detach().cpu(),
        "momenta": momenta.detach().cpu(),
        "cell": cell.detach().cpu(),
        "forces": host(forces),
        "energy": host(energy),
        "stress": host(stress),
        "step": int(step),
        "rng": generator.get_state().cpu(),
        "fingerprint": fingerprint,
        "outputs": json.dumps(outputs),
        "extra": json.dumps(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, fingerprint: str) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` for the same run settings."""
    payload = torch.load(path, weights_only=True, map_location="cpu")
    if payload.get("version") not in READABLE_CHECKPOINT_VERSIONS:
        raise CheckpointMismatch(f"{path}: checkpoint version {payload.get('version')!r}, "
                                 f"expected one of {READABLE_CHECKPOINT_VERSIONS}")
    if payload["fingerprint"] != fingerprint:
        raise CheckpointMismatch(f"{path}: written by a run with other settings, model or atoms; "
                                 "start a new run (or remove the checkpoint)")
    payload["outputs"] = json.loads(payload["outputs"])
    payload["extra"] = json.loads(payload["extra"])
    return payload


def thermo_plot(csv_path: Path, png_path: Path, equilibration_ps: float | None = None) -> Path:
    """Energies (eV), temperature (K) and (if any) pressure (GPa) against time (ps), one PNG.
    ``equilibration_ps``: the samples before it (which the fluctuation analysis drops) are shaded
    and the end of equilibration is marked."""
    from atomistic.plots import plt, save_png

    data = np.genfromtxt(csv_path, delimiter=",", names=True)
    data = np.atleast_1d(data)
    panels = [("total_energy_eV", "E_tot (eV)"), ("potential_energy_eV", "E_pot (eV)"), ("temperature_K", "T (K)")]
    if np.isfinite(data["pressure_GPa"]).any():
        panels.append(("pressure_GPa", "P (GPa)"))
    fig, axes = plt.subplots(len(panels), 1, figsize=(6, 2.0 * len(panels)), sharex=True)
    structures = np.unique(data["structure"]).astype(int)
    for s in structures[:8]:
        rows = data[data["structure"] == s]
        for ax, (key, label) in zip(axes, panels):
            ax.plot(rows["time_fs"] / 1000.0, rows[key], lw=0.8, label=f"structure {s}")
            ax.set_ylabel(label)
    if equilibration_ps is not None and equilibration_ps > 0:
        for k, ax in enumerate(axes):
            ax.axvspan(0.0, equilibration_ps, color="0.85", zorder=0,
                       label="equilibration (dropped by the analysis)" if k == 0 else None)
            ax.axvline(equilibration_ps, color="k", ls="--", lw=0.8,
                       label=f"analysis starts at {equilibration_ps:g} ps" if k == 0 else None)
    if len(structures) > 1 or equilibration_ps:
        axes[0].legend(fontsize=7, loc="best")
    axes[-1].set_xlabel("time (ps)")
    return save_png(fig, png_path)


#: the old name of :func:`atomistic.atomic_files.write_extxyz` (``write_atoms(path, frames)``)
write_atoms = write_extxyz
