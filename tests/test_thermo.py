"""Fluctuation formulae and their error bars on synthetic series with known answers."""

import numpy as np
import pytest
from ase import units

from atomistic.thermo import block_average, compressibility, fluctuation, heat_capacity, model_noise_variance


def ar1(rng, n, phi, sigma, replicas=1):
    """AR(1) series with stationary standard deviation sigma and correlation phi per step."""
    x = np.empty((n, replicas))
    x[0] = rng.normal(scale=sigma, size=replicas)
    eps = rng.normal(scale=sigma * np.sqrt(1 - phi**2), size=(n, replicas))
    for t in range(1, n):
        x[t] = phi * x[t - 1] + eps[t]
    return x


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
        mean, var, err = fluctuation(10.0 + ar1(rng, 4000, 0.8, 2.5, replicas=8))
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
