"""Harmonic transition-state theory and its uncertainty from a committee (DESIGN §3).

    k(T) = (kB T / h) (Q_vib^TS / Q_vib^R) exp(-dE / kB T)                              1/s

``dE`` is the classical barrier (saddle minus minimum energy, eV, no zero-point energy). The TS
product runs over the real modes only (the imaginary one is the reaction coordinate), so the
saddle has one mode fewer than the minimum. Partition functions, with x = h nu / kB T:

- classical:  Q = prod 1 / x  ->  k = prod_n nu_R / prod_{n-1} nu_TS exp(-dE / kB T)   (Vineyard)
- quantum:    Q = prod exp(-x / 2) / (1 - exp(-x)), energies counted from the classical bottom:
  the zero-point energy lives in Q, so at low T the effective barrier is dE + ZPE_TS - ZPE_R,
  and at high T ln(k_q / k_c) -> -(sum_TS x^2 - sum_R x^2) / 24.

Frequencies are in cm^-1 (as :mod:`atomistic.analysis.vibrations` gives them), temperatures in K, rates in
1/s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import units

log = logging.getLogger(__name__)

KB_EV = units.kB  #: Boltzmann constant, eV/K
H_EVS = units._hplanck / units._e  #: Planck constant, eV s
C_CM = units._c * 100.0  #: speed of light, cm/s


def _temperatures(temperature_K) -> np.ndarray:
    t = np.atleast_1d(np.asarray(temperature_K, dtype=float))
    if t.ndim != 1 or not t.size or not (np.isfinite(t).all() and (t > 0).all()):
        raise ValueError(f"temperature_K must be a finite temperature > 0 K or a 1-D array of them, "
                         f"got {temperature_K!r}")
    return t


def _frequencies(name: str, values) -> np.ndarray:
    nu = np.asarray(values, dtype=float)
    if nu.ndim != 1 or not np.isfinite(nu).all():
        raise ValueError(f"{name} must be a 1-D array of finite frequencies in cm^-1, got {values!r}")
    return nu


def _real_saddle_modes(saddle_cm: np.ndarray, n_minimum: int) -> np.ndarray:
    """The n - 1 real saddle modes, from all n (exactly one negative, dropped) or n - 1 real ones."""
    n_imag = int((saddle_cm < 0).sum())
    if len(saddle_cm) == n_minimum:
        if n_imag != 1:
            raise ValueError(f"saddle_frequencies_cm: {n_minimum} modes given (as many as the minimum), so "
                             f"exactly one imaginary (negative) frequency was expected, got {n_imag}: "
                             f"{saddle_cm.tolist()}")
        real = saddle_cm[saddle_cm >= 0]
    elif len(saddle_cm) == n_minimum - 1:
        if n_imag:
            raise ValueError(f"saddle_frequencies_cm: {n_minimum - 1} modes given (the imaginary one left out), "
                             f"so all were expected real (>= 0), got {n_imag} negative: {saddle_cm.tolist()}")
        real = saddle_cm
    else:
        raise ValueError(f"saddle_frequencies_cm: expected {n_minimum} (with the imaginary mode) or "
                         f"{n_minimum - 1} (without) frequencies to match the {n_minimum} of the minimum, "
                         f"got {len(saddle_cm)}")
    if (real == 0).any():
        raise ValueError(f"saddle_frequencies_cm contains a zero frequency (a rigid-body mode?), expected the "
                         f"real modes > 0 cm^-1: {saddle_cm.tolist()}")
    return real


def log_partition(frequencies_cm, temperature_K, quantum: bool) -> np.ndarray:
    """ln Q_vib (dimensionless) of the real modes ``frequencies_cm`` (cm^-1, > 0), one value per
    temperature (K); quantum Q includes the zero-point energy (module docstring)."""
    t = _temperatures(temperature_K)[:, None]
    x = H_EVS * C_CM * np.asarray(frequencies_cm, dtype=float)[None, :] / (KB_EV * t)  # h nu / kB T
    if quantum:
        return (-0.5 * x - np.log1p(-np.exp(-x))).sum(1)
    return (-np.log(x)).sum(1)


def htst_rate(temperature_K, barrier_eV: float, minimum_frequencies_cm, saddle_frequencies_cm, *,
              quantum: bool = False) -> np.ndarray:
    """Harmonic TST rate constant, 1/s, shaped like ``temperature_K`` (K; a number or 1-D array).

    ``barrier_eV``: classical barrier E_saddle - E_minimum (eV, >= 0, zero-point energy not
    included). ``minimum_frequencies_cm``: the n real modes of the minimum (cm^-1, all > 0).
    ``saddle_frequencies_cm``: the saddle's modes, either all n with exactly one negative
    (the imaginary mode, dropped) or the n - 1 real ones; anything else is an error. ``quantum``
    picks quantum or classical harmonic partition functions (module docstring).
    """
    t = _temperatures(temperature_K)
    if not (np.isfinite(barrier_eV) and barrier_eV >= 0):
        raise ValueError(f"barrier_eV must be a finite energy >= 0 eV (saddle above minimum), got {barrier_eV!r}")
    nu_r = _frequencies("minimum_frequencies_cm", minimum_frequencies_cm)
    if not len(nu_r) or (nu_r <= 0).any():
        raise ValueError(f"minimum_frequencies_cm must be real frequencies > 0 cm^-1 (a minimum has no "
                         f"imaginary or zero mode), got {nu_r.tolist()}")
    nu_s = _real_saddle_modes(_frequencies("saddle_frequencies_cm", saddle_frequencies_cm), len(nu_r))
    log_k = (np.log(KB_EV * t / H_EVS) + log_partition(nu_s, t, quantum) - log_partition(nu_r, t, quantum)
             - float(barrier_eV) / (KB_EV * t))
    return np.exp(log_k).reshape(np.shape(temperature_K))


@dataclass(frozen=True)
class RateBand:
    """Committee rates (see :func:`rate_band`).

    temperatures_K      (n_T,) K
    rate                (n_T,) 1/s, exp(mean over members of ln k): the geometric mean
    lower, upper        (n_T,) 1/s, the ``confidence`` Student-t prediction interval of ln k
    member_rates        (M, n_T) 1/s
    member_barriers_eV  (M,) eV
    """

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
                "member_rates_per_s": self.member_rates.tolist(),
                "member_barriers_eV": self.member_barriers_eV.tolist(),
                "confidence": self.confidence, "quantum": self.quantum}


def rate_band(temperatures_K, member_barriers_eV, member_minimum_cm, member_saddle_cm, *,
              quantum: bool = False, confidence: float = 0.95) -> RateBand:
    """Rates of every member and a band for the rate, 1/s.

    ``member_barriers_eV`` (M,) eV; ``member_minimum_cm`` (M, n) and ``member_saddle_cm``
    (M, n) or (M, n - 1) cm^-1, each row as in :func:`htst_rate`; ``temperatures_K`` (n_T,) K.
    Each member m gives ln k_m(T) from its own barrier and frequencies. The band is the Student-t
    prediction interval of ln k: mean +- t_{(1+c)/2, M-1} s sqrt(1 + 1/M), with s the sample
    standard deviation of ln k over the M members: where the rate of one more draw from the
    committee would fall (with M = 4, t = 3.18 at 95 %: wide, as it should be with so few members).
    Identical members give a band of zero width.
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    t = _temperatures(temperatures_K)
    barriers = np.atleast_1d(np.asarray(member_barriers_eV, dtype=float))
    m = len(barriers)
    if barriers.ndim != 1 or m < 2 or len(member_minimum_cm) != m or len(member_saddle_cm) != m:
        raise ValueError(f"rate_band needs >= 2 members, each with a barrier and both sets of frequencies: "
                         f"got member_barriers_eV of shape {barriers.shape}, {len(member_minimum_cm)} "
                         f"member_minimum_cm and {len(member_saddle_cm)} member_saddle_cm rows")
    rates = []
    for k, (b, r, s) in enumerate(zip(barriers, member_minimum_cm, member_saddle_cm)):
        try:
            rates.append(htst_rate(t, b, r, s, quantum=quantum))
        except ValueError as err:
            raise ValueError(f"committee member {k}: {err}") from err
    rates = np.stack(rates)
    log_k = np.log(rates)
    mean, sd = log_k.mean(0), log_k.std(0, ddof=1)
    half = stats.t.ppf(0.5 * (1 + confidence), m - 1) * sd * np.sqrt(1 + 1 / m)
    return RateBand(t, np.exp(mean), np.exp(mean - half), np.exp(mean + half), rates, barriers, confidence, quantum)


