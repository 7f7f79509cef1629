"""The captured-block path of MD (issue 18, must-holds 1 and 2): blocks replayed from CUDA graphs
follow the eager trajectory, redo stale and overflowing blocks, and diagnose a blow-up inside a
replayed block as the eager loop does.

On a CPU there are no graphs: the same path runs with its bookkeeping emulated (fixed inputs,
fixed neighbour tables, plans, generations, cloned outputs). With ``MULTISCALE_TEST_DEVICE=cuda``
the same tests run real CUDA graphs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.io import read

from atomistic.md import Barostat, MDBlowUp, MDSettings, MolecularDynamics, Safety, Thermostat
from atomistic.md.captured import GraphBlocks, Plan
from atomistic.potential import models
from atomistic.potential.descriptors import DescriptorSettings
from atomistic.potential.models import BPPotential, NetworkSettings
from atomistic.testing import TEST_DEVICE

A0 = 3.59


def crystal(repeat=2, seed=0, temperature_K=900.0):
    atoms = bulk("Cu", "fcc", a=A0, cubic=True).repeat(repeat)
    atoms.rattle(0.05, seed=seed)
    rng = np.random.default_rng(seed)
    p = rng.normal(scale=np.sqrt(63.5 * 8.617e-5 * temperature_K), size=(len(atoms), 3))
    atoms.set_momenta(p - p.mean(0))
    return atoms


def on_graphs(md: MolecularDynamics, max_graphs: int = 8) -> MolecularDynamics:
    """The graph path: real CUDA graphs on a GPU (on by default there), emulated on a CPU."""
    if md.graphs is None:
        md.forcefield.static = True
        md.forcefield.rebuild(md.state.positions, md.state.cell)
        md.graphs = GraphBlocks(md._advance, md.generator, input_stress=md.settings.barostat is not None,
                                emulate=True)
    md.graphs.max_graphs = max_graphs
    return md


def same_outputs(a: Path, b: Path) -> None:
    """The thermo logs and trajectories of two runs agree (float64 rounding)."""
    ta, tb = (np.loadtxt(p / "thermo.csv", delimiter=",", skiprows=1) for p in (a, b))
    assert ta.shape == tb.shape and np.array_equal(ta[:, :3], tb[:, :3])  # step, time, structure
    assert np.allclose(ta[:, 3:], tb[:, 3:], rtol=1e-9, atol=1e-9, equal_nan=True)
    fa, fb = (read(p / "trajectory.extxyz", ":") for p in (a, b))
    assert len(fa) == len(fb) > 0
    for x, y in zip(fa, fb):
        assert x.info["step"] == y.info["step"]
        assert np.abs(x.positions - y.positions).max() < 1e-9


def eager(model, atoms, settings, **kw) -> MolecularDynamics:
    md = MolecularDynamics(model, atoms, replace(settings, cuda_graphs=False), **kw)
    assert md.graphs is None and not md.forcefield.static
    return md


ENSEMBLES = {
    "nve": {},
    "langevin": {"ensemble": "nvt", "thermostat": Thermostat("langevin", 600.0, 50.0)},
    "bussi": {"ensemble": "nvt", "thermostat": Thermostat("bussi", 600.0, 50.0)},
    "npt": {"ensemble": "npt", "thermostat": Thermostat("bussi", 600.0, 50.0),
            "barostat": Barostat(pressure_GPa=2.0, time_fs=200.0)},
}


@pytest.mark.parametrize("ensemble", list(ENSEMBLES))
def test_replayed_blocks_follow_the_eager_trajectory(model, ensemble, tmp_path):
    """float64, a thin skin (the list is rebuilt every few blocks, blocks are halved), logs and
    frames inside blocks: the graph path ends where the eager loop ends, to rounding, draws the
    same thermostat and barostat noise from the same seed, and logs and keeps the same steps."""
    s = MDSettings(steps=80, timestep_fs=4.0, skin_A=0.3, check_every=6, log_every=3, trajectory_every=6,
                   checkpoint_every=0, seed=3, **ENSEMBLES[ensemble])
    ref_result = eager(model, crystal(), s, output=tmp_path / "eager").run()
    md = on_graphs(MolecularDynamics(model, crystal(), s, output=tmp_path / "graphs"))
    result = md.run()
    assert md.graphs.replays > 5 and md.graphs.captures >= 1 and md.graphs.failed is None
    assert result.rebuilds > 3
    for a, b in zip(result.atoms, ref_result.atoms):
        assert np.abs(a.positions - b.positions).max() < 1e-9
        assert np.abs(a.get_momenta() - b.get_momenta()).max() < 1e-9
        assert np.abs(a.cell.array - b.cell.array).max() < 1e-9
    assert result.cuda_graphs["replays"] == md.graphs.replays
    same_outputs(tmp_path / "eager", tmp_path / "graphs")


def test_replayed_runs_with_a_seed_are_reproducible(model, tmp_path):
    """Two NVT runs on the graph path with one seed write the same log, bit for bit."""
    s = MDSettings(ensemble="nvt", steps=60, timestep_fs=4.0, thermostat=Thermostat("langevin", 600.0, 50.0),
                   check_every=5, log_every=5, trajectory_every=0, checkpoint_every=0, seed=11)
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        on_graphs(MolecularDynamics(model, crystal(), replace(s, seed=seed), output=tmp_path / name)).run()
    a, b, c = ((tmp_path / name / "thermo.csv").read_text() for name in ("a", "b", "c"))
    assert a == b and len(a.splitlines()) == 13
    assert a != c  # the noise is drawn, not frozen


def test_an_overflowing_table_is_widened_and_the_block_redone(model):
    """Compacted tables too narrow for the rows (as after a density fluctuation): the block is
    redone with wider tables, on both paths, and the trajectory is the untouched run's."""
    s = MDSettings(steps=40, timestep_fs=4.0, check_every=5, log_every=0, trajectory_every=0, checkpoint_every=0)
    ref = eager(model, crystal(), s).run()
    runs = []
    for md in (eager(model, crystal(), s), on_graphs(MolecularDynamics(model, crystal(), s))):
        md.run(10)  # warm: on the graph path the next blocks replay graphs
        ff = md.forcefield
        replays, halved = md.replays, ff._width_radial // 2
        ff._width_radial = halved  # graphs captured with the old widths are never replayed now
        result = md.run()
        assert md.replays > replays and ff.slack > 0.05 and ff._width_radial > halved  # widened, redone
        runs.append(result)
    for result in runs:
        assert np.abs(result.atoms[0].positions - ref.atoms[0].positions).max() < 1e-9
    # fixed tables widen at once (a rebuild alone widens them only if the rows need it then)
    layout, width = ff.layout(), ff._width_angular
    ff.widen()
    assert ff._width_angular > width and ff.layout() != layout


