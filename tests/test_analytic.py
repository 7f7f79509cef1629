"""Analytic surfaces behind the model interface: energies, forces and Hessians through
``from_atoms`` + ``build_neighbors`` + ``forces.predict`` / ``forces.hessian`` (the NN's path) equal
derivatives written out by hand here, and the documented stationary points are stationary with
the documented curvatures."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from atomistic import NNPCalculator
from atomistic.potential.analytic import DoubleWell, MuellerBrown
from atomistic.potential.forces import hessian, predict
from atomistic.potential.neighbors import build_neighbors
from atomistic.potential.structure import from_atoms

# Müller–Brown parameters as published (Müller & Brown 1979), written out again for the references
MB_A = np.array([-200.0, -100.0, -170.0, 15.0])
MB_a = np.array([-1.0, -1.0, -6.5, 0.7])
MB_b = np.array([0.0, 0.0, 11.0, 0.6])
MB_c = np.array([-10.0, -10.0, -6.5, 0.7])
MB_X = np.array([1.0, 0.0, -0.5, -1.0])
MB_Y = np.array([0.0, 0.5, 1.5, 1.0])


def mb_reference(p, eps, length, kz):
    """Energy (eV), gradient (3,) eV/Å and Hessian (3, 3) eV/Å^2 of the scaled Müller–Brown
    surface at one point p (Å), by hand."""
    x, y = p[0] / length - MB_X, p[1] / length - MB_Y
    f = MB_A * np.exp(MB_a * x * x + MB_b * x * y + MB_c * y * y)
    qx, qy = 2 * MB_a * x + MB_b * y, MB_b * x + 2 * MB_c * y
    e = eps * f.sum() + 0.5 * kz * p[2] ** 2
    g = np.array([eps / length * (f * qx).sum(), eps / length * (f * qy).sum(), kz * p[2]])
    hxx = (f * (qx * qx + 2 * MB_a)).sum()
    hxy = (f * (qx * qy + MB_b)).sum()
    hyy = (f * (qy * qy + 2 * MB_c)).sum()
    h = np.zeros((3, 3))
    h[:2, :2] = eps / length**2 * np.array([[hxx, hxy], [hxy, hyy]])
    h[2, 2] = kz
    return e, g, h


def through_the_model_interface(model, atoms):
    s = from_atoms(atoms, model.species, dtype=model.dtype)
    nbrs = build_neighbors(s, model.cutoff, model.angular_cutoff)
    p = predict(model, s, nbrs)
    return p.energies.numpy(), p.forces.numpy(), hessian(model, s, nbrs).numpy()


def block_diagonal(blocks):
    n = len(blocks)
    out = np.zeros((3 * n, 3 * n))
    for i, b in enumerate(blocks):
        out[3 * i:3 * i + 3, 3 * i:3 * i + 3] = b
    return out


def test_double_well_energies_forces_hessian_match_hand_derivatives():
    v0, b, kp = 0.23, 1.3, 0.7
    dw = DoubleWell(v0, b, kp, symbol="H")
    pos = np.random.default_rng(0).uniform(-2.0, 2.0, size=(7, 3))
    e, f, h = through_the_model_interface(dw, dw.atoms(pos))
    x, y, z = pos.T
    assert np.allclose(e, v0 * (x**2 / b**2 - 1) ** 2 + 0.5 * kp * (y**2 + z**2), rtol=0, atol=1e-13)
    fx = -4 * v0 * x * (x**2 / b**2 - 1) / b**2
    assert np.allclose(f, np.stack([fx, -kp * y, -kp * z], 1), rtol=0, atol=1e-12)
    hxx = v0 * (12 * x**2 / b**4 - 4 / b**2)
    assert np.allclose(h, block_diagonal([np.diag([k, kp, kp]) for k in hxx]), rtol=0, atol=1e-12)
    assert dw.curvature_minimum == pytest.approx(v0 * (12 / b**2 - 4 / b**2), rel=1e-14)
    assert dw.curvature_saddle == pytest.approx(-4 * v0 / b**2, rel=1e-14)


def test_mueller_brown_energies_forces_hessian_match_hand_derivatives():
    eps, length, kz = 0.003, 1.7, 0.9
    mb = MuellerBrown(energy_eV=eps, length_A=length, k_z_eV_A2=kz, symbol="H")
    rng = np.random.default_rng(1)
    pos = np.column_stack([rng.uniform(-1.5, 1.0, 6), rng.uniform(-0.3, 2.0, 6), rng.uniform(-0.5, 0.5, 6)]) * length
    e, f, h = through_the_model_interface(mb, mb.atoms(pos))
    ref = [mb_reference(p, eps, length, kz) for p in pos]
    scale = max(abs(r[0]) for r in ref)
    assert np.allclose(e, [r[0] for r in ref], rtol=1e-12, atol=1e-12 * scale)
    assert np.allclose(f, [-r[1] for r in ref], rtol=1e-10, atol=1e-10 * scale)
    assert np.allclose(h, block_diagonal([r[2] for r in ref]), rtol=1e-10, atol=1e-10 * scale)


@pytest.mark.parametrize("surface", [DoubleWell(0.3, 0.8, 1.5, symbol="H"),
                                     MuellerBrown(energy_eV=0.002, length_A=1.3, k_z_eV_A2=0.5, symbol="H")],
                         ids=["double_well", "mueller_brown"])
def test_documented_stationary_points(surface):
    """All stationary points at once (one Atoms, independent replicas): zero force, the stated
    energy, and Hessian blocks whose eigenvalues are the stated curvatures, negative exactly once
    at a saddle. Müller–Brown's are also checked against the hand Hessian and the published
    locations (three decimals)."""
    points = surface.stationary_points()
    e, f, h = through_the_model_interface(surface, surface.atoms([p.position_A for p in points]))
    assert np.abs(f).max() < 1e-9
    assert e == pytest.approx([p.energy_eV for p in points], abs=1e-9)
    for i, p in enumerate(points):
        k = np.linalg.eigvalsh(h[3 * i:3 * i + 3, 3 * i:3 * i + 3])
        assert k == pytest.approx(p.curvatures, rel=1e-9, abs=1e-12)
        assert (k < 0).sum() == {"minimum": 0, "saddle": 1}[p.kind]
    if isinstance(surface, MuellerBrown):
        literature = {"MA": (-0.558, 1.442, -146.70), "MB": (0.623, 0.028, -108.17), "MC": (-0.050, 0.467, -80.77),
                      "S1": (-0.822, 0.624, -40.66), "S2": (0.212, 0.293, -72.25)}
        for p in points:
            x, y, e0 = literature[p.name]
            assert p.position_A[:2] / surface.length_A == pytest.approx([x, y], abs=1e-3)
            assert p.energy_eV / surface.energy_eV == pytest.approx(e0, abs=1e-2)
            ref = mb_reference(p.position_A, surface.energy_eV, surface.length_A, surface.k_z_eV_A2)
            assert np.linalg.eigvalsh(ref[2]) == pytest.approx(p.curvatures, rel=1e-9)
    else:
        b = surface.half_width_A
        assert sorted(p.position_A[0] for p in points) == [-b, 0.0, b]


def test_chunked_and_sliced_evaluation_of_independent_replicas():
    dw = DoubleWell(0.2, 1.0, 1.0, symbol="H")
    pos = np.random.default_rng(2).normal(size=(11, 3))
    s = from_atoms(dw.atoms(pos), dw.species)
    nbrs = build_neighbors(s, dw.cutoff)
    whole = predict(dw, s, nbrs, chunk_size=None)
    chunked = predict(dw, s, nbrs, chunk_size=3)
    assert np.array_equal(whole.energies.numpy(), chunked.energies.numpy())
    assert np.array_equal(whole.forces.numpy(), chunked.forces.numpy())
    part = dw.atomic_energies(s.positions, s.cell[0], s.species, nbrs, slice(4, 9))
    assert np.array_equal(part.numpy(), whole.energies.numpy()[4:9])
    moved = pos.copy()
    moved[5] += 0.3  # one replica moves, the others do not notice
    e_moved = predict(dw, from_atoms(dw.atoms(moved), dw.species), nbrs).energies.numpy()
    assert np.array_equal(np.delete(e_moved, 5), np.delete(whole.energies.numpy(), 5))


def test_ase_calculator_on_an_analytic_surface():
    dw = DoubleWell(0.2, 1.1, 0.6, symbol="Ar")
    atoms = Atoms("Ar2", positions=[[0.4, 0.1, -0.2], [-1.3, 0.3, 0.05]])
    atoms.calc = NNPCalculator(dw)
    x = atoms.positions
    e = 0.2 * (x[:, 0] ** 2 / 1.1**2 - 1) ** 2 + 0.3 * (x[:, 1] ** 2 + x[:, 2] ** 2)
    assert atoms.get_potential_energy() == pytest.approx(e.sum(), abs=1e-13)
    assert atoms.get_forces()[:, 1:] == pytest.approx(-0.6 * x[:, 1:], abs=1e-13)
    assert atoms.get_masses() == pytest.approx([39.948, 39.948])


@pytest.mark.parametrize("make, match", [
    (lambda: DoubleWell(barrier_eV=-0.1), "barrier_eV"),
    (lambda: DoubleWell(half_width_A=0.0), "half_width_A"),
    (lambda: DoubleWell(k_perp_eV_A2=float("nan")), "k_perp_eV_A2"),
    (lambda: MuellerBrown(energy_eV=0.0), "energy_eV"),
    (lambda: MuellerBrown(length_A=float("inf")), "length_A"),
    (lambda: MuellerBrown(k_z_eV_A2="stiff"), "k_z_eV_A2"),
    (lambda: DoubleWell(symbol="Xx"), "symbol"),
    (lambda: MuellerBrown(cutoff=0.0), "cutoff"),
    (lambda: DoubleWell().atoms([[0.0, 1.0]]), "positions_A"),
])
def test_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()
