"""DESIGN V12, first half: the adiabatic code path (autograd of the diabatic matrix) against
closed forms on analytic two- and three-state models, phase-free, float64; and finite answers
at a conical intersection."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from atomistic.multistate import (
    ConicalIntersection,
    ThreeState,
    TullyDual,
    TullyExtended,
    TullySimple,
    adiabatic_states,
)


def line(xs):
    """(B, 1, 3) positions along x, Å."""
    pos = torch.zeros(len(xs), 1, 3, dtype=torch.float64)
    pos[:, 0, 0] = torch.as_tensor(xs, dtype=torch.float64)
    return pos


def two_state_closed_form(h, dh):
    """E-/E+ (B, 2), dE/dx (B, 2) and |d_12| (B,) of 2x2 matrices h and their derivatives dh."""
    mean, dmean = 0.5 * (h[:, 0, 0] + h[:, 1, 1]), 0.5 * (dh[:, 0, 0] + dh[:, 1, 1])
    delta, ddelta = 0.5 * (h[:, 0, 0] - h[:, 1, 1]), 0.5 * (dh[:, 0, 0] - dh[:, 1, 1])
    v, dv = h[:, 0, 1], dh[:, 0, 1]
    root = torch.sqrt(delta**2 + v**2)
    energies = torch.stack([mean - root, mean + root], 1)
    slopes = torch.stack([dmean - (delta * ddelta + v * dv) / root, dmean + (delta * ddelta + v * dv) / root], 1)
    nac = (delta * dv - v * ddelta).abs() / (2 * root**2)
    return energies, slopes, nac


@pytest.mark.parametrize("model", [TullySimple(), TullyDual(), TullyExtended()], ids=lambda m: type(m).__name__)
def test_tully_models_match_the_closed_form(model):
    pos = line(np.linspace(-10.0, 10.0, 81) * 0.529177)  # -10..10 bohr, x = 0 (where the models switch form) included
    states = adiabatic_states(model, pos)
    energies, slopes, nac = two_state_closed_form(model.diabatic(pos), model.diabatic_derivative(pos))
    scale = energies.abs().max()
    assert torch.allclose(states.energies, energies, atol=1e-8 * scale, rtol=0)
    assert torch.allclose(-states.forces[:, :, 0, 0], slopes, atol=1e-8 * slopes.abs().max(), rtol=0)
    d = states.couplings[:, 0, 1, 0, 0]
    assert torch.allclose(d.abs(), nac, atol=1e-8 * nac.max(), rtol=1e-8)
    assert torch.equal(states.couplings[:, 1, 0], -states.couplings[:, 0, 1])
    assert torch.all(states.forces[:, :, 0, 1:] == 0)


def test_three_states_match_the_hand_derived_gradient():
    model = ThreeState()
    pos = line(np.linspace(-6.0, 6.0, 61) * 0.529177)
    states = adiabatic_states(model, pos)
    h, dh = model.diabatic(pos), model.diabatic_derivative(pos)
    energies, c = torch.linalg.eigh(h)
    g = torch.einsum("bik,bij,bjl->bkl", c, dh, c)
    assert torch.allclose(states.energies, energies, atol=1e-12, rtol=0)
    assert torch.allclose(-states.forces[:, :, 0, 0], torch.diagonal(g, dim1=1, dim2=2), atol=1e-10, rtol=0)
    gap = energies[:, None, :] - energies[:, :, None]
    off = ~torch.eye(3, dtype=torch.bool)
    ref = torch.where(off, g / torch.where(off, gap, torch.ones_like(gap)), torch.zeros_like(g))
    # phase-free: each eigenvector's sign is arbitrary, so compare magnitudes
    assert torch.allclose(states.couplings[..., 0, 0].abs(), ref.abs(), atol=1e-8 * ref.abs().max(), rtol=1e-8)


def test_conical_intersection_couplings_and_a_safe_degeneracy(caplog):
    model = ConicalIntersection()
    rng = np.random.default_rng(0)
    pos = torch.zeros(40, 1, 3, dtype=torch.float64)
    pos[:, 0, :2] = torch.as_tensor(rng.uniform(-1.0, 1.0, size=(40, 2)))
    states = adiabatic_states(model, pos)
    h = model.diabatic(pos)
    ddx, ddy = model.diabatic_gradient_xy(pos)
    for axis, dh in ((0, ddx), (1, ddy)):
        energies, slopes, nac = two_state_closed_form(h, dh)
        assert torch.allclose(-states.forces[:, :, 0, axis], slopes, atol=1e-10, rtol=0)
        assert torch.allclose(states.couplings[:, 0, 1, 0, axis].abs(), nac, atol=1e-8 * nac.max(), rtol=1e-8)
    # the coupling circulates around the cone: |d| ~ 1/r, and it is a vector field, sign-free
    with caplog.at_level(logging.WARNING, logger="atomistic.multistate.adiabatic"):
        at_cone = adiabatic_states(model, torch.zeros(1, 1, 3, dtype=torch.float64))
    assert "degeneracy" in caplog.text
    for t in (at_cone.energies, at_cone.forces, at_cone.couplings):
        assert torch.isfinite(t).all()
    assert at_cone.min_gap.item() == 0.0


# --- surface hopping ---------------------------------------------------------------------------
BOHR_A = 0.529177210903


def test_fssh_straight_through_a_conical_intersection_stays_finite_and_says_so(caplog):
    """Trajectories aimed exactly at the cone's apex (y = 0): the gap closes to zero on the way,
    the run warns at its records (it never synchronises inside a step), and nothing turns NaN."""
    from atomistic.multistate import FSSHSettings, SurfaceHopping

    pos = torch.zeros(16, 1, 3, dtype=torch.float64)
    pos[:, 0, 0] = -0.6
    pos[8:, 0, 1] = torch.linspace(-0.01, 0.01, 8, dtype=torch.float64)  # half of them just off the apex
    mom = torch.zeros_like(pos)
    mom[:, 0, 0] = 0.5  # amu Å/fs
    # the couplings are regularised within degeneracy_eV: with 0.05 eV every trajectory passes
    # at least one step inside that band (steps of ~0.05 Å, gap = 2 a |x| = |x| eV/Å on the axis)
    run = SurfaceHopping.start(ConicalIntersection(), pos, mom, [1.0], 0,
                               FSSHSettings(timestep_fs=0.1, seed=3, degeneracy_eV=0.05))
    e0 = run.total_energy()
    with caplog.at_level(logging.WARNING, logger="atomistic.multistate.fssh"):
        history = run.run(120, record_every=10)
    assert "degeneracy" in caplog.text and int(run.near_degenerate) > 0
    assert float(run.positions[:, 0, 0].min()) > 0.5  # every trajectory went through
    for t in (run.positions, run.momenta, run.amplitudes, run.states.couplings):
        assert torch.isfinite(t).all()
    assert torch.allclose((run.amplitudes.abs() ** 2).sum(1), torch.ones(16, dtype=torch.float64), atol=1e-10)
    # Verlet across the cusp (the force jumps by 2a = 1 eV/Å there): measured 0.024 eV of 12.8 eV
    assert float((run.total_energy() - e0).abs().max()) < 0.05
    assert len(history["accepted"]) == len(history["time_fs"])


def tully_run(model, k_au, n_traj=400, settings=None, x0_bohr=-10.0, x_end_bohr=10.0):
    """Trajectories from x0 with momentum k (a.u.) on the lower state, until every one has left
    [x0, x_end]; returns the hopping object and the largest total-energy change (eV)."""
    from atomistic.multistate import AU_MOMENTUM, TULLY_MASS_AMU, FSSHSettings, SurfaceHopping

    pos = torch.zeros(n_traj, 1, 3, dtype=torch.float64)
    pos[:, 0, 0] = x0_bohr * BOHR_A
    mom = torch.zeros_like(pos)
    mom[:, 0, 0] = k_au * AU_MOMENTUM
    run = SurfaceHopping.start(model, pos, mom, [TULLY_MASS_AMU], 0, settings or FSSHSettings(timestep_fs=0.1))
    e0 = run.total_energy()
    drift = 0.0
    norm = 0.0
    inside = torch.ones(n_traj, dtype=torch.bool)
    while bool(inside.any()) and run.time_fs < 5000:
        run.step()
        drift = max(drift, float((run.total_energy() - e0).abs().max()))
        norm = max(norm, float(((run.amplitudes.abs() ** 2).sum(1) - 1).abs().max()))
        x = run.positions[:, 0, 0] / BOHR_A
        inside = (x > x0_bohr - 1e-9) & (x < x_end_bohr)
    return run, drift, norm


def test_fssh_conserves_energy_and_norm_and_hops_only_when_allowed():
    from atomistic.multistate import FSSHSettings

    model = TullySimple()
    fast, drift, norm = tully_run(model, 25.0)
    assert drift < 1e-3, drift  # eV, of 4.25 eV kinetic energy, hops included
    assert norm < 1e-10
    coarse, drift_coarse, _ = tully_run(model, 25.0, n_traj=50, settings=FSSHSettings(timestep_fs=0.2))
    assert drift_coarse / drift > 3.0  # velocity Verlet's dt^2: the error is the integrator's, not the hops'
    assert fast.hops.accepted.sum() > 0
    slow, drift_slow, _ = tully_run(model, 5.0, n_traj=100)  # k^2/2M = 0.17 eV < 0.54 eV gap
    assert drift_slow < 1e-3
    surface, _ = slow.populations()
    assert surface[1] == 0  # the upper state is closed: every hop up is frustrated
    assert slow.hops.accepted[0, 1] == 0 and slow.hops.frustrated[0, 1] > 0


def test_fssh_is_internally_consistent():
    """Tully's design property: where no hop is frustrated, the fraction of trajectories on a
    state equals the mean |c_k|^2, within binomial error."""
    run, _, _ = tully_run(TullySimple(), 25.0, n_traj=800)
    surface, electronic = run.populations()
    sigma = float(torch.sqrt(electronic[1] * (1 - electronic[1]) / 800))
    assert run.hops.frustrated.sum() == 0
    assert abs(float(surface[1] - electronic[1])) < 3.5 * sigma + 1e-3, (surface, electronic)


def test_decoherence_collapses_the_amplitudes_onto_the_active_state():
    from atomistic.multistate import FSSHSettings

    run, drift, norm = tully_run(TullySimple(), 25.0, n_traj=200,
                                 settings=FSSHSettings(timestep_fs=0.1, decoherence="edc"))
    assert norm < 1e-10 and drift < 1e-3
    t = torch.arange(200)
    assert float((run.amplitudes[t, run.active].abs() ** 2).min()) > 0.99


# --- a trained multi-state model ---------------------------------------------------------------
def diatomic_geometries(r, seed):
    """Diatomics of bond lengths ``r`` (Å), randomly oriented and placed: (F, 2, 3)."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(len(r), 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    c = rng.normal(scale=2.0, size=(len(r), 3))
    return np.stack([c, c + np.asarray(r)[:, None] * u], 1)


