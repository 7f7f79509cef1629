"""Thermodynamics from fluctuations, with honest error bars (DESIGN §3).

heat capacity      Cv = (var(E) - var_model) / (kB T^2)          eV/K (NVT total energies)
model noise        var_model from a committee's member energies along the trajectory, eV^2
compressibility    kappa_T = var(V) / (kB T <V>)                 1/GPa (NPT volumes), B = 1/kappa_T

Samples are time series, one column per replica of the same system: ``(n_samples,)`` or
``(n_samples, n_replicas)``. Error bars come from block averages over time (blocks much longer
than the correlation time are independent), so correlated series get the larger, right errors.
``n_blocks`` is either a fixed number of blocks or ``"auto"``: the Flyvbjerg–Petersen blocking
transformation (J. Chem. Phys. 91, 461, 1989) with the block length chosen by the criterion of
Lee et al. (Phys. Rev. E 83, 066706, 2011), see :func:`blocking`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from ase import Atoms, units

from atomistic.potential.committee import Committee, evaluate_committee

log = logging.getLogger(__name__)


def _columns(samples) -> np.ndarray:
    x = np.asarray(samples, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"samples must be (n_samples,) or (n_samples, n_replicas), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("samples contain NaN or infinite values")
    return x


@dataclass(frozen=True)
class Blocking:
    """Flyvbjerg–Petersen blocking analysis of one time series (units of the series).

    mean; error: standard error of the mean at the chosen level; level: halvings applied there;
    block_length: samples per block there (2**level); errors (n_levels,): the standard error
    estimated at every level (it grows with the level until the blocks decorrelate, then
    plateaus); plateau: False when no level met the block-length criterion of :func:`blocking`
    (the series is too short for its correlation time and ``error`` is that of the last level,
    likely an underestimate).
    """

    mean: float
    error: float
    level: int
    block_length: int
    errors: np.ndarray
    plateau: bool


def blocking(series, *, min_blocks: int = 16) -> Blocking:
    """Standard error of the mean of a correlated series by the blocking transformation.

    The series is halved repeatedly (neighbouring samples averaged; an odd sample dropped at
    the start) while at least ``min_blocks`` blocks remain; level ``k`` (blocks of ``B = 2**k``
    samples) estimates the standard error as ``s_k = sqrt(c0_k / (n_k - 1))``. The chosen level
    is the first with ``B^3 > 2 n (s_k / s_0)^4`` (Lee, Booth, Drummond and Needs, Phys. Rev. E
    83, 066706, 2011, as in pyblock): blocks are then long enough that the residual correlation
    biases the error by less than its own statistical noise. If no level qualifies, the last
    one is used, ``plateau`` is False and a warning is logged.
    """
    x = np.asarray(series, dtype=float).ravel()
    if min_blocks < 4:
        raise ValueError(f"min_blocks must be >= 4, got {min_blocks}")
    if len(x) < min_blocks:
        raise ValueError(f"blocking: {len(x)} samples are too few (min_blocks = {min_blocks})")
    if not np.isfinite(x).all():
        raise ValueError("blocking: the series contains NaN or infinite values")
    n, mean = len(x), float(x.mean())
    errors = []
    while len(x) >= min_blocks:
        d = x - x.mean()
        errors.append(np.sqrt(float(d @ d) / len(x) / (len(x) - 1)))
        x = x[len(x) % 2:]
        x = 0.5 * (x[0::2] + x[1::2])
    errors = np.asarray(errors)
    ratio4 = (errors / errors[0]) ** 4 if errors[0] > 0 else np.zeros_like(errors)
    ok = np.flatnonzero((2.0 ** np.arange(len(errors))) ** 3 > 2 * n * ratio4)
    plateau = len(ok) > 0
    level = int(ok[0]) if plateau else len(errors) - 1
    if not plateau:
        log.warning("blocking: no converged block length in %d levels (%d samples): the series is too "
                    "short for its correlation time, the error %.3g is likely an underestimate",
                    len(errors), n, errors[-1])
    return Blocking(mean, float(errors[level]), level, 2**level, errors, plateau)


def block_average(series, n_blocks: int | str = 20) -> tuple[float, float]:
    """Mean of a time series and its standard error (units of the series).

    ``n_blocks``: the number of consecutive blocks (the series is trimmed at the start to a
    multiple of the block length; at least 2 samples per block), or ``"auto"`` for the
    automatic blocking analysis of :func:`blocking`.
    """
    x = np.asarray(series, dtype=float).ravel()
    if isinstance(n_blocks, str):
        if n_blocks != "auto":
            raise ValueError(f"n_blocks must be an integer >= 2 or 'auto', got {n_blocks!r}")
        b = blocking(x)
        return b.mean, b.error
    if n_blocks < 2:
        raise ValueError(f"n_blocks must be >= 2, got {n_blocks}")
    length = len(x) // n_blocks
    if length < 2:
        raise ValueError(f"block_average: {len(x)} samples are too few for {n_blocks} blocks")
    blocks = x[len(x) - length * n_blocks:].reshape(n_blocks, length).mean(1)
    return float(blocks.mean()), float(blocks.std(ddof=1) / np.sqrt(n_blocks))


def fluctuation(samples, n_blocks: int | str = 20) -> tuple[float, float, float]:
    """Mean, variance and the variance's standard error of replica time series (units of the
    samples and their square).

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
                  n_blocks: int | str = 20) -> HeatCapacity:
    """Cv = (var(E) - model_noise_variance) / (kB T^2) from canonical (NVT) total energies.

    ``total_energies_eV``: (n_samples,) or (n_samples, n_replicas), kinetic + potential, eV;
    ``n_atoms``: atoms per replica; ``model_noise_variance``: eV^2, see :func:`model_noise_variance`;
    ``n_blocks``: blocks for the error of var(E), or "auto" (:func:`block_average`).
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


def trajectory_model_noise(committee: Committee, frames: Sequence[Atoms], *, device: str | torch.device | None,
                           dtype: torch.dtype | None, batch: int = 64) -> float:
    """:func:`model_noise_variance` (eV^2) of ``committee`` on the trajectory ``frames`` (ASE
    ``Atoms``, at least 2; pick the equilibrated ones first), evaluated ``batch`` frames at a time
    on ``device`` in ``dtype`` (None: the committee's own)."""
    if not frames:
        raise ValueError("trajectory_model_noise needs trajectory frames, got none")
    members = []
    for k in range(0, len(frames), batch):
        p = evaluate_committee(committee, frames[k:k + batch], device=device, dtype=dtype)
        members.append(p.member_energy.detach().cpu().numpy())
    return model_noise_variance(np.concatenate(members, axis=1))


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


def compressibility(volumes_A3, temperature_K: float, *, n_blocks: int | str = 20) -> Compressibility:
    """kappa_T = var(V) / (kB T <V>) from isothermal-isobaric (NPT) volumes, Å^3, with its
    error (``n_blocks``: blocks, or "auto", as in :func:`block_average`); 1/GPa and B in GPa."""
    if not temperature_K > 0:
        raise ValueError(f"temperature_K must be > 0, got {temperature_K}")
    mean, var, err = fluctuation(volumes_A3, n_blocks)
    kt_v = units.kB * temperature_K * mean  # eV
    kappa = var / kt_v * units.GPa  # Å^3/eV -> 1/GPa
    kappa_err = err / kt_v * units.GPa
    return Compressibility(kappa, kappa_err, 1.0 / kappa, kappa_err / kappa**2, mean, float(temperature_K))
