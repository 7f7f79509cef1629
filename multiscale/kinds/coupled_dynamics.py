"""kind = "coupled_dynamics": a coupled body (the tables of kind ``coupled``) solved to its boundary
values, then moved in time: the free atoms and the continuum under one Hamiltonian, velocity
Verlet with lumped masses (:mod:`coupling.dynamics`; ``docs/verification.md``).

``[dynamics]``: ``steps``, ``timestep_fs`` (unset: 1/20 of the shortest period of the coupled
system or of the model's perfect crystal, whichever is shorter), ``temperature_K`` of the free
atoms at the start (Maxwell-Boltzmann, exactly that temperature; ``seed``), ``damping_per_fs`` (0: Hamiltonian
dynamics; above 0 the kinetic energy is taken out and the run settles on the static solution),
``log_every`` and ``frames_every`` (steps). The continuum's density is the crystal's. The
boundary values stay where the static solve put them.

Serial or under ``mpiexec -n N``. Outputs: ``thermo.csv`` (time in fs, the kinetic energy, the
parts of the potential energy, ``total_eV`` (Pi), ``hamiltonian_eV`` and its ``drift_eV`` since
t = 0, the free atoms' temperature), ``energy.png`` (the energy partition and the drift against
time), ``atoms.extxyz`` (positions, velocities, forces, beta, region, body every ``frames_every``
steps), ``fields/`` (every ``output.every`` log lines) and ``report.json`` (the drift per ps over
the initial kinetic energy). A run whose energy turns non-finite stops with the diagnosis,
``thermo.csv`` written up to it. Not resumable yet (``--resume`` is refused).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from atomistic.errors import MDBlowUp

from .. import fe_build
from ..outputs import Report, write_extxyz, write_rows
from . import Kind, RunContext
from .coupled import CoupledCase, build_problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DynamicsConfig:
    """``[dynamics]``: number of steps, time step (fs; unset: automatic), initial temperature of
    the free atoms (K) and its ``seed``, velocity damping rate (1/fs), thermo and frame intervals
    (steps)."""

    steps: int
    timestep_fs: float | None = None
    temperature_K: float = 0.0
    seed: int = 0
    damping_per_fs: float = 0.0
    log_every: int = 10
    frames_every: int = 100

    def __post_init__(self):
        if self.timestep_fs is not None and not (np.isfinite(self.timestep_fs) and self.timestep_fs > 0):
            raise ValueError(f"dynamics.timestep_fs = {self.timestep_fs!r}: expected a positive time step in fs")
        for name in ("steps", "log_every", "frames_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"dynamics.{name} = {getattr(self, name)!r}: expected a positive number of steps")
        if not (np.isfinite(self.temperature_K) and self.temperature_K >= 0):
            raise ValueError(f"dynamics.temperature_K = {self.temperature_K!r}: expected a temperature >= 0 K")
        if not (np.isfinite(self.damping_per_fs) and self.damping_per_fs >= 0):
            raise ValueError(f"dynamics.damping_per_fs = {self.damping_per_fs!r}: expected a rate >= 0 (1/fs)")


@dataclass(frozen=True, kw_only=True)
class CoupledDynamicsCase(CoupledCase):
    """kind = "coupled_dynamics": the tables of :class:`~multiscale.kinds.coupled.CoupledCase` and
    ``[dynamics]``."""

    kind: Literal["coupled_dynamics"]
    dynamics: DynamicsConfig

    def __post_init__(self):
        super().__post_init__()
        if self.solver.control != "load":
            raise ValueError("solver.control: a coupled_dynamics case is solved to its boundary values (control = "
                             "\"load\") before its dynamics")


def run(case: CoupledDynamicsCase, ctx: RunContext) -> dict:
    return fe_build.run_on_every_rank(_run, case, ctx)


def _run(case: CoupledDynamicsCase, ctx: RunContext, comm) -> dict:
    from ase.data import atomic_masses, atomic_numbers

    from continuum.output import FieldWriter
    from coupling.dynamics import CoupledDynamics, crystal_density_amu_A3

    report, out, dyn_cfg = Report(case), ctx.out, case.dynamics
    body = fe_build.build_body(case, ctx.case_dir, comm)
    problem = build_problem(case, body, comm)
    t0 = time.perf_counter()
    problem.solve(case.solver.steps)
    report.timings_s["static"] = time.perf_counter() - t0
    m = case.material
    density = crystal_density_amu_A3(float(atomic_masses[atomic_numbers[m.symbol]]), m.lattice, body.a0_A)
    dynamics = CoupledDynamics(problem, density, dyn_cfg.timestep_fs, damping_per_fs=dyn_cfg.damping_per_fs)
    if dyn_cfg.timestep_fs is None:  # the coupled system's step; the perfect crystal's if that is shorter
        dynamics.set_timestep(_automatic_timestep(case, body, dynamics, comm))
    dynamics.set_temperature(dyn_cfg.temperature_K, seed=dyn_cfg.seed)
    trajectory = out / "atoms.extxyz"
    if comm.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        trajectory.unlink(missing_ok=True)

    def frame() -> None:
        snapshot = dynamics.atoms()
        if snapshot is not None:
            snapshot.info["time_fs"] = dynamics.time_fs
            write_extxyz(trajectory, [snapshot], append=True)

    def row() -> dict:
        e = dynamics.energies()
        return {"time_fs": dynamics.time_fs, "step": dynamics.steps_done,
                **{f"{k}_eV": v for k, v in e.items() if k not in ("hamiltonian", "total")},
                "total_eV": e["total"], "hamiltonian_eV": e["hamiltonian"], "free_atoms_K":
                dynamics.free_atom_temperature_K()}

    rows = [row()]
    h0, kinetic0 = rows[0]["hamiltonian_eV"], rows[0]["kinetic_eV"]
    rows[0]["drift_eV"] = 0.0
    t0 = time.perf_counter()
    with FieldWriter(problem, out / "fields", case.output.format) as writer:
        writer.write(0.0)
        frame()
        done, lines = 0, 0
        while done < dyn_cfg.steps:
            n = min(dyn_cfg.log_every, dyn_cfg.steps - done)
            dynamics.run(n)
            done += n
            lines += 1
            r = row()
            if not np.isfinite(r["hamiltonian_eV"]):
                if comm.rank == 0:
                    write_rows(out / "thermo.csv", rows)
                raise MDBlowUp(f"coupled dynamics: the energy is {r['hamiltonian_eV']} at step {done} (t = "
                               f"{dynamics.time_fs:g} fs); thermo.csv holds the steps before it and {trajectory} "
                               "the frames. Try a smaller dynamics.timestep_fs", step=done)
            r["drift_eV"] = r["hamiltonian_eV"] - h0
            rows.append(r)
            if done % dyn_cfg.frames_every == 0 or done == dyn_cfg.steps:
                frame()
            if lines % case.output.every == 0 or done == dyn_cfg.steps:
                writer.write(dynamics.time_fs)
    report.timings_s["dynamics"] = time.perf_counter() - t0
    t_ps = np.array([r["time_fs"] for r in rows]) * 1e-3
    drift = np.array([r["drift_eV"] for r in rows])
    slope = float(np.polyfit(t_ps, drift, 1)[0]) if len(rows) > 2 else 0.0
    results = {"ranks": comm.size, "atoms": problem.regions(), "lattice_constant_A": body.a0_A,
               "density_amu_A3": density, "timestep_fs": dynamics.timestep_fs, "steps": dynamics.steps_done,
               "time_fs": dynamics.time_fs,
               "initial_kinetic_eV": kinetic0, "final": rows[-1],
               "drift": {"slope_eV_ps": slope, "largest_eV": float(np.abs(drift).max()),
                         "slope_per_ps_over_initial_kinetic": slope / kinetic0 if kinetic0 > 0 else None},
               "ms_per_step": 1e3 * report.timings_s["dynamics"] / max(dynamics.steps_done, 1),
               "timings_s": dict(problem.timings)}
    if comm.rank == 0:
        write_rows(out / "thermo.csv", rows)
        _energy_plot(out / "energy.png", rows, case.name)
    return report.write(out, results, on_this_rank=comm.rank == 0)


def _automatic_timestep(case, body, dynamics, comm) -> float:
    """1/20 of the shortest period of the coupled system (its atoms, elements and blending: what
    ``dynamics`` found) and of the model's perfect crystal (the atoms' own estimate, as the MD
    engine takes it), whichever is shorter (fs); both are logged."""
    from ase.build import bulk

    from atomistic.analysis.timestep import suggest_timestep
    from coupling.dynamics import TIMESTEP_FRACTION

    crystal = None
    if comm.rank == 0:
        m = case.material
        cell = bulk(m.symbol, m.lattice, a=body.a0_A, cubic=True).repeat(3)
        crystal = suggest_timestep(body.model, cell, fraction=TIMESTEP_FRACTION, relax=False).period_fs
    crystal = comm.bcast(crystal, root=0)
    periods = {"coupled system": 2 * np.pi / dynamics.highest_frequency_per_fs, "perfect crystal": crystal}
    timestep = TIMESTEP_FRACTION * min(periods.values())
    log.info("dynamics.timestep_fs = %.3g fs: 1/%d of the shortest period (%s)", timestep, round(1 / TIMESTEP_FRACTION),
             ", ".join(f"{k} {v:.4g} fs" for k, v in periods.items()))
    return timestep


def _energy_plot(path, rows: list[dict], name: str):
    """The energy parts against time (their change since t = 0: the ones that change) and the
    drift of the Hamiltonian."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atomistic.plots import save_png

    t = np.array([r["time_fs"] for r in rows])
    fig, (parts, drift) = plt.subplots(2, 1, figsize=(7.0, 5.5), sharex=True)
    labels = {"total": "potential energy Pi", "hamiltonian": "H = kinetic + Pi"}
    for key in rows[0]:
        if key.endswith("_eV") and key not in ("drift_eV", "external_eV"):
            values = np.array([r[key] for r in rows]) - rows[0][key]
            if np.ptp(values) > 1e-9 or key == "hamiltonian_eV":
                parts.plot(t, values, label=labels.get(key[:-3], key[:-3]), lw=2 if key == "hamiltonian_eV" else 1)
    parts.set_ylabel("change since t = 0 (eV)")
    parts.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8)
    drift.plot(t, [r["drift_eV"] for r in rows], color="k")
    drift.set_ylabel("H(t) - H(0) (eV)")
    drift.set_xlabel("time (fs)")
    parts.set_title(f"{name}: coupled dynamics")
    return save_png(fig, path)


KIND = Kind("coupled_dynamics", CoupledDynamicsCase, run, parallel=True)