def test_diatomic_crossing_matches_its_closed_form():
    from atomistic.multistate import DiatomicCrossing

    model = DiatomicCrossing()
    pos = torch.as_tensor(diatomic_geometries(np.linspace(1.3, 4.2, 59), 3))
    states = adiabatic_states(model, pos)
    energies, slopes, nac = two_state_closed_form(model.diabatic(pos), model.diabatic_derivative_r(pos))
    bond = pos[:, 1] - pos[:, 0]
    unit = bond / torch.linalg.vector_norm(bond, dim=1, keepdim=True)
    assert torch.allclose(states.energies, energies, atol=1e-12, rtol=0)
    # dE/dx_1 = dE/dr * u, dE/dx_0 = -dE/dr * u
    assert torch.allclose(-states.forces[:, :, 1], slopes[..., None] * unit[:, None], atol=1e-10, rtol=0)
    assert torch.allclose(states.forces.sum(2), torch.zeros(1, dtype=torch.float64), atol=1e-12)
    along = (states.couplings[:, 0, 1, 1] * unit).sum(-1)
    assert torch.allclose(along.abs(), nac, atol=1e-8 * nac.max(), rtol=1e-8)


def test_trained_diabatic_model_reproduces_the_surfaces_phase_free():
    """A DiabaticPotential trained on 224 samples of DiatomicCrossing (couplings with random
    signs, as any quantum code gives them) reproduces it on held-out bond lengths. Stated error
    (measured 1.1 meV, 4.8 meV/Å, 16 %): energy MAE < 3 meV, force MAE < 10 meV/Å, coupling
    |d| within 30 % in the L1 norm over the crossing region."""
    from ase import Atoms

    from atomistic import DescriptorSettings, NetworkSettings
    from atomistic.multistate import DiabaticPotential, DiatomicCrossing, fit_multistate, sample

    torch.manual_seed(0)
    reference = DiatomicCrossing()
    rng = np.random.default_rng(0)
    r_train = np.concatenate([rng.uniform(1.3, 4.2, 160), rng.uniform(2.1, 3.0, 64)])
    train = sample(reference, diatomic_geometries(r_train, 1))
    flips = torch.as_tensor(rng.choice([-1.0, 1.0], size=len(r_train)))
    train.couplings = train.couplings * flips[:, None, None, None, None]
    r_test = np.linspace(1.4, 4.0, 53)
    test = sample(reference, diatomic_geometries(r_test, 2))
    atoms = Atoms("LiF", positions=[[0, 0, 0], [0, 0, 1.6]])
    model = DiabaticPotential(["Li", "F"], 2, DescriptorSettings(cutoff=5.0, n_radial=16, r_min=1.0,
                                                                 angular_cutoff=3.0, n_angular=0),
                              NetworkSettings(hidden=(32, 32)))
    history = fit_multistate(model, atoms, train, epochs=150, batch_size=32, lr=3e-3)
    assert history[-1] < 0.01 * history[0]
    states = adiabatic_states(model.bind(atoms), test.positions)
    assert float((states.energies - test.energies).abs().mean()) < 3e-3
    assert float((states.forces - test.forces).abs().mean()) < 1e-2
    d_ref = torch.linalg.vector_norm(test.couplings[:, 0, 1].reshape(len(r_test), -1), dim=1) / (
        test.energies[:, 1] - test.energies[:, 0])
    d = torch.linalg.vector_norm(states.couplings[:, 0, 1].reshape(len(r_test), -1), dim=1)
    assert float((d - d_ref).abs().sum() / d_ref.sum()) < 0.3


