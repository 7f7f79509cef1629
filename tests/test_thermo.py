"""Fluctuation formulae and their error bars on synthetic series with known answers."""

import numpy as np
import pytest
from ase import units
from scipy.signal import lfilter

from atomistic.analysis.thermo import (
    block_average,
    blocking,
    compressibility,
    fluctuation,
    heat_capacity,
    model_noise_variance,
)


def ar1(rng, n, phi, sigma, replicas=1):
    """AR(1) series with stationary standard deviation sigma and correlation phi per step."""
    x0 = rng.normal(scale=sigma, size=replicas)
    eps = rng.normal(scale=sigma * np.sqrt(1 - phi**2), size=(n, replicas))
    eps[0] = x0  # x[0] = x0, x[t] = phi x[t-1] + eps[t]
    return lfilter([1.0], [1.0, -phi], eps, axis=0)


def test_block_errors_cover_the_truth_for_correlated_series():
    """Over many seeds the true mean lies within 2 block errors about 95 % of the time, and the
    block error of a correlated series exceeds the naive one by about sqrt((1+phi)/(1-phi))."""
    hits, ratios = 0, []
    for seed in range(60):
        x = ar1(np.random.default_rng(seed), 20000, 0.9, 1.0)[:, 0]
        mean, err = block_average(x)
        hits += abs(mean) < 2 * err
        ratios.append(err / (x.std() / np.sqrt(len(x))))
    assert hits >= 50
    assert 3.0 < np.median(ratios) < 5.0  # sqrt(19) = 4.36


def test_variance_and_its_error():
    rng = np.random.default_rng(1)
    truth = 2.5**2
    z = []
    for _ in range(30):
        _, var, err = fluctuation(10.0 + ar1(rng, 4000, 0.8, 2.5, replicas=8))
        z.append((var - truth) / err)
    z = np.array(z)
    assert abs(z.mean()) < 0.6 and 0.6 < z.std() < 1.5


def test_heat_capacity_and_compressibility_units():
    """A series with var(E) = 3 N kB^2 T^2 gives Cv = 3 kB per atom; var(V) = kB T V / B gives B."""
    rng = np.random.default_rng(2)
    t, n_atoms = 300.0, 32
    sigma = np.sqrt(3 * n_atoms) * units.kB * t
    cv = heat_capacity(-100.0 + ar1(rng, 40000, 0.5, sigma, replicas=4), t, n_atoms)
    assert abs(cv.per_atom_kB - 3.0) < 4 * cv.per_atom_kB_error and cv.per_atom_kB_error < 0.05
    v0, b = 400.0, 140.0  # Å^3, GPa
    sigma_v = np.sqrt(units.kB * t * v0 / (b * units.GPa))
    kappa = compressibility(v0 + ar1(rng, 40000, 0.5, sigma_v, replicas=4), t)
    assert abs(kappa.bulk_modulus_GPa - b) < 4 * kappa.bulk_modulus_error_GPa
    assert abs(kappa.per_GPa * kappa.bulk_modulus_GPa - 1) < 1e-12


def test_model_noise_variance_ignores_offsets_and_finds_the_noise():
    rng = np.random.default_rng(3)
    signal = ar1(rng, 5000, 0.9, 1.0)[:, 0]
    m, s = 4, 0.1
    members = signal[None] + rng.normal(scale=s, size=(m, 5000)) + np.array([0.0, 1.0, -2.0, 5.0])[:, None]
    assert model_noise_variance(members) == pytest.approx(s**2 / m, rel=0.05)
    cv0 = heat_capacity(members.mean(0), 300.0, 1)
    cv1 = heat_capacity(members.mean(0), 300.0, 1, model_noise_variance=model_noise_variance(members))
    assert cv1.eV_per_K < cv0.eV_per_K


