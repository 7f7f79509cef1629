"""Rates on analytic surfaces exposed through the model interface (issue 3, item 5): harmonic
TST against the analytic harmonic rate, Langevin MD escape rates against Kramers, committee bands."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from scipy import optimize

from atomistic.analytic import DoubleWell, MuellerBrown
from atomistic.forces import hessian, predict
from atomistic.md import MDSettings, MolecularDynamics, Safety, Thermostat
from atomistic.neighbors import build_neighbors
from atomistic.rates import arrhenius_plot, ensemble_rate, htst_rate
from atomistic.structure import from_atoms
from atomistic.vibrations import normal_modes

CM = 1e15 * units.fs / (2 * np.pi * 2.99792458e10)  # sqrt(eV/Å^2/amu) -> cm^-1, written out again here


def particle(x, y=0.0, z=0.0, symbol="H"):
    return Atoms(symbol, positions=[[x, y, z]])


def test_analytic_surfaces_forces_and_hessians_through_the_model_interface():
    dw = DoubleWell(0.2, 1.3, 0.7)
    atoms = Atoms("Ar2", positions=[[0.4, 0.1, -0.2], [-1.1, 0.3, 0.05]])
    s = from_atoms(atoms, dw.species)
    nbrs = build_neighbors(s, dw.cutoff)
    p = predict(dw, s, nbrs)
    x = atoms.positions
    fx = -dw.barrier_eV * 2 * (x[:, 0] ** 2 / 1.3**2 - 1) * 2 * x[:, 0] / 1.3**2
    assert np.allclose(p.forces[:, 0].numpy(), fx, atol=1e-12)
    assert np.allclose(p.forces[:, 1:].numpy(), -0.7 * x[:, 1:], atol=1e-12)
    h = hessian(dw, s, nbrs).numpy()
    assert h[0, 0] == pytest.approx(dw.barrier_eV * (12 * x[0, 0] ** 2 / 1.3**4 - 4 / 1.3**2))
    assert dw.curvature_minimum == pytest.approx(8 * 0.2 / 1.3**2) and dw.curvature_saddle < 0
    assert abs(h[0, 3]) < 1e-14  # independent particles


MB = MuellerBrown(energy_eV=0.002, length_A=1.0, k_z_eV_A2=1.0, symbol="H")


def mb_numpy(xy, mb=MB):
    x, y = xy[0] / mb.length_A, xy[1] / mb.length_A
    return mb.energy_eV * sum(A * np.exp(a * (x - x0) ** 2 + b * (x - x0) * (y - y0) + c * (y - y0) ** 2)
                              for A, a, b, c, x0, y0 in zip(mb.A, mb.a, mb.b, mb.c, mb.x0, mb.y0))


def fd_hessian(f, p, h=1e-4):
    out = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            e = np.eye(2)
            out[i, j] = (f(p + h * e[i] + h * e[j]) - f(p + h * e[i] - h * e[j]) - f(p - h * e[i] + h * e[j])
                         + f(p - h * e[i] - h * e[j])) / (4 * h * h)
    return out


def test_htst_matches_the_analytic_harmonic_rate():
    """Double well and Müller–Brown: frequencies from our autograd Hessian equal the analytic
    curvatures, and htst_rate equals Vineyard's formula written out from them, to 1e-6 (the
    issue asks for 1 %)."""
    t = np.array([200.0, 300.0, 600.0])
    dw = DoubleWell(0.25, 1.0, 2.0, symbol="H")
    m = particle(0.0).get_masses()[0]
    nu = lambda k: np.sqrt(k / m) * units.fs * 1e15 / (2 * np.pi)  # Hz  # noqa: E731
    minimum = normal_modes(dw, particle(1.0), project_rigid=False)
    saddle = normal_modes(dw, particle(0.0), project_rigid=False)
    assert np.sort(minimum.frequencies_cm) == pytest.approx(np.sort(
        [np.sqrt(dw.curvature_minimum / m) * CM, np.sqrt(2.0 / m) * CM, np.sqrt(2.0 / m) * CM]), rel=1e-10)
    assert saddle.frequencies_cm.min() == pytest.approx(-np.sqrt(-dw.curvature_saddle / m) * CM, rel=1e-10)
    analytic = nu(dw.curvature_minimum) * np.exp(-0.25 / (units.kB * t))  # the y, z modes cancel
    ours = htst_rate(t, 0.25, minimum.frequencies_cm, saddle.frequencies_cm)
    assert ours == pytest.approx(analytic, rel=1e-6)

    mb = MB
    r = optimize.minimize(mb_numpy, [-0.56, 1.44], tol=1e-12).x
    s = optimize.root(lambda p: optimize.approx_fprime(p, mb_numpy, 1e-7), [-0.82, 0.62], tol=1e-12).x
    kr, ks = np.linalg.eigvalsh(fd_hessian(mb_numpy, r)), np.linalg.eigvalsh(fd_hessian(mb_numpy, s))
    assert kr.min() > 0 and ks[0] < 0 < ks[1]
    barrier = mb_numpy(s) - mb_numpy(r)
    vineyard = nu(kr[0]) * nu(kr[1]) / nu(ks[1]) * np.exp(-barrier / (units.kB * t))
    modes_r = normal_modes(mb, particle(*r), project_rigid=False)
    modes_s = normal_modes(mb, particle(*s), project_rigid=False)
    assert modes_s.n_imaginary() == 1 and modes_r.n_imaginary() == 0
    ours = htst_rate(t, barrier, modes_r.frequencies_cm, modes_s.frequencies_cm)
    assert ours == pytest.approx(vineyard, rel=1e-3)  # finite-difference curvatures in the reference


def test_quantum_partition_functions():
    """Quantum HTST tends to classical at high T; at low T it equals the classical rate with the
    barrier shifted by the change in zero-point energy, times the ratio of the quantum oscillator
    sums (exactly, written out)."""
    nu_r, nu_s = np.array([300.0, 500.0, 800.0]), np.array([-400.0, 450.0, 700.0])
    barrier = 0.3
    hot = np.array([20000.0])
    assert htst_rate(hot, barrier, nu_r, nu_s, quantum=True) == pytest.approx(htst_rate(hot, barrier, nu_r, nu_s), rel=2e-3)
    t = np.array([100.0])
    h_c = units._hplanck / units._e * units._c * 100  # eV cm
    zpe = 0.5 * h_c * (nu_s[1:].sum() - nu_r.sum())
    kt = units.kB * t
    expected = (kt / (h_c / units._c / 100)) * np.exp(-(barrier + zpe) / kt) * np.prod(
        1 / (1 - np.exp(-h_c * nu_s[1:] / kt))) / np.prod(1 / (1 - np.exp(-h_c * nu_r / kt)))
    assert htst_rate(t, barrier, nu_r, nu_s, quantum=True) == pytest.approx(expected, rel=1e-10)
    assert htst_rate(t, barrier, nu_r, nu_s, quantum=True) > htst_rate(t, barrier, nu_r, nu_s)  # ZPE lowers it here


def test_committee_band(tmp_path):
    rng = np.random.default_rng(0)
    t = np.linspace(250, 800, 12)
    nu_r, nu_s = np.array([300.0, 500.0, 800.0]), np.array([-400.0, 450.0, 700.0])
    truth = htst_rate(t, 0.4, nu_r, nu_s)
    barriers = 0.4 + rng.normal(scale=0.01, size=8)
    band = ensemble_rate(t, barriers, [nu_r * (1 + rng.normal(scale=0.01)) for _ in range(8)], [nu_s] * 8)
    assert ((band.lower < truth) & (truth < band.upper)).all()
    assert (band.upper / band.lower > 1.2).all()
    same = ensemble_rate(t, [0.4] * 4, [nu_r] * 4, [nu_s] * 4)
    assert same.upper == pytest.approx(same.lower, rel=1e-12) and same.rate == pytest.approx(truth, rel=1e-12)
    assert arrhenius_plot(tmp_path / "arrhenius.png", band).stat().st_size > 1000


@pytest.mark.parametrize("call, match", [
    (lambda: htst_rate(-5.0, 0.1, [100.0], [-50.0]), "temperature_K"),
    (lambda: htst_rate(300.0, 0.1, [100.0, 200.0], [50.0, 60.0]), "exactly one imaginary"),
    (lambda: htst_rate(300.0, 0.1, [100.0, -200.0], [-50.0, 60.0]), "minimum_frequencies_cm"),
    (lambda: htst_rate(300.0, 0.1, [100.0, 200.0, 300.0], [-50.0]), "expected 3"),
    (lambda: ensemble_rate(300.0, [0.1], [[100.0]], [[-50.0]]), ">= 2 members"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("friction", [10.0, 3.0])
def test_langevin_escape_rate_matches_kramers(friction):
    """4000 independent particles (batched one-atom structures) in a double well with
    V0 = 5 kB T, BAOAB Langevin at gamma = friction x omega_b: the rate of transitions between the
    committed regions |x| > b/2 equals Kramers' k = (omega_0 / 2 pi omega_b)
    (sqrt(gamma^2/4 + omega_b^2) - gamma/2) exp(-V0 / kB T) within 3.5 standard errors."""
    v0, b = 0.1, 1.0
    dw = DoubleWell(v0, b, 1.0, symbol="H")
    t = v0 / (5 * units.kB)
    m = particle(0.0).get_masses()[0]
    w0 = np.sqrt(dw.curvature_minimum / m) * units.fs  # rad/fs
    wb = np.sqrt(-dw.curvature_saddle / m) * units.fs
    gamma = friction * wb
    dt = 2 * np.pi / w0 / 40
    rng = np.random.default_rng(1)
    frames = [particle(b * rng.choice([-1.0, 1.0])) for _ in range(4000)]
    s = MDSettings(ensemble="nvt", steps=8000, timestep_fs=dt, thermostat=Thermostat("langevin", t, 1 / gamma),
                   log_every=0, trajectory_every=0, checkpoint_every=0, check_every=5, skin_A=10.0, seed=2,
                   safety=Safety(min_distance_A=1e-6))
    md = MolecularDynamics(dw, frames, s)
    side = np.sign(md.state.positions[:, 0].cpu().numpy())
    transitions = 0
    for state in md.irun():
        x = state.positions[:, 0].cpu().numpy()
        new = np.where(x > 0.5 * b, 1.0, np.where(x < -0.5 * b, -1.0, side))
        transitions += int((new != side).sum())
        side = new
    rate = transitions / (len(frames) * s.steps * dt)  # 1/fs
    err = rate / np.sqrt(transitions)
    kramers = w0 / (2 * np.pi * wb) * (np.sqrt(gamma**2 / 4 + wb**2) - gamma / 2) * np.exp(-5.0)
    tst = w0 / (2 * np.pi) * np.exp(-5.0)
    assert transitions > 300
    assert abs(rate - kramers) < 3.5 * err, (rate, err, kramers)
    assert rate < tst