def test_calculator_exposes_a_chosen_state_and_its_forces_are_the_energy_gradient():
    from ase import Atoms

    from atomistic.multistate import DiatomicCrossing, MultiStateCalculator

    atoms = Atoms("LiF", positions=[[0.1, 0.2, -0.3], [0.4, 1.9, 1.2]])
    for state in (0, 1):
        atoms.calc = MultiStateCalculator(DiatomicCrossing(), state=state)
        e = atoms.get_potential_energy()
        f = atoms.get_forces()
        assert e == pytest.approx(atoms.calc.results["adiabatic_energies"][state])
        h = 1e-5
        shifted = atoms.copy()
        shifted.calc = MultiStateCalculator(DiatomicCrossing(), state=state)
        shifted.positions[1, 1] += h
        up = shifted.get_potential_energy()
        shifted.positions[1, 1] -= 2 * h
        down = shifted.get_potential_energy()
        assert -(up - down) / (2 * h) == pytest.approx(f[1, 1], abs=1e-7)
    with pytest.raises(ValueError, match="state must be in 0..1"):
        MultiStateCalculator(DiatomicCrossing(), state=2)


def test_fssh_run_records_populations_and_plots_them(tmp_path):
    from atomistic.multistate import AU_MOMENTUM, TULLY_MASS_AMU, FSSHSettings, SurfaceHopping
    from atomistic.plots import population_plot

    pos = torch.zeros(50, 1, 3, dtype=torch.float64)
    pos[:, 0, 0] = -5.0 * BOHR_A
    mom = torch.zeros_like(pos)
    mom[:, 0, 0] = 20.0 * AU_MOMENTUM
    run = SurfaceHopping.start(TullySimple(), pos, mom, [TULLY_MASS_AMU], 0, FSSHSettings(timestep_fs=0.2))
    history = run.run(200, record_every=20)
    assert len(history["time_fs"]) == 11 and history["time_fs"][-1] == pytest.approx(40.0)
    assert history["surface"][0] == [1.0, 0.0]
    assert all(abs(sum(p) - 1) < 1e-12 for p in history["surface"] + history["electronic"])
    assert sum(map(sum, history["hops"]["accepted"])) == int(run.hops.accepted.sum())
    assert population_plot(tmp_path / "populations.png", history).stat().st_size > 1000


