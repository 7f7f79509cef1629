"""The library's small shared pieces: one error module, one evaluate, one fixed-atom mask, one
extxyz writer, trajectory model noise and surface-hopping initial conditions."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms, FixBondLengths
from ase.io import read

from atomistic import errors
from atomistic.analysis.thermo import model_noise_variance, trajectory_model_noise
from atomistic.atomic_files import write_extxyz
from atomistic.multistate import AU_MOMENTUM, TULLY_MASS_AMU, particle_initial_conditions, thermal_initial_conditions
from atomistic.potential.committee import evaluate_committee, predict_committee
from atomistic.potential.forces import evaluate, model_inputs, predict
from atomistic.potential.neighbors import build_neighbors
from atomistic.potential.structure import fixed_mask, from_atoms

from .conftest import ROOT


def _cells(n=3):
    out = []
    for k in range(n):
        a = bulk("Cu", "fcc", a=3.6, cubic=True) * (1, 1, 1 + k % 2)
        a.rattle(0.05, seed=k)
        out.append(a)
    return out


def test_errors_live_in_one_module_and_keep_their_old_paths_and_bases():
    from atomistic.active.loop import ActiveLearningError
    from atomistic.active.oracle import OracleFailure
    from atomistic.analysis.saddle import SaddleError
    from atomistic.atomic_files import CheckpointMismatch
    from atomistic.md.monitor import MDBlowUp
    from atomistic.potential.io import ModelFileError
    from atomistic.potential.structure import UnknownSpeciesError
    from atomistic.training.data import DatasetError

    old = [ActiveLearningError, OracleFailure, SaddleError, CheckpointMismatch, MDBlowUp, ModelFileError,
           UnknownSpeciesError, DatasetError]
    assert all(getattr(errors, e.__name__) is e for e in old)
    value_errors = {"CheckpointMismatch", "DatasetError", "ModelFileError", "SaddleError", "UnknownSpeciesError"}
    for e in old:
        assert issubclass(e, ValueError if e.__name__ in value_errors else RuntimeError), e
    assert errors.OracleFailure("timeout", "slow").kind == "timeout"
    assert errors.MDBlowUp("boom", step=3).step == 3


@pytest.mark.parametrize("stress", [False, True])
def test_evaluate_is_from_atoms_neighbours_predict(model, stress):
    frames = _cells()
    member = model.members[0]
    for m, many in ((member, frames), (member, frames[0]), (model, frames)):
        s = from_atoms(many, m.species, device=next(m.parameters()).device, dtype=m.dtype)
        ref = predict(m, s, build_neighbors(s, m.cutoff, m.angular_cutoff), stress=stress)
        got = evaluate(m, many, stress=stress)
        for key in ("energy", "energies", "forces", "stress"):
            a, b = getattr(ref, key), getattr(got, key)
            assert (a is None and b is None) or torch.equal(a, b), key
    s, nbrs = model_inputs(model, frames)
    ref = predict_committee(model, s, nbrs, stress=stress)
    got = evaluate_committee(model, frames, stress=stress)
    for key in ("energy", "forces", "energy_spread", "force_disagreement", "member_energy", "member_forces"):
        assert torch.equal(getattr(ref, key), getattr(got, key)), key


def test_fixed_mask_reads_fixatoms_and_refuses_other_constraints():
    a, b = bulk("Cu", cubic=True), bulk("Cu", cubic=True)
    a.set_constraint(FixAtoms([1, 3]))
    assert fixed_mask(a).tolist() == [False, True, False, True]
    assert fixed_mask([a, b]).tolist() == [False, True, False, True] + [False] * 4
    assert fixed_mask([]).shape == (0,)
    b.set_constraint(FixBondLengths([(0, 1)]))
    with pytest.raises(ValueError, match="FixBondLengths is not supported by relax"):
        fixed_mask([a, b], what="relax")


def test_vibrations_no_longer_import_md():
    """The old cycle md.driver -> analysis.timestep -> analysis.vibrations -> md.driver is gone."""
    code = ("import sys, atomistic.analysis.vibrations, atomistic.analysis.timestep; "
            "assert 'atomistic.md.driver' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_write_extxyz_replaces_or_appends(tmp_path):
    frames = _cells(2)
    for k, a in enumerate(frames):
        a.calc = SinglePointCalculator(a, energy=-1.5 * k, forces=np.full((len(a), 3), 0.25 * k))
        a.info["label_id"] = k
    path = tmp_path / "sub" / "frames.extxyz"
    assert write_extxyz(path, frames) == path
    write_extxyz(path, frames[0])  # replaces
    assert len(read(path, ":")) == 1
    write_extxyz(path, frames, append=True)
    write_extxyz(path, frames[1], append=True, durable=False)
    back = read(path, ":")
    assert [a.info["label_id"] for a in back] == [0, 0, 1, 1]
    np.testing.assert_allclose(back[-1].get_forces(), 0.25)
    assert back[-1].get_potential_energy() == -1.5
    assert not list(path.parent.glob(".*.tmp"))


def test_trajectory_model_noise_is_the_member_energy_variance(model):
    frames = _cells(5)
    p = evaluate_committee(model, frames)
    ref = model_noise_variance(p.member_energy.detach().cpu().numpy())
    got = trajectory_model_noise(model, frames, device=None, dtype=None, batch=2)
    assert got == pytest.approx(ref, rel=1e-12, abs=0)
    assert got > 0


def test_surface_hopping_initial_conditions():
    pos, mom, m = particle_initial_conditions(4, x0_bohr=-10.0, y0_bohr=0.5, momentum_au=20.0)
    assert pos.shape == mom.shape == (4, 1, 3) and pos.dtype == torch.float64
    assert torch.allclose(pos[:, 0, 0], torch.tensor(-10.0 * units.Bohr, dtype=torch.float64))
    assert torch.allclose(mom[:, 0, 0], torch.tensor(20.0 * AU_MOMENTUM, dtype=torch.float64))
    assert m.tolist() == [TULLY_MASS_AMU]
    atoms = molecule("H2O")
    pos, mom, m = thermal_initial_conditions(atoms, 500, temperature_K=300.0, seed=3)
    again = thermal_initial_conditions(atoms, 500, temperature_K=300.0, seed=3)[1]
    assert torch.equal(mom, again) and pos.shape == (500, 3, 3)
    np.testing.assert_allclose(pos[7].numpy(), atoms.positions)
    assert float(mom.sum(1).abs().max()) < 1e-12  # no centre-of-mass drift
    # mean kinetic energy per trajectory: (3N - 3)/2 kB T (momenta in amu Å/fs)
    ke = 0.5 * ((mom.numpy() / units.fs) ** 2 / m[None, :, None]).sum((1, 2))
    assert ke.mean() == pytest.approx(3.0 * units.kB * 300.0, rel=0.1)
    _, rest, _ = thermal_initial_conditions(atoms, 2, temperature_K=0.0, seed=3)
    assert not rest.any()


def test_reference_frames_are_made_once_and_oracle_failures_are_named(tmp_path):
    from ase.calculators.emt import EMT

    from atomistic.active.assessment import reference_frames

    start = bulk("Cu", "fcc", a=3.6, cubic=True)
    options = dict(timestep_fs=2.0, friction_time_fs=100.0, equilibration_steps=3, frames_per_temperature=2,
                   interval_steps=2, seed=1)
    path = tmp_path / "reference.extxyz"
    frames = reference_frames(start, EMT, [300.0, 600.0], path=path, **options)
    assert [a.info["temperature_K"] for a in frames] == [300.0, 300.0, 600.0, 600.0]
    assert np.isfinite(frames[-1].get_forces()).all()

    def broken():
        raise AssertionError("never called: the frames are read back")

    again = reference_frames(start, broken, [300.0, 600.0], path=path, **options)
    np.testing.assert_array_equal(again[-1].positions, frames[-1].positions)

    class Failing(EMT):
        def calculate(self, *args, **kwargs):
            raise RuntimeError("SCF did not converge")

    with pytest.raises(errors.ActiveLearningError, match="reference MD at 300 K: the oracle failed"):
        reference_frames(start, Failing, [300.0], path=tmp_path / "other.extxyz", **options)


def test_the_old_ensemble_names_still_work():
    import atomistic
    from atomistic.active.loop import ActiveLearning, train_committee, train_generation_zero
    from atomistic.analysis.rates import ensemble_rate, rate_band
    from atomistic.potential import committee
    from atomistic.training import committee as training

    assert atomistic.Ensemble is atomistic.Committee is committee.Ensemble is committee.Committee
    assert committee.EnsemblePrediction is committee.CommitteePrediction
    assert committee.predict_ensemble is committee.predict_committee
    assert training.EnsembleSettings is training.CommitteeSettings
    assert training.train_ensemble is training.train_committee
    assert train_committee is train_generation_zero and ensemble_rate is rate_band
    assert isinstance(ActiveLearning.ensemble, property)
