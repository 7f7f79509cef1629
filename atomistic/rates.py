"""Harmonic transition-state theory and its uncertainty from a committee (DESIGN §3).

    k(T) = (kB T / h) (Q_vib^TS / Q_vib^R) exp(-dE / kB T)

``dE`` is the classical barrier (saddle minus minimum energy, eV). The TS product runs over the
real modes only (the imaginary one is the reaction coordinate). Partition functions:

- classical:  Q = prod kB T / (h nu)  ->  k = prod nu_R / prod' nu_TS exp(-dE / kB T)  (Vineyard)
- quantum:    Q = prod exp(-h nu / 2 kB T) / (1 - exp(-h nu / kB T)): zero-point energy lives in
  Q, so the effective barrier is dE plus the change in zero-point energy.

Frequencies are in cm^-1 (as :mod:`atomistic.vibrations` gives them), rates in 1/s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import units

from .atomic_files import atomic_path

KB_EV = units.kB  #: Boltzmann constant, eV/K
H_EVS = units._hplanck / units._e  #: Planck constant, eV s
C_CM = units._c * 100.0  #: speed of light, cm/s


def _temperatures(temperature_K) -> np.ndarray:
    t = np.atleast_1d(np.asarray(temperature_K, dtype=float))
    if not (np.isfinite(t).all() and (t > 0).all()):
        raise ValueError(f"temperature_K must be positive, got {temperature_K}")
    return t


def _real_saddle_modes(saddle_cm: np.ndarray, n_minimum: int) -> np.ndarray:
    n_imag = int((saddle_cm < 0).sum())
    if len(saddle_cm) == n_minimum:
        if n_imag != 1:
            raise ValueError(f"saddle_frequencies_cm: a first-order saddle has exactly one imaginary (negative) "
                             f"frequency, got {n_imag}")
        return saddle_cm[saddle_cm >= 0]
    if len(saddle_cm) == n_minimum - 1:
        if n_imag:
            raise ValueError(f"saddle_frequencies_cm without the reaction mode must all be real, got {n_imag} negative")
        return saddle_cm
    raise ValueError(f"saddle_frequencies_cm: expected {n_minimum} (with the imaginary mode) or {n_minimum - 1} "
                     f"frequencies to match {n_minimum} at the minimum, got {len(saddle_cm)}")


def log_partition(frequencies_cm, temperature_K, quantum: bool) -> np.ndarray:
    """ln Q_vib over the modes (one value per temperature)."""
    t = _temperatures(temperature_K)[:, None]
    x = H_EVS * C_CM * np.asarray(frequencies_cm, dtype=float)[None, :] / (KB_EV * t)  # h nu / kB T
    if quantum:
        return (-0.5 * x - np.log1p(-np.exp(-x))).sum(1)
    return (-np.log(x)).sum(1)


def htst_rate(temperature_K, barrier_eV: float, minimum_frequencies_cm, saddle_frequencies_cm, *,
              quantum: bool = False) -> np.ndarray:
    """Harmonic TST rate constant(s), 1/s, one per temperature (module docstring).

    ``minimum_frequencies_cm``: the n real modes of the minimum; ``saddle_frequencies_cm``: the
    saddle's modes, either all n (exactly one negative = imaginary, dropped) or the n - 1 real ones.
    """
    t = _temperatures(temperature_K)
    nu_r = np.asarray(minimum_frequencies_cm, dtype=float)
    if (nu_r <= 0).any():
        raise ValueError("minimum_frequencies_cm must all be positive (a minimum has no imaginary mode)")
    nu_s = _real_saddle_modes(np.asarray(saddle_frequencies_cm, dtype=float), len(nu_r))
    if (nu_s == 0).any():
        raise ValueError("saddle_frequencies_cm contains a zero frequency: project rigid modes out first")
    log_k = (np.log(KB_EV * t / H_EVS) + log_partition(nu_s, t, quantum) - log_partition(nu_r, t, quantum)
             - barrier_eV / (KB_EV * t))
    return np.exp(log_k)


@dataclass
class RateBand:
    """Committee rates: ``member_rates`` (M, n_T) 1/s; ``rate`` the geometric mean over members;
    ``lower``/``upper`` the ``confidence`` prediction interval (see :func:`ensemble_rate`)."""

    temperatures_K: np.ndarray
    rate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    member_rates: np.ndarray
    member_barriers_eV: np.ndarray
    confidence: float
    quantum: bool

    def as_dict(self) -> dict:
        return {"temperatures_K": self.temperatures_K.tolist(), "rate_per_s": self.rate.tolist(),
                "lower_per_s": self.lower.tolist(), "upper_per_s": self.upper.tolist(),
                "member_rates_per_s": self.member_rates.tolist(), "member_barriers_eV": self.member_barriers_eV.tolist(),
                "confidence": self.confidence, "quantum": self.quantum}


def ensemble_rate(temperatures_K, member_barriers_eV, member_minimum_cm, member_saddle_cm, *,
                  quantum: bool = False, confidence: float = 0.95) -> RateBand:
    """Rates of every member and a band for a new draw from the committee.

    Each member m gives ln k_m(T) from its own barrier and frequencies. The band is the Student-t
    prediction interval of ln k: mean +- t_{(1+c)/2, M-1} s sqrt(1 + 1/M), with s the standard
    deviation of ln k over the M members (with M = 4, t = 3.18 at 95 %: wide, as it should be with
    so few members). Identical members give a band of zero width.
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    t = _temperatures(temperatures_K)
    barriers = np.asarray(member_barriers_eV, dtype=float)
    m = len(barriers)
    if m < 2 or len(member_minimum_cm) != m or len(member_saddle_cm) != m:
        raise ValueError(f"ensemble_rate needs >= 2 members with barriers and both sets of frequencies each, got "
                         f"{m}, {len(member_minimum_cm)}, {len(member_saddle_cm)}")
    rates = np.stack([htst_rate(t, b, r, s, quantum=quantum)
                      for b, r, s in zip(barriers, member_minimum_cm, member_saddle_cm)])
    log_k = np.log(rates)
    mean, sd = log_k.mean(0), log_k.std(0, ddof=1)
    half = stats.t.ppf(0.5 * (1 + confidence), m - 1) * sd * np.sqrt(1 + 1 / m)
    return RateBand(t, np.exp(mean), np.exp(mean - half), np.exp(mean + half), rates, barriers, confidence, quantum)


