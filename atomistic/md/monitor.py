"""Watching a run: energy drift (NVE) and blow-ups."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from atomistic.errors import MDBlowUp  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class DriftReport:
    """Linear drift of the total energy per atom.

    drift_meV_per_atom_ps   slope over the whole run (least squares), meV/atom/ps
    first_half / second_half  the slopes of the two halves, meV/atom/ps
    fluctuation_meV_per_atom  standard deviation of the residuals, meV/atom
    growing                 the second half drifts faster than the first, by more than both
                            the statistical error of the two slopes (3 sigma) and a factor 2
    """

    drift_meV_per_atom_ps: float
    first_half_meV_per_atom_ps: float
    second_half_meV_per_atom_ps: float
    fluctuation_meV_per_atom: float
    growing: bool
    duration_ps: float

    def as_dict(self) -> dict:
        return asdict(self)


def _slope(t: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and its standard error (white-noise residuals)."""
    a = np.vstack([t, np.ones_like(t)]).T
    coef, *_ = np.linalg.lstsq(a, e, rcond=None)
    resid = e - a @ coef
    dof = max(len(t) - 2, 1)
    var = resid @ resid / dof / max(((t - t.mean()) ** 2).sum(), 1e-300)
    return float(coef[0]), float(np.sqrt(var))


def energy_drift(time_ps, energy_per_atom_eV) -> DriftReport:
    """Drift of a total-energy series (eV/atom) sampled at ``time_ps``; needs >= 8 samples."""
    t = np.asarray(time_ps, dtype=float)
    e = np.asarray(energy_per_atom_eV, dtype=float) * 1000.0  # meV/atom
    if len(t) < 8:
        raise ValueError(f"energy drift needs at least 8 samples, got {len(t)}")
    slope, _ = _slope(t, e)
    half = len(t) // 2
    s1, err1 = _slope(t[:half], e[:half])
    s2, err2 = _slope(t[half:], e[half:])
    resid = e - (slope * t + (e - slope * t).mean())
    growing = abs(s2) > 2.0 * abs(s1) and abs(s2) - abs(s1) > 3.0 * np.hypot(err1, err2)
    return DriftReport(slope, s1, s2, float(resid.std()), bool(growing), float(t[-1] - t[0]))