def committee_rates(committee, minimum, saddle, temperatures_K, *, quantum: bool = False,
                    confidence: float = 0.95, project_rigid: bool = True, device=None) -> RateBand:
    """HTST rates (1/s) of each member of ``committee`` (a :class:`~atomistic.potential.committee.Committee`
    or a sequence of models) at the given ``minimum`` and ``saddle`` geometries (ASE ``Atoms``,
    same atoms in the same order, same constraints), as :func:`rate_band` bands them.

    Each member's barrier (eV) is its energy difference between the two geometries and its
    frequencies (cm^-1) are the normal modes of its own mass-weighted Hessian there
    (:func:`atomistic.analysis.vibrations.normal_modes`, rigid-body modes projected out when
    ``project_rigid``): the harmonic expansion of every member about the committee's stationary
    points, not each member's own.
    """
    from atomistic.analysis.vibrations import normal_modes
    from atomistic.potential.forces import evaluate

    if minimum.get_chemical_symbols() != saddle.get_chemical_symbols():
        raise ValueError(f"minimum and saddle must hold the same atoms in the same order, got "
                         f"{minimum.get_chemical_formula()} and {saddle.get_chemical_formula()}")
    members = list(getattr(committee, "members", committee))
    barriers, nu_r, nu_s = [], [], []
    for member in members:
        barriers.append(float(evaluate(member, saddle).energy[0]) - float(evaluate(member, minimum).energy[0]))
        nu_r.append(normal_modes(member, minimum, project_rigid=project_rigid, device=device).frequencies_cm)
        nu_s.append(normal_modes(member, saddle, project_rigid=project_rigid, device=device).frequencies_cm)
    log.info("committee barriers (eV): %s; imaginary saddle modes (cm^-1): %s",
             " ".join(f"{b:.4f}" for b in barriers), " ".join(f"{s[0]:.1f}" for s in nu_s))
    return rate_band(temperatures_K, barriers, nu_r, nu_s, quantum=quantum, confidence=confidence)