@pytest.mark.parametrize("call, match", [
    (lambda: heat_capacity(np.ones(100), -1.0, 4), "temperature_K"),
    (lambda: compressibility(np.ones(100), 0.0), "temperature_K"),
    (lambda: block_average(np.ones(10), n_blocks=20), "too few"),
    (lambda: model_noise_variance(np.ones((1, 10))), "member_energies_eV"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def ar1_standard_error(n, phi, sigma):
    """Exact standard error of the mean of n stationary AR(1) samples."""
    return sigma * np.sqrt(((1 + phi) / (1 - phi) - 2 * phi * (1 - phi**n) / (n * (1 - phi) ** 2)) / n)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_automatic_blocking_finds_the_exact_error_of_the_mean(phi):
    """Flyvbjerg–Petersen blocking with the Lee et al. block length: over many seeds the error
    matches the exact AR(1) standard error (to a few %, while a fixed 20-block estimate scatters
    by 16 %), the truth lies within 3 errors, and correlation raises the error above the naive one."""
    n, sigma = 2**14, 2.0
    exact = ar1_standard_error(n, phi, sigma)
    ratios, naive, z = [], [], []
    for seed in range(40):
        x = 5.0 + ar1(np.random.default_rng(100 + seed), n, phi, sigma)[:, 0]
        b = blocking(x)
        assert b.plateau and block_average(x, n_blocks="auto") == (b.mean, b.error)
        ratios.append(b.error / exact)
        naive.append(x.std(ddof=1) / np.sqrt(n))
        z.append(abs(b.mean - 5.0) / b.error)
    assert 0.9 < np.median(ratios) < 1.1 and np.std(ratios) < 0.12
    assert np.mean(np.array(z) < 2) > 0.85 and np.mean(np.array(z) < 3) > 0.95
    assert np.median(np.array(ratios) * exact / naive) == pytest.approx(np.sqrt((1 + phi) / (1 - phi)), rel=0.1)


def test_blocking_warns_when_the_series_is_too_short(caplog):
    x = ar1(np.random.default_rng(7), 2000, 0.999, 1.0)[:, 0]
    b = blocking(x)
    assert not b.plateau and "too short" in caplog.text
    assert b.error < ar1_standard_error(2000, 0.999, 1.0)  # an underestimate, as the warning says


def test_heat_capacity_with_committee_noise_recovers_the_true_value():
    """Committee-mean energies = true energies (var 3 N kB^2 T^2) + the mean of four correlated
    member errors: with the noise variance subtracted, Cv = 3 kB per atom within 3 errors for
    every seed; without, the excess s^2 / M is detected (more than 3 errors off)."""
    t, n_atoms, m, s = 300.0, 32, 4, 0.2
    sigma = np.sqrt(3 * n_atoms) * units.kB * t  # eV
    for seed in range(5):
        rng = np.random.default_rng(200 + seed)
        true = -120.0 + ar1(rng, 2**15, 0.9, sigma)[:, 0]
        members = true[None] + ar1(rng, 2**15, 0.9, s, replicas=m).T + np.array([0.0, 0.3, -0.2, 1.0])[:, None]
        noise = model_noise_variance(members)
        assert noise == pytest.approx(s**2 / m, rel=0.15)
        for n_blocks in (20, "auto"):
            cv = heat_capacity(members.mean(0), t, n_atoms, model_noise_variance=noise, n_blocks=n_blocks)
            assert abs(cv.per_atom_kB - 3.0) < 3 * cv.per_atom_kB_error
            assert cv.eV_per_K == pytest.approx(cv.per_atom_kB * n_atoms * units.kB, rel=1e-12)
            raw = heat_capacity(members.mean(0), t, n_atoms, n_blocks=n_blocks)
            assert raw.per_atom_kB - 3.0 > 3 * raw.per_atom_kB_error
        # the variance's error of a correlated series exceeds the white-noise one, sqrt(2/(n-1)) var
        naive = np.sqrt(2 / (2**15 - 1)) * sigma**2 / (units.kB * t**2 * n_atoms * units.kB)
        assert cv.per_atom_kB_error > 2 * naive


def test_compressibility_with_automatic_blocks():
    """var(V) = kB T <V> / B for B = 140 GPa: recovered within 3 errors with ``n_blocks="auto"``;
    the units chain Å^3, eV, GPa checked by hand for one number."""
    t, v0, b = 500.0, 1000.0, 140.0
    sigma_v = np.sqrt(units.kB * t * v0 / (b * units.GPa))
    kappa = compressibility(v0 + ar1(np.random.default_rng(9), 2**15, 0.8, sigma_v), t, n_blocks="auto")
    assert abs(kappa.bulk_modulus_GPa - b) < 3 * kappa.bulk_modulus_error_GPa
    # by hand: kB T = 0.0430867 eV at 500 K; 1 eV/Å^3 = 160.2177 GPa
    sigma_hand = np.sqrt(8.617333e-5 * 500.0 * 1000.0 / (140.0 / 160.21766))
    assert sigma_v == pytest.approx(sigma_hand, rel=1e-5)
    with pytest.raises(ValueError, match="n_blocks"):
        compressibility(np.ones(100), t, n_blocks="many")