def test_a_blow_up_inside_a_replayed_block_is_diagnosed(model, tmp_path):
    """A time step far too large, blocks of 2 steps with one plan (the first block is the eager
    warm-up, every later one a replay): the run stops after step 2, so inside a replayed block,
    at the step the eager loop names, with the same last good state."""
    s = MDSettings(steps=200, timestep_fs=25.0, initial_temperature_K=4000.0, check_every=2, log_every=0,
                   trajectory_every=0, checkpoint_every=0, safety=Safety(max_force_eV_A=20.0))
    errors = []
    for name, md in (("eager", eager(model, crystal(1), s, output=tmp_path / "eager")),
                     ("graphs", on_graphs(MolecularDynamics(model, crystal(1), s, output=tmp_path / "graphs")))):
        with pytest.raises(MDBlowUp) as err:
            md.run()
        errors.append(err.value)
        if name == "graphs":
            assert md.graphs.replays >= 1  # the bad block was a replay
    assert errors[0].step == errors[1].step and errors[0].step > 2
    assert np.abs(errors[0].last_good[0].positions - errors[1].last_good[0].positions).max() < 1e-9
    assert str(errors[0]).split(":")[0] == str(errors[1]).split(":")[0]


def test_changing_blocks_evict_graphs_then_run_eagerly(model, tmp_path):
    """Log and trajectory intervals out of step with the blocks give a new plan at most blocks:
    graphs are evicted (two kept here) and captured again, each replayed after others were
    dropped, and once those recaptures outnumber a quarter of the replays the run goes on
    eagerly, saying why; logs, frames and the trajectory are the eager ones throughout."""
    s = MDSettings(steps=240, timestep_fs=4.0, check_every=4, log_every=3, trajectory_every=5, checkpoint_every=0)
    ref = eager(model, crystal(), s, output=tmp_path / "eager").run()
    md = on_graphs(MolecularDynamics(model, crystal(), s, output=tmp_path / "graphs"), max_graphs=2)
    result = md.run()
    assert md.graphs.captures >= 4 and "multiples or divisors of md.check_every" in md.graphs.failed
    assert np.abs(result.atoms[0].positions - ref.atoms[0].positions).max() < 1e-9
    same_outputs(tmp_path / "eager", tmp_path / "graphs")