#: the old name of :func:`rate_band` (a committee was called an ensemble)
ensemble_rate = rate_band


def _inverse_thousand(v):
    """1000 / v, for the T (K) <-> 1000/T (1/K) secondary axis (0 maps to inf, not an error)."""
    v = np.asarray(v, dtype=float)
    with np.errstate(divide="ignore"):
        return 1000.0 / v


def arrhenius_plot(path: str | Path, band: RateBand, *, title: str = "") -> Path:
    """Arrhenius plot written to ``path`` (PNG): k (1/s, log axis, i.e. ln k) against 1000/T
    (1/K; T in K on the top axis), the committee band shaded and every member as a thin line,
    each in the legend with its barrier (eV)."""
    from atomistic.plots import plt, save_png

    x = 1000.0 / band.temperatures_K
    order = np.argsort(x)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.fill_between(x[order], band.lower[order], band.upper[order], alpha=0.3, color="C0",
                    label=f"{100 * band.confidence:.0f} % band")
    for m, r in enumerate(band.member_rates):
        ax.plot(x[order], r[order], lw=0.7, color=f"C{m + 1}", alpha=0.8,
                label=f"member {m + 1} (barrier {band.member_barriers_eV[m]:.3f} eV)")
    ax.plot(x[order], band.rate[order], lw=1.6, color="C0", label="committee (geometric mean)")
    ax.set_yscale("log")
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("rate constant k (1/s)")
    top = ax.secondary_xaxis("top", functions=(_inverse_thousand, _inverse_thousand))
    top.set_xlabel("T (K)")
    ax.set_title(title or ("harmonic TST, quantum" if band.quantum else "harmonic TST, classical"))
    ax.legend(frameon=False, fontsize=7)
    return save_png(fig, path)