def committee_rates(ensemble, minimum, saddle, temperatures_K, *, quantum: bool = False,
                    confidence: float = 0.95, project_rigid: bool = True, device=None) -> RateBand:
    """HTST rates of each member of ``ensemble`` at the given minimum and saddle geometries (ASE
    ``Atoms``, same atoms, same constraints): each member's barrier and normal modes at those
    geometries (harmonic expansion of every member about the committee's stationary points)."""
    from .testing import evaluate
    from .vibrations import normal_modes

    barriers, nu_r, nu_s = [], [], []
    for member in ensemble.members:
        barriers.append(evaluate(member, saddle)[0] - evaluate(member, minimum)[0])
        nu_r.append(normal_modes(member, minimum, project_rigid=project_rigid, device=device).frequencies_cm)
        nu_s.append(normal_modes(member, saddle, project_rigid=project_rigid, device=device).frequencies_cm)
    return ensemble_rate(temperatures_K, barriers, nu_r, nu_s, quantum=quantum, confidence=confidence)


def arrhenius_plot(path: str | Path, band: RateBand, *, title: str = "") -> Path:
    """ln k against 1000/T with the committee band shaded and the members as thin lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = 1000.0 / band.temperatures_K
    order = np.argsort(x)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.fill_between(x[order], band.lower[order], band.upper[order], alpha=0.3, color="C0",
                    label=f"{int(round(100 * band.confidence))} % band")
    for r in band.member_rates:
        ax.plot(x[order], r[order], lw=0.6, color="C0", alpha=0.6)
    ax.plot(x[order], band.rate[order], lw=1.6, color="C0", label="committee (geometric mean)")
    ax.set_yscale("log")
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("k (1/s)")
    ax.set_title(title or ("harmonic TST, quantum" if band.quantum else "harmonic TST, classical"))
    ax.legend(frameon=False)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