def test_bound_model_all_pairs_table_equals_the_neighbour_list():
    """Molecules use one all-pairs table per batch size; it must give the neighbour list's H,
    and H must be invariant under rotation, translation and permutation of like atoms."""
    from ase.build import molecule

    from atomistic import DescriptorSettings, NetworkSettings
    from atomistic.multistate import DiabaticPotential
    from atomistic.potential.neighbors import build_neighbors
    from atomistic.potential.structure import from_atoms

    torch.manual_seed(1)
    mol = molecule("CH3OH")
    model = DiabaticPotential(["H", "C", "O"], 3, DescriptorSettings(cutoff=2.5, angular_cutoff=2.0, n_radial=6,
                                                                     n_angular=3), NetworkSettings(hidden=(8,)))
    rng = np.random.default_rng(0)
    frames = [mol.positions + rng.normal(scale=0.1, size=mol.positions.shape) for _ in range(4)]
    h = model.bind(mol).diabatic(torch.as_tensor(np.stack(frames)))
    for k, p in enumerate(frames):
        a = mol.copy()
        a.positions = p
        s = from_atoms(a, model.species)
        ref = model.matrix(s, build_neighbors(s, model.cutoff, model.descriptor_settings.angular_cutoff))
        assert torch.allclose(h[k], ref[0], atol=1e-12, rtol=1e-12)
    assert torch.allclose(h, h.transpose(1, 2))
    from atomistic.testing import random_rotation

    q = random_rotation(rng)
    moved = np.stack(frames) @ q.T + rng.normal(size=3)
    perm = [0, 1, 2, 4, 3, 5]  # CH3OH: swap two methyl hydrogens (atoms 3 and 4 are H)
    assert [mol.get_chemical_symbols()[i] for i in perm] == mol.get_chemical_symbols()
    h2 = model.bind(mol).diabatic(torch.as_tensor(moved[:, perm]))
    assert torch.allclose(h2, h, atol=1e-10, rtol=1e-10)


