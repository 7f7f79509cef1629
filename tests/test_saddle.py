"""Saddle points and IRC (issue 3, item 4).

Cu adatom hopping between hollow sites of Cu(100) (3x3x3 slab plus adatom, bottom layer fixed)
on the shipped model, against ASE's own CI-NEB on the same calculator, against EMT (the model's
reference) and against finite differences; and the Müller–Brown and double-well surfaces, whose
saddles, minima and paths are known independently."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.emt import EMT
from ase.io import read
from ase.mep import NEB
from ase.optimize import FIRE
from ase.vibrations import Vibrations
from scipy import optimize

from atomistic import NNPCalculator
from atomistic.analysis.irc import irc, irc_plot, write_irc
from atomistic.analysis.saddle import SaddleError, neb, prfo_step, refine_saddle
from atomistic.potential.analytic import DoubleWell, MuellerBrown
from atomistic.potential.io import load_potential
from atomistic.recipes.cu_emt import adatom_hop_images, emt_lattice_constant
from atomistic.testing import TEST_DEVICE

from .conftest import SHIPPED_MODEL

#: |NN barrier - EMT barrier| allowed, eV. The model card (cases/models/README.md) states a test
#: energy error of 0.43 meV/atom MAE, 0.67 meV/atom RMSE. The barrier is the difference of two
#: 28-atom energies; if each frame's per-atom errors were fully correlated, each energy is off
#: by up to ~28 x 0.67 = 19 meV (RMSE), and two independent such errors give sqrt(2) x 19 = 27
#: meV. Add ~3 meV for the 5-image EMT band (CI-NEB to 0.03 eV/Å): 30 meV.
EMT_BARRIER_TOLERANCE_EV = 0.030


def _nearest(atoms: Atoms, candidates) -> tuple[int, float]:
    """(index of the candidate closest to ``atoms``, its largest atomic distance, Å)."""
    d = [np.abs(atoms.positions - c.positions).max() for c in candidates]
    return int(np.argmin(d)), float(min(d))


@pytest.fixture(scope="module")
def hop():
    """Our CI-NEB (5 images, from the EMT band's endpoints re-relaxed on the model), the refined
    saddle and the IRC from it; EMT's own band for reference."""
    torch.set_flush_denormal(True)
    model = load_potential(SHIPPED_MODEL, device=TEST_DEVICE)
    a0 = emt_lattice_constant()
    band = adatom_hop_images(a0, n_images=5)
    emt = []
    for image in band:
        a = image.copy()
        a.calc = EMT()
        emt.append(a.get_potential_energy())
    ours = neb(model, band[0], band[-1], n_images=5, fmax=0.03)
    saddle = refine_saddle(model, ours.saddle, fmax=1e-3, guess=ours.tangent)
    path = irc(model, saddle.atoms, modes=saddle.modes)
    return {"model": model, "a0": a0, "emt_band": band, "emt_barrier": max(emt) - emt[0], "neb": ours,
            "saddle": saddle, "irc": path}


def test_neb_matches_ase_neb_on_the_same_model(hop):
    """(a) Our batched CI-NEB and ASE's CI-NEB (improved tangent, FIRE) with NNPCalculator, both
    from the same relaxed endpoints, find the same barrier within 5 meV."""
    model, ours = hop["model"], hop["neb"]
    assert ours.converged and ours.saddle_index == 2
    images = [ours.images[0].copy() for _ in range(4)] + [ours.images[-1].copy()]
    for image in images:
        image.calc = NNPCalculator(model, device=TEST_DEVICE)
    ase_neb = NEB(images, climb=True, method="improvedtangent")
    ase_neb.interpolate()
    assert FIRE(ase_neb, logfile=None).run(fmax=0.03, steps=1000)
    e = np.array([image.get_potential_energy() for image in images])
    assert abs((e.max() - e[0]) - ours.barrier_forward_eV) < 0.005, (e.max() - e[0], ours.barrier_forward_eV)
    assert ours.barrier_forward_eV == pytest.approx(ours.barrier_backward_eV, abs=1e-3)  # a symmetric hop
    assert ours.energies[0] == pytest.approx(e[0], abs=1e-8)  # the same endpoint energy through ASE
    # the final state given one cell vector away (adatom wrapped): the minimum-image band is the same
    wrapped = ours.images[-1].copy()
    wrapped.positions[-1] += wrapped.cell[0] + wrapped.cell[1]
    again = neb(model, ours.images[0], wrapped, n_images=5, fmax=0.03, relax_endpoints=False)
    assert again.barrier_forward_eV == pytest.approx(ours.barrier_forward_eV, abs=1e-6)


def test_barrier_matches_emt_within_the_model_error(hop):
    """(b) The refined NN barrier agrees with EMT's own CI-NEB barrier within the error the
    model card states (see EMT_BARRIER_TOLERANCE_EV)."""
    refined = hop["saddle"].energy - hop["neb"].energies[0]
    assert abs(refined - hop["neb"].barrier_forward_eV) < 0.003  # the climbing image was nearly there
    assert abs(refined - hop["emt_barrier"]) < EMT_BARRIER_TOLERANCE_EV, (refined, hop["emt_barrier"])


def test_refined_saddle_is_first_order(hop, tmp_path):
    """(c) One imaginary mode; the spectrum agrees with ASE's finite differences on the free
    atoms within 1 cm^-1; max force < 1e-3 eV/Å through the ASE calculator; the saddle sits at
    the bridge site, halfway between the two hollows, by symmetry."""
    model, saddle, ours = hop["model"], hop["saddle"], hop["neb"]
    a = saddle.atoms.copy()
    a.calc = NNPCalculator(model, device=TEST_DEVICE)
    free = saddle.modes.indices
    assert np.linalg.norm(a.get_forces()[free], axis=1).max() < 1e-3
    assert saddle.modes.n_imaginary() == 1 and saddle.modes.frequencies_cm[0] < -10.0
    assert saddle.modes.n_rigid == 0  # the fixed bottom layer breaks translation invariance
    vib = Vibrations(a, indices=free, delta=0.005, nfree=4, name=str(tmp_path / "vib"))
    vib.run()
    f = vib.get_frequencies()
    ref = np.sort(np.where(np.abs(f.imag) > 0, -np.abs(f.imag), f.real))
    assert np.abs(saddle.modes.frequencies_cm - ref).max() < 1.0
    midpoint = 0.5 * (ours.images[0].positions[-1] + ours.images[-1].positions[-1])
    assert np.abs(saddle.atoms.positions[-1, :2] - midpoint[:2]).max() < 0.01
    # the imaginary mode moves the adatom along the hop (x), more than anything else
    assert np.abs(saddle.modes.displacements[0]).argmax() == 3 * (len(free) - 1)
    # P-RFO from a start 0.05 Å (rms per coordinate) away finds the same saddle
    start = saddle.atoms.copy()
    start.positions[free] += np.random.default_rng(1).normal(scale=0.05, size=(len(free), 3))
    again = refine_saddle(model, start, fmax=1e-4)
    assert again.steps <= 10 and again.energy == pytest.approx(saddle.energy, abs=1e-6)
    assert np.abs(again.atoms.positions - saddle.atoms.positions).max() < 2e-3


def test_irc_ends_in_the_two_minima(hop, tmp_path):
    """(d) Both IRC branches end, after relaxation, at the relaxed NEB endpoints (0.05 Å, 1 meV);
    the path descends monotonically from the saddle; plot and extxyz are written."""
    path, ends = hop["irc"], (hop["neb"].images[0], hop["neb"].images[-1])
    matched = [_nearest(m, ends) for m in path.minima]
    assert sorted(k for k, _ in matched) == [0, 1]  # one branch into each minimum
    assert max(d for _, d in matched) < 0.05
    e_ends = hop["neb"].energies[[0, -1]]
    assert np.abs(np.asarray(path.minimum_energies) - e_ends[[k for k, _ in matched]]).max() < 1e-3
    # the unrelaxed path ends already near the minima (stopped at 0.01 eV/Å)
    for x in (path.positions[0], path.positions[-1]):
        assert min(np.abs(x - e.positions).max() for e in ends) < 0.05
    c = path.saddle_index
    assert abs(path.arc_length[c]) < 1e-12 and np.array_equal(path.positions[c], hop["saddle"].atoms.positions)
    assert (np.diff(path.energies[c:]) < 0).all() and (np.diff(path.energies[:c + 1]) > 0).all()
    assert (np.diff(path.arc_length) > 0).all()
    # a symmetric hop: the two branches are mirror images, equally long
    assert path.arc_length[0] == pytest.approx(-path.arc_length[-1], rel=1e-3)
    assert irc_plot(tmp_path / "irc.png", path).stat().st_size > 1000
    frames = read(write_irc(tmp_path / "irc.extxyz", path), ":")
    assert len(frames) == len(path.energies)
    assert [f.info["arc_length"] for f in frames] == pytest.approx(path.arc_length.tolist())
    assert frames[c].info["energy_eV"] == pytest.approx(path.energies[c])
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic writer left no temporary files


def test_irc_and_refinement_refuse_a_minimum(hop):
    minimum = hop["neb"].images[0]
    with pytest.raises(SaddleError, match="0 imaginary modes"):
        irc(hop["model"], minimum)
    with pytest.raises(SaddleError, match="0 imaginary modes"):
        refine_saddle(hop["model"], minimum)  # already stationary: the check is all that runs
    assert issubclass(SaddleError, ValueError)


# ----- analytic surfaces: known saddles, minima and paths -----

def _particle(x, y=0.0):
    return Atoms("Ar", positions=[[x, y, 0.0]])


def _mb_numpy(mb):
    return lambda p: float(mb.energy(torch.tensor([[p[0], p[1], 0.0]], dtype=torch.float64))[0])


def test_mueller_brown_neb_saddle_and_irc():
    """NEB between the deepest minimum A and the middle one B finds the saddle that scipy finds
    from the analytic gradient (barrier, position); P-RFO converges it from the climbing image and
    also from a point 0.25 Å away; the IRC from it ends in A and B."""
    mb = MuellerBrown()
    f = _mb_numpy(mb)
    a = optimize.minimize(f, [-0.56, 1.44], tol=1e-12).x
    b = optimize.minimize(f, [-0.05, 0.47], tol=1e-12).x
    s = optimize.root(lambda p: optimize.approx_fprime(p, f, 1e-7), [-0.82, 0.62], tol=1e-12).x
    band = neb(mb, _particle(*(a + 0.05)), _particle(*(b - 0.03)), n_images=9, fmax=0.01)
    assert band.converged
    assert np.abs(band.images[0].positions[0, :2] - a).max() < 2e-3  # the endpoints were relaxed
    assert band.barrier_forward_eV == pytest.approx(f(s) - f(a), abs=1e-3)
    saddle = refine_saddle(mb, band.saddle, project_rigid=False, fmax=1e-5, guess=band.tangent)
    assert np.abs(saddle.atoms.positions[0, :2] - s).max() < 1e-5
    assert saddle.energy == pytest.approx(f(s), abs=1e-9)
    far = refine_saddle(mb, _particle(-0.6, 0.8), project_rigid=False, fmax=1e-5)
    assert np.abs(far.atoms.positions[0, :2] - s).max() < 1e-5
    path = irc(mb, saddle.atoms, project_rigid=False, step=0.05, modes=saddle.modes)
    ends = sorted(m.positions[0, :2].tolist() for m in path.minima)
    assert np.abs(np.array(ends) - np.array(sorted([a.tolist(), b.tolist()]))).max() < 2e-3
    assert sorted(path.minimum_energies) == pytest.approx(sorted([f(a), f(b)]), abs=1e-6)


def test_double_well_irc_arc_length_is_mass_weighted():
    """The double-well IRC is the straight line x in [-b, b]: its arc length in mass-weighted
    coordinates is sqrt(m) b on each side (amu^1/2 Å), and its energy profile is V(x)."""
    dw = DoubleWell(0.25, 1.0, 2.0)
    saddle = _particle(0.0)
    sqrt_m = np.sqrt(saddle.get_masses()[0])
    path = irc(dw, saddle, project_rigid=False, step=0.1)
    assert path.arc_length[0] == pytest.approx(-sqrt_m, abs=0.05)
    assert path.arc_length[-1] == pytest.approx(sqrt_m, abs=0.05)
    x = path.positions[:, 0, 0]
    assert np.abs(path.positions[:, 0, 1:]).max() < 1e-12
    assert x == pytest.approx(path.arc_length / sqrt_m, abs=1e-9)
    assert path.energies == pytest.approx(0.25 * (x**2 - 1) ** 2, abs=1e-12)
    assert sorted(m.positions[0, 0] for m in path.minima) == pytest.approx([-1.0, 1.0], abs=1e-3)


def test_prfo_step_directions():
    """Uphill along the followed mode, downhill along the others, Newton steps near a saddle."""
    b, g = np.array([-1.0, 2.0, 3.0]), np.array([1e-3, 2e-3, -3e-3])
    step = prfo_step(b, g, 0)
    assert step * g == pytest.approx(-g * g / b, rel=1e-3)  # the Newton step -g/b in each mode
    step = prfo_step(np.array([1.0, 2.0]), np.array([0.5, 0.5]), 0)  # convex region: still climbs mode 0
    assert step[0] > 0 and step[1] < 0


def test_input_errors(caplog):
    dw = DoubleWell(0.25, 1.0, 2.0)
    with pytest.raises(ValueError, match="n_images must be >= 3"):
        neb(dw, _particle(-1.0), _particle(1.0), n_images=2)
    with pytest.raises(ValueError, match="spring_eV_A2 must be positive, got -0.1"):
        neb(dw, _particle(-1.0), _particle(1.0), spring_eV_A2=-0.1)
    with pytest.raises(ValueError, match="same atoms"):
        neb(dw, _particle(-1.0), Atoms("Ar2", positions=[[1, 0, 0], [2, 0, 0]]))
    with pytest.raises(ValueError, match="step must be positive"):
        irc(dw, _particle(0.0), project_rigid=False, step=0.0)
    with pytest.raises(SaddleError, match="exactly 1 imaginary mode.*has 0"):
        irc(dw, _particle(1.0), project_rigid=False)
    with pytest.raises(SaddleError, match="max_steps=0"):
        refine_saddle(dw, _particle(0.3), project_rigid=False, max_steps=0)
    with caplog.at_level(logging.WARNING, logger="atomistic.analysis.saddle"):
        neb(MuellerBrown(), _particle(-0.56, 1.44), _particle(-0.05, 0.47), max_steps=1)
    assert "NEB stopped after 1 steps" in caplog.text
