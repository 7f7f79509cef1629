"""Thermodynamics from fluctuations, with honest error bars (DESIGN §3).

heat capacity      Cv = (var(E) - var_model) / (kB T^2)          eV/K (NVT total energies)
compressibility    kappa_T = var(V) / (kB T <V>)                 1/GPa (NPT volumes), B = 1/kappa_T

Samples are time series, one column per replica of the same system: ``(n_samples,)`` or
``(n_samples, n_replicas)``. Error bars come from block averages over time (blocks much longer
than the correlation time are independent), so correlated series get the larger, right errors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from ase import units


def _columns(samples) -> np.ndarray:
    x = np.asarray(samples, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"samples must be (n_samples,) or (n_samples, n_replicas), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("samples contain NaN or infinite values")
    return x


def block_average(series, n_blocks: int = 20) -> tuple[float, float]:
    """Mean of a time series and its standard error from ``n_blocks`` consecutive blocks.

    The series is trimmed at the start to a multiple of the block length. Needs at least
    2 samples per block.
    """
    x = np.asarray(series, dtype=float).ravel()
    if n_blocks < 2:
        raise ValueError(f"n_blocks must be >= 2, got {n_blocks}")
    length = len(x) // n_blocks
    if length < 2:
        raise ValueError(f"block_average: {len(x)} samples are too few for {n_blocks} blocks")
    blocks = x[len(x) - length * n_blocks:].reshape(n_blocks, length).mean(1)
    return float(blocks.mean()), float(blocks.std(ddof=1) / np.sqrt(n_blocks))


def fluctuation(samples, n_blocks: int = 20) -> tuple[float, float, float]:
    """Mean, variance and the variance's standard error of replica time series.

    Replicas are copies of one system: the variance is pooled over them around the common mean,
    and its error comes from blocks of the replica-averaged squared deviations.
    """
    x = _columns(samples)
    mean = float(x.mean())
    squares = ((x - mean) ** 2).mean(1) * x.size / max(x.size - 1, 1)  # unbiased about the pooled mean
    var, err = block_average(squares, n_blocks)
    return mean, var, err


@dataclass(frozen=True)
class HeatCapacity:
    """Cv of the simulated system: ``eV_per_K`` (whole system) and ``per_atom_kB`` (in units of
    kB per atom, 3 for a classical harmonic solid), each with a standard error;
    ``model_noise_variance_eV2``: what was subtracted from var(E)."""

    eV_per_K: float
    eV_per_K_error: float
    per_atom_kB: float
    per_atom_kB_error: float
    temperature_K: float
    model_noise_variance_eV2: float

    def as_dict(self) -> dict:
        return asdict(self)


def heat_capacity(total_energies_eV, temperature_K: float, n_atoms: int, *, model_noise_variance: float = 0.0,
                  n_blocks: int = 20) -> HeatCapacity:
    """Cv = (var(E) - model_noise_variance) / (kB T^2) from canonical (NVT) total energies.

    ``total_energies_eV``: (n_samples,) or (n_samples, n_replicas), kinetic + potential, eV;
    ``n_atoms``: atoms per replica; ``model_noise_variance``: eV^2, see :func:`model_noise_variance`.
    """
    if not temperature_K > 0:
        raise ValueError(f"temperature_K must be > 0, got {temperature_K}")
    if n_atoms < 1:
        raise ValueError(f"n_atoms must be >= 1, got {n_atoms}")
    if model_noise_variance < 0:
        raise ValueError(f"model_noise_variance must be >= 0 eV^2, got {model_noise_variance}")
    _, var, err = fluctuation(total_energies_eV, n_blocks)
    kt2 = units.kB * temperature_K**2
    cv, cv_err = (var - model_noise_variance) / kt2, err / kt2
    per_atom = 1.0 / (n_atoms * units.kB)
    return HeatCapacity(cv, cv_err, cv * per_atom, cv_err * per_atom, float(temperature_K), float(model_noise_variance))


def model_noise_variance(member_energies_eV) -> float:
    """Variance (eV^2) that committee disagreement adds to the fluctuations of the committee-mean
    energy along a trajectory.

    ``member_energies_eV``: (M, n_samples), each member's energy at the same sampled
    configurations. If member errors fluctuate independently with equal variance s^2, each
    member's deviation from the mean, d_m(t) = E_m(t) - mean_m E_m(t), fluctuates with variance
    s^2 (1 - 1/M), and the mean's error with s^2 / M; so the result is
    mean_m var_t(d_m) / (M - 1). Constant offsets between members do not count.
    """
    e = np.asarray(member_energies_eV, dtype=float)
    if e.ndim != 2 or e.shape[0] < 2 or e.shape[1] < 2:
        raise ValueError(f"member_energies_eV must be (M >= 2, n_samples >= 2), got shape {e.shape}")
    d = e - e.mean(0, keepdims=True)
    return float(d.var(axis=1, ddof=1).mean() / (e.shape[0] - 1))


@dataclass(frozen=True)
class Compressibility:
    """Isothermal compressibility ``per_GPa`` and the bulk modulus it implies, ``bulk_modulus_GPa``,
    with standard errors; ``mean_volume_A3`` per replica."""

    per_GPa: float
    per_GPa_error: float
    bulk_modulus_GPa: float
    bulk_modulus_error_GPa: float
    mean_volume_A3: float
    temperature_K: float

    def as_dict(self) -> dict:
        return asdict(self)


def compressibility(volumes_A3, temperature_K: float, *, n_blocks: int = 20) -> Compressibility:
    """kappa_T = var(V) / (kB T <V>) from isothermal-isobaric (NPT) volumes, Å^3."""
    if not temperature_K > 0:
        raise ValueError(f"temperature_K must be > 0, got {temperature_K}")
    mean, var, err = fluctuation(volumes_A3, n_blocks)
    kt_v = units.kB * temperature_K * mean  # eV
    kappa = var / kt_v * units.GPa  # Å^3/eV -> 1/GPa
    kappa_err = err / kt_v * units.GPa
    return Compressibility(kappa, kappa_err, 1.0 / kappa, kappa_err / kappa**2, mean, float(temperature_K))