# Exact quantum scattering for Tully's model 1 (J. Chem. Phys. 142, 084110 (2015), Appendix; data
# file examples/tully_1_range/tully_1_range.dat of github.com/ouyangw/scattering at commit
# 5f6eb53f, copied in docs/references/tully_models.md): k (a.u.) -> transmission on the upper state.
TULLY1_EXACT_T_UPPER = {10: 0.1555, 16: 0.3590, 20: 0.4932, 26: 0.6448}


@pytest.mark.parametrize("k", sorted(TULLY1_EXACT_T_UPPER))
def test_fssh_tully1_transmission_tracks_exact_quantum_scattering(k):
    """Above k = 10 a.u. FSSH follows the exact branching of Tully's model 1 (Tully 1990, Fig. 3);
    here within 3 binomial standard errors plus 0.01."""
    n = 1000
    from atomistic.multistate import FSSHSettings

    run, _, _ = tully_run(TullySimple(), float(k), n_traj=n, settings=FSSHSettings(timestep_fs=0.1, seed=k))
    x = run.positions[:, 0, 0]
    upper = float(((run.active == 1) & (x > 0)).double().mean())
    assert float((x < 0).double().mean()) == 0.0  # no reflection at these momenta
    p = TULLY1_EXACT_T_UPPER[k]
    assert abs(upper - p) < 3 * (p * (1 - p) / n) ** 0.5 + 0.01, (k, upper, p)


# Tully's model 2 (dual avoided crossing), exact quantum transmission on the upper state (same
# source as above, tully_2_range.dat). Tully 1990, Fig. 4, shows FSSH on top of the exact
# Stückelberg oscillations above k ~ 25 a.u. but not below; no digitised FSSH table exists, so the
# test allows the method error seen in that figure, 0.03, beside 3 binomial standard errors.
TULLY2_EXACT_T_UPPER = {30: 0.6663, 40: 0.2918, 60: 0.1649, 80: 0.6515}