def test_readout_without_gathers_equals_the_gathered_one():
    """Inside a CUDA graph a two-element model's networks see every row (no host sync): the
    energies and their gradients are those of the gathered readout."""
    m = BPPotential(["Cu", "Ag"], DescriptorSettings(n_radial=4, n_angular=2), NetworkSettings(hidden=(8,)))
    g = torch.randn(30, m.descriptor.n_features, dtype=torch.float64, requires_grad=True)
    species = torch.tensor([0, 1, 1] * 10)
    a, b = m.readout(g, species, gather=True), m.readout(g, species, gather=False)
    assert torch.allclose(a, b, rtol=1e-14, atol=1e-14)
    (ga,), (gb,) = (torch.autograd.grad(e.sum(), g) for e in (a, b))
    assert torch.allclose(ga, gb, rtol=1e-14, atol=1e-14)


def test_a_two_element_model_replays_the_eager_trajectory():
    """CuAg with an untrained model (energies scaled down so the atoms stay put): on the graph
    path the readout takes its gather-free form, and the run is the eager one."""
    torch.manual_seed(0)
    m = BPPotential(["Cu", "Ag"], DescriptorSettings(n_radial=6, n_angular=2), NetworkSettings(hidden=(16,)))
    with torch.no_grad():
        m.energy_scale.fill_(1e-2)
    m = m.to(TEST_DEVICE)
    atoms = crystal(2, temperature_K=100.0)
    atoms.symbols[::3] = "Ag"
    s = MDSettings(steps=30, timestep_fs=2.0, check_every=5, log_every=5, trajectory_every=0, checkpoint_every=0,
                   safety=Safety(min_distance_A=1e-6))
    ref = eager(m, atoms, s).run()
    md = on_graphs(MolecularDynamics(m, atoms, s))
    seen = []
    readout = BPPotential.readout

    def spy(self, g, species, gather=None):
        seen.append(gather is None and not models._NO_HOST_SYNC.get())
        return readout(self, g, species, gather)

    BPPotential.readout = spy
    try:
        result = md.run()
    finally:
        BPPotential.readout = readout
    assert md.graphs.replays >= 3 and seen and not any(seen)  # every block without gathers
    assert np.abs(result.atoms[0].positions - ref.atoms[0].positions).max() < 1e-9


@pytest.mark.skipif(TEST_DEVICE != "cuda", reason="needs MULTISCALE_TEST_DEVICE=cuda (a GPU)")
def test_a_step_that_cannot_be_captured_runs_eagerly(model):
    """A host synchronisation slipped into the step: graphs go off with the reason, before any
    capture, and the run is the eager one."""
    s = MDSettings(steps=40, timestep_fs=4.0, check_every=5, log_every=0, trajectory_every=0, checkpoint_every=0)
    ref = eager(model, crystal(), s).run()
    md = MolecularDynamics(model, crystal(), s)
    advance = md.graphs.advance
    md.graphs.advance = lambda state, plan: (float(state.energy.sum()), advance(state, plan))[1]
    result = md.run()
    assert md.graphs.captures == 0 and "synchronises with the host" in md.graphs.failed
    assert np.abs(result.atoms[0].positions - ref.atoms[0].positions).max() < 1e-9


@pytest.mark.skipif(TEST_DEVICE != "cuda", reason="needs MULTISCALE_TEST_DEVICE=cuda (a GPU)")
def test_a_capture_that_fails_leaves_the_stream_and_runs_eagerly(model):
    """A synchronisation that sync-debug mode does not report (torch.cuda.synchronize) passes the
    warm-up and breaks the capture: graphs go off naming the cause, the caller's stream is current
    again, and the run is the eager one."""
    s = MDSettings(steps=40, timestep_fs=4.0, check_every=5, log_every=0, trajectory_every=0, checkpoint_every=0)
    ref = eager(model, crystal(), s).run()
    md = MolecularDynamics(model, crystal(), s)
    advance, stream = md.graphs.advance, torch.cuda.current_stream()
    md.graphs.advance = lambda state, plan: (torch.cuda.synchronize(), advance(state, plan))[1]
    result = md.run()
    assert md.graphs.captures == 0 and "a capture failed" in md.graphs.failed
    assert torch.cuda.current_stream() == stream
    assert np.abs(result.atoms[0].positions - ref.atoms[0].positions).max() < 1e-9


def test_a_block_plan_names_its_logged_and_kept_steps():
    plan = Plan.of(start_step=18, n=7, log_every=5, trajectory_every=10, stress=True)
    assert plan == Plan(7, (2, 7), (2,), True)
    assert Plan.of(0, 4, 0, 0, False) == Plan(4, (), (), False)


def test_cuda_graphs_setting_is_checked():
    with pytest.raises(ValueError, match="md.cuda_graphs"):
        MDSettings(cuda_graphs="yes")
