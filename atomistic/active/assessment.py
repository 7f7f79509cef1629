"""How much an active-learning run learned: independent oracle MD frames, and every committee
generation measured on them.

:func:`reference_frames` runs Langevin MD with the oracle itself at each temperature and keeps
evenly spaced frames (made once, then read back from their file). :func:`assess` evaluates every
generation of a finished :class:`~atomistic.active.loop.ActiveLearning` run on those frames: the
test error at one temperature, and the committee disagreement ``d`` against the true error
(calibration), with plots.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.io import read

from atomistic.active.calibration import committee_errors, spearman
from atomistic.active.loop import ActiveLearning
from atomistic.atomic_files import write_csv, write_extxyz
from atomistic.errors import ActiveLearningError
from atomistic.potential.io import load_potential
from atomistic.training.data import label

log = logging.getLogger(__name__)


def reference_frames(start: Atoms, oracle_factory: Callable[[], object], temperatures_K: Sequence[float], *,
                     timestep_fs: float, friction_time_fs: float, equilibration_steps: int,
                     frames_per_temperature: int, interval_steps: int, seed: int, path: Path) -> list[Atoms]:
    """Oracle Langevin MD from ``start`` at each of ``temperatures_K`` (K, in the order given),
    labelled frames with ``info["temperature_K"]``; written to ``path`` (extxyz) once, and read
    from there when it exists.

    At the k-th temperature: momenta from a Maxwell–Boltzmann draw (seed ``seed + k``), then
    Langevin dynamics (time step ``timestep_fs``, friction 1/``friction_time_fs``, noise seed
    ``seed + 100 + k``, no centre-of-mass constraint) for ``equilibration_steps`` steps, then
    ``frames_per_temperature`` frames ``interval_steps`` steps apart. ``oracle_factory()`` gives
    the ASE calculator, one per temperature. Any failure of the oracle raises
    :class:`~atomistic.errors.ActiveLearningError`.
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import thermalize_momenta

    path = Path(path)
    if path.exists():
        return read(path, ":")
    frames = []
    t0 = time.perf_counter()
    for k, temperature in enumerate(temperatures_K):
        atoms = start.copy()
        atoms.calc = oracle_factory()
        thermalize_momenta(atoms, temperature, rng=np.random.default_rng(seed + k))
        dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature,
                       friction=1.0 / (friction_time_fs * units.fs), rng=np.random.default_rng(seed + 100 + k),
                       fixcm=False)
        try:
            dyn.run(equilibration_steps)
            for _ in range(frames_per_temperature):
                dyn.run(interval_steps)
                labelled = label(atoms, atoms.get_potential_energy(), atoms.get_forces())
                labelled.info["temperature_K"] = temperature
                frames.append(labelled)
        except Exception as exc:  # the oracle's own MD must not end in a traceback
            raise ActiveLearningError(f"reference MD at {temperature:g} K: the oracle failed "
                                      f"({type(exc).__name__}: {exc}); the loop's results are kept in "
                                      f"{path.parent}") from exc
    write_extxyz(path, frames)
    log.info("reference data: %d oracle MD frames at %s K in %.1f s", len(frames),
             ", ".join(f"{t:g}" for t in temperatures_K), time.perf_counter() - t0)
    return read(path, ":")


def assess(loop: ActiveLearning, reference: list[Atoms], *, test_temperature_K: float, force_threshold_eV_A: float,
           out: Path, title: str) -> dict:
    """Every generation of ``loop`` on the ``reference`` frames: test errors at
    ``test_temperature_K`` (the frames whose ``info["temperature_K"]`` equals it), and ``d``
    against the true error (calibration: per generation, and pooled over generations, which is
    what the loop's fixed threshold relies on).

    Writes to ``out`` (the loop's folder, which holds ``disagreement.csv``): ``learning.csv``
    (one row per generation), ``disagreement.png`` (with ``force_threshold_eV_A``, eV/Å),
    ``learning.png`` and ``calibration.png``, titled with ``title``. Returns the numbers:
    ``test_temperature_K``, ``test_frames``, ``reference_frames``, ``learning`` (the rows),
    ``test_rmse_ratio`` (last over first generation), ``calibration`` and ``plots`` (paths).
    """
    from atomistic.plots import calibration_plot, disagreement_plot, learning_progress_plot

    out = Path(out)
    target = test_temperature_K
    test = [a.info["temperature_K"] == target for a in reference]
    rows, d_all, err_all, atom_d, atom_err = [], [], [], [], []
    first = last = None
    for g in loop.generations:
        e = committee_errors(load_potential(loop.generation_path(g["generation"])), reference)
        ref, pred = (x.reshape(len(reference), -1)[test] for x in e.force_components)
        rows.append({**{k: g[k] for k in ("generation", "n_labels", "oracle_calls", "fine_tune_s")},
                     "test_force_mae_meV_per_A": 1e3 * float(np.abs(pred - ref).mean()),
                     "test_force_rmse_meV_per_A": 1e3 * float(np.sqrt(((pred - ref) ** 2).mean())),
                     "test_energy_mae_meV_per_atom": 1e3 * float(np.abs(e.energy_error_per_atom[test]).mean()),
                     "spearman_d_error": spearman(e.d, e.max_error)})
        d_all.append(e.d)
        err_all.append(e.max_error)
        atom_d.append(e.atom_disagreement)
        atom_err.append(e.atom_error)
        first = first or e
        last = e
    header = list(rows[0])
    write_csv(out / "learning.csv", header, [[r[k] for k in header] for r in rows])
    ratio = rows[-1]["test_force_rmse_meV_per_A"] / rows[0]["test_force_rmse_meV_per_A"]
    pooled = spearman(np.concatenate(d_all), np.concatenate(err_all))
    calibration = {"pooled_over_generations": {
                       "spearman": pooled, "n_pairs": int(sum(len(d) for d in d_all)),
                       "spearman_atoms": spearman(np.concatenate(atom_d), np.concatenate(atom_err))},
                   "initial": first.summary(), "final": last.summary()}
    log.info("test force RMSE at %g K: %.1f -> %.1f meV/Å (x%.2f) with %d oracle calls; Spearman(d, error): "
             "pooled %.2f, generation 0 %.2f, last %.2f", target, rows[0]["test_force_rmse_meV_per_A"],
             rows[-1]["test_force_rmse_meV_per_A"], ratio, rows[-1]["oracle_calls"], pooled,
             calibration["initial"]["spearman_structures"], calibration["final"]["spearman_structures"])
    trace = np.atleast_1d(np.genfromtxt(out / "disagreement.csv", delimiter=",", names=True))
    plots = {
        "disagreement": disagreement_plot(out / "disagreement.png", trace, force_threshold_eV_A, title=title),
        "learning": learning_progress_plot(out / "learning.png", [r["oracle_calls"] for r in rows],
                                           [r["test_force_rmse_meV_per_A"] for r in rows],
                                           [r["test_force_mae_meV_per_A"] for r in rows],
                                           title=f"{title}: test set at {target:g} K"),
        "calibration": calibration_plot(out / "calibration.png", {
            "generation 0": (first.d, first.max_error),
            f"generation {rows[-1]['generation']}": (last.d, last.max_error),
            }, pooled=pooled, title=f"{title}: reference frames (held out)"),
    }
    return {"test_temperature_K": target, "test_frames": int(sum(test)), "reference_frames": len(reference),
            "learning": rows, "test_rmse_ratio": ratio, "calibration": calibration,
            "plots": {k: str(v) for k, v in plots.items()}}