@pytest.mark.parametrize("k", sorted(TULLY2_EXACT_T_UPPER))
def test_fssh_tully2_follows_the_stueckelberg_oscillations(k):
    from atomistic.multistate import FSSHSettings

    n = 1000
    run, _, _ = tully_run(TullyDual(), float(k), n_traj=n, settings=FSSHSettings(timestep_fs=0.1, seed=k),
                          x0_bohr=-15.0, x_end_bohr=15.0)
    x = run.positions[:, 0, 0]
    assert float((x < 0).double().mean()) == 0.0
    upper = float(((run.active == 1) & (x > 0)).double().mean())
    p = TULLY2_EXACT_T_UPPER[k]
    assert abs(upper - p) < 3 * (p * (1 - p) / n) ** 0.5 + 0.03, (k, upper, p)


# Published FSSH on Tully's model 3 (extended coupling, where the reflected upper-state packet
# makes plain FSSH incoherent and a decoherence correction is needed): jruneson/hopping,
# examples/tully3-scattering/branch1.out (commit 9715e42d), 100 000 trajectories per k, copied in
# docs/references/tully_models.md. Their settings, reproduced here: start at x = -15 bohr with
# momentum k on the lower state; hops rescale the momentum along d; frustrated hops reverse it;
# the inactive amplitude is zeroed where hbar |d . v| / |E_2 - E_1| <= 0.01. Columns:
# k -> (R_lower, R_upper, T_lower, T_upper), by the final active state.
TULLY3_FSSH_ID = {10: (0.0897, 0.2118, 0.6986, 0.0), 20: (0.1618, 0.2398, 0.5984, 0.0),
                  30: (0.0, 0.0, 0.5599, 0.4401)}


@pytest.mark.parametrize("k", sorted(TULLY3_FSSH_ID))
def test_fssh_tully3_with_decoherence_reproduces_the_published_branching(k):
    from atomistic.multistate import FSSHSettings

    n = 2000
    settings = FSSHSettings(timestep_fs=0.1, seed=k, frustrated="reverse", decoherence="instantaneous",
                            coupling_ratio=0.01)
    run, drift, _ = tully_run(TullyExtended(), float(k), n_traj=n, settings=settings, x0_bohr=-15.0, x_end_bohr=15.0)
    assert drift < 3e-3  # eV; the surfaces span 10.9 eV
    x, a = run.positions[:, 0, 0], run.active
    ours = [float(m.double().mean()) for m in ((x < 0) & (a == 0), (x < 0) & (a == 1), (x > 0) & (a == 0),
                                              (x > 0) & (a == 1))]
    for got, ref in zip(ours, TULLY3_FSSH_ID[k]):
        sigma = (ref * (1 - ref) / n + ref * (1 - ref) / 100_000) ** 0.5
        assert abs(got - ref) < 3 * sigma + 0.005, (k, ours, TULLY3_FSSH_ID[k])


def test_instantaneous_decoherence_zeroes_only_uncoupled_states():
    """Far from the coupling region of model 1 the inactive amplitude is cleared; inside it, kept."""
    from atomistic.multistate import AU_MOMENTUM, TULLY_MASS_AMU, FSSHSettings, SurfaceHopping

    pos = line([-8.0 * BOHR_A, 0.0])
    mom = torch.zeros_like(pos)
    mom[:, 0, 0] = 20 * AU_MOMENTUM
    run = SurfaceHopping.start(TullySimple(), pos, mom, [TULLY_MASS_AMU], 0,
                               FSSHSettings(timestep_fs=0.01, decoherence="instantaneous"))
    run.amplitudes = torch.tensor([[0.8, 0.6], [0.8, 0.6]], dtype=torch.complex128)
    run.step()
    c = run.amplitudes
    assert torch.allclose((c.abs() ** 2).sum(1), torch.ones(2, dtype=torch.float64), atol=1e-12)
    assert float(c[0, 1].abs()) == 0.0 and float(c[0, 0].abs()) == pytest.approx(1.0)
    assert 0.4 < float(c[1, 1].abs()) < 0.8


def _grid_2d(half_width, n):
    g = np.linspace(-half_width, half_width, n)
    gx, gy = np.meshgrid(g, g)
    pos = torch.zeros(n * n, 1, 3, dtype=torch.float64)
    pos[:, 0, 0] = torch.as_tensor(gx.ravel() + 0.013)  # off the cone's apex, where d diverges
    pos[:, 0, 1] = torch.as_tensor(gy.ravel() + 0.017)
    return pos


# reference, axes, training samples, half-width of the sampled box (bohr for Tully's models and
# ThreeState, Å for the cone), the coupling weight of the loss, and the stated errors on held-out
# points: energy MAE (meV), force MAE (meV/Å), |d| relative L1 error. Measured (2026-11-27, CPU,
# float64): Tully 1 0.49 / 0.84 / 0.019; Tully 2 1.7 / 1.3 / 0.015; Tully 3 3.1 / 7.2 / 0.34;
# ThreeState 0.51 / 0.61 / 0.047; cone 0.53 / 1.7 / 0.051 (the cone's spans 2.9 eV; the bounds
# leave room for other CPUs' rounding and are still a fraction of a per cent of each span). Tully 3
# is the hard one: its 33 meV gap on the left sits under a matrix that spans 10.9 eV, so its
# coupling needs 3e-4 relative precision of a generic network.
TRAINED = {
    "tully1": (TullySimple, (0,), 200, 6.0, 10.0, (1.5, 2.0, 0.05)),
    "tully2": (TullyDual, (0,), 200, 8.0, 10.0, (4.0, 4.0, 0.05)),
    "tully3": (TullyExtended, (0,), 400, 10.0, 10.0, (8.0, 15.0, 0.6)),
    "three_state": (ThreeState, (0,), 200, 6.0, 10.0, (2.0, 2.0, 0.12)),
    "conical_intersection": (ConicalIntersection, (0, 1), 400, 1.5, 1.0, (4.0, 8.0, 0.12)),
}


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_model_trained_on_analytic_surfaces_reproduces_them_phase_free(name):
    """DESIGN V12, second half: a CoordinateDiabatic trained on adiabatic energies, forces and
    coupling numerators of an analytic model, each sample's eigenvector signs scrambled (as a
    quantum code returns them), reproduces the adiabatic energies, forces and |d_kl| off the
    training points within the stated errors above."""
    from atomistic import NetworkSettings
    from atomistic.multistate import CoordinateDiabatic, fit_multistate, sample

    reference_cls, axes, n_train, half, w_coupling, (e_bound, f_bound, d_bound) = TRAINED[name]
    reference = reference_cls()
    rng = np.random.default_rng(0)
    unit = 1.0 if len(axes) == 2 else BOHR_A
    if len(axes) == 1:
        train_pos = line(rng.uniform(-half, half, n_train) * unit)
        test_pos = line(np.linspace(-0.99, 0.99, 101) * half * unit)
    else:
        train_pos = torch.zeros(n_train, 1, 3, dtype=torch.float64)
        train_pos[:, 0, :2] = torch.as_tensor(rng.uniform(-half, half, (n_train, 2)))
        test_pos = _grid_2d(0.93 * half, 41)
    train, test = sample(reference, train_pos), sample(reference, test_pos)
    n = train.energies.shape[1]
    signs = torch.as_tensor(rng.choice([-1.0, 1.0], size=(n_train, n)))
    train.couplings = train.couplings * (signs[:, :, None] * signs[:, None, :])[..., None, None]

    torch.manual_seed(0)
    model = CoordinateDiabatic(n, axes, NetworkSettings(hidden=(64, 64)))
    fit_multistate(model, None, train, epochs=3000, batch_size=n_train, lr=1e-2, weights=(1.0, 1.0, w_coupling))
    got = adiabatic_states(model, test.positions)
    e_mae = float((got.energies - test.energies).abs().mean()) * 1e3
    f_mae = float((got.forces - test.forces).abs().mean()) * 1e3
    rows, cols = torch.triu_indices(n, n, 1)
    gap = test.energies[:, cols] - test.energies[:, rows]
    d_ref = torch.linalg.vector_norm(test.couplings[:, rows, cols].flatten(2), dim=-1) / gap
    d = torch.linalg.vector_norm(got.couplings[:, rows, cols].flatten(2), dim=-1)
    d_err = float((d - d_ref).abs().sum() / d_ref.sum())
    assert e_mae < e_bound and f_mae < f_bound and d_err < d_bound, (name, e_mae, f_mae, d_err)
