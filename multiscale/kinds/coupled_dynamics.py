"""kind = "coupled_dynamics": a coupled body (the tables of kind ``coupled``) solved to its boundary
values, then moved in time: the free atoms and the continuum under one Hamiltonian, B A O A B
with lumped masses (:mod:`coupling.dynamics`; ``docs/verification.md``).

``[dynamics]``: ``steps``, ``timestep_fs`` (unset: 1/20 of the shortest period of the coupled
system or of the model's perfect crystal, whichever is shorter; a given one is refused above the
stable limit), ``temperature_K`` of the free atoms at the start (Maxwell-Boltzmann, exactly that
temperature; ``seed``) and the target of the ``thermostat`` of the core ("none", "langevin",
"bussi"; ``thermostat_time_fs``), ``stadium_A`` and ``stadium_time_fs`` (the absorbing layer of
free atoms next to the handshake, no wider than it), ``dashpots`` (outer faces whose waves leave),
``damping_per_fs`` (a friction on everything: the run settles on the static solution),
``[[dynamics.velocity]]`` (a boundary moved at ``velocity_A_ps``, reached over ``ramp_fs``),
``[dynamics.pulse]`` (a longitudinal pulse or wave packet launched at the start; a "bar" wave
carries its lateral contraction about the middle of the section),
``log_every``, ``frames_every`` and ``checkpoint_every`` (steps). The continuum's density is the
crystal's; its law is "cauchy-born" or, for hot runs of many ps, "linear" (the Cauchy-Born
expansion is unbounded below at large strains, which thermal atoms find in the softest handshake
elements once in a while).

Serial or under ``mpiexec -n N``; ``--resume`` continues a run that was stopped from its last
checkpoint and ends with the numbers of an uninterrupted one (bit for bit, the thermostat's noise
included). Outputs: ``thermo.csv`` (time in fs, the kinetic energy by part, the parts of the
potential energy, ``total_eV`` (Pi), ``hamiltonian_eV``, ``bath_eV`` (taken out by frictions and
thermostats), ``boundary_work_eV`` (done by the velocity loads), ``conserved_eV`` and its
``drift_eV`` since t = 0, the free atoms' temperature), ``energy.png`` (the energy partition and
the drift), ``temperature.png`` (with a thermostat or a stadium: the free atoms' temperature
against their distance from the handshake over the run's second half), ``atoms.extxyz``
(positions, velocities, forces, beta, region, body every ``frames_every`` steps), ``fields/``
(displacement, velocity, stress every ``output.every`` log lines) and ``report.json``. A run
whose energy turns non-finite stops with the diagnosis, ``thermo.csv`` written up to it.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from atomistic.errors import MDBlowUp

from .. import dynamic_pull, fe_build
from ..fe_checkpoint import layout
from ..outputs import Report, write_extxyz, write_rows
from . import Kind, OutputStep, RunContext, drain
from .coupled import CoupledCase, open_run

log = logging.getLogger(__name__)

AXES = ("x", "y", "z")
FACES = ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")


@dataclass(frozen=True)
class VelocityConfig:
    """``[[dynamics.velocity]]``: ``boundary`` moves at ``velocity_A_ps`` (Å/ps, x y z; a zero
    component stays where it is), reached linearly over ``ramp_fs``. The boundary must be a
    ``[[boundary]]`` of type displacement that holds the components it moves."""

    boundary: str
    velocity_A_ps: tuple[float, float, float]
    ramp_fs: float = 0.0

    def __post_init__(self):
        where = f"dynamics.velocity on {self.boundary!r}"
        if not all(np.isfinite(self.velocity_A_ps)) or not any(self.velocity_A_ps):
            raise ValueError(f"{where}: velocity_A_ps = {list(self.velocity_A_ps)}: expected finite velocities in "
                             "Å/ps, not all zero")
        if not (np.isfinite(self.ramp_fs) and self.ramp_fs >= 0):
            raise ValueError(f"{where}: ramp_fs = {self.ramp_fs!r}: expected a time >= 0 fs")


@dataclass(frozen=True)
class PulseConfig:
    """``[dynamics.pulse]``: a longitudinal pulse along ``axis`` centred at ``centre_A`` (Å, a
    coordinate along the axis), Gaussian of standard deviation ``width_A``, ``amplitude_A``, with
    a carrier of ``wavelength_A`` (a wave packet; unset: a broadband pulse), running towards
    ``direction`` (+1 or -1) at the speed of the ``wave``: "bulk" (sqrt(C_aa / rho), a laterally
    confined medium) or "bar" (sqrt(E_a / rho), free lateral surfaces)."""

    centre_A: float
    width_A: float
    amplitude_A: float
    axis: Literal["x", "y", "z"] = "x"
    wavelength_A: float | None = None
    direction: int = 1
    wave: Literal["bulk", "bar"] = "bulk"

    def __post_init__(self):
        for name in ("width_A",) + (("wavelength_A",) if self.wavelength_A is not None else ()):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"dynamics.pulse.{name} = {value!r}: expected a positive length in Å")
        if not (np.isfinite(self.amplitude_A) and self.amplitude_A != 0):
            raise ValueError(f"dynamics.pulse.amplitude_A = {self.amplitude_A!r}: expected a nonzero length in Å "
                             "(its sign is the pulse's polarity)")
        if not np.isfinite(self.centre_A):
            raise ValueError(f"dynamics.pulse.centre_A = {self.centre_A!r}: expected a coordinate in Å")
        if self.direction not in (1, -1):
            raise ValueError(f"dynamics.pulse.direction = {self.direction!r}: expected 1 or -1")

    def lateral(self, C_GPa) -> tuple[float, float, float]:
        """The lateral strain per axial strain: ``S_aj / S_aa`` for a bar wave, zeros in bulk."""
        from coupling.dynamics_settings import lateral_ratios

        return (0.0, 0.0, 0.0) if self.wave == "bulk" else lateral_ratios(C_GPa, AXES.index(self.axis))

    def speed_A_fs(self, C_GPa, density_amu_A3: float) -> float:
        """The wave's speed (Å/fs) from the continuum's Voigt constants in the mesh's axes (GPa)."""
        from coupling.dynamics_settings import wave_speed_A_fs

        return wave_speed_A_fs(C_GPa, density_amu_A3, AXES.index(self.axis), self.wave)


@dataclass(frozen=True)
class DynamicsConfig:
    """``[dynamics]``: see the module's documentation. Times in fs, rates in 1/fs, lengths in Å."""

    steps: int
    timestep_fs: float | None = None
    temperature_K: float = 0.0
    seed: int = 0
    thermostat: Literal["none", "langevin", "bussi"] = "none"
    thermostat_time_fs: float = 100.0
    stadium_A: float = 0.0
    stadium_time_fs: float = 25.0
    dashpots: tuple[str, ...] = ()
    damping_per_fs: float = 0.0
    velocity: tuple[VelocityConfig, ...] = ()
    pulse: PulseConfig | None = None
    log_every: int = 10
    frames_every: int = 100
    checkpoint_every: int = 500

    def __post_init__(self):
        if self.timestep_fs is not None and not (np.isfinite(self.timestep_fs) and self.timestep_fs > 0):
            raise ValueError(f"dynamics.timestep_fs = {self.timestep_fs!r}: expected a positive time step in fs")
        for name in ("steps", "log_every", "frames_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"dynamics.{name} = {getattr(self, name)!r}: expected a positive number of steps")
        if self.frames_every % self.log_every:
            raise ValueError(f"dynamics.frames_every = {self.frames_every}: expected a multiple of dynamics.log_every "
                             f"({self.log_every}; frames are written at thermo lines)")
        if self.seed < 0:
            raise ValueError(f"dynamics.seed = {self.seed}: expected an integer >= 0")
        if not (np.isfinite(self.temperature_K) and self.temperature_K >= 0):
            raise ValueError(f"dynamics.temperature_K = {self.temperature_K!r}: expected a temperature >= 0 K")
        for name in ("damping_per_fs", "stadium_A"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"dynamics.{name} = {getattr(self, name)!r}: expected a value >= 0")
        for name in ("thermostat_time_fs", "stadium_time_fs"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"dynamics.{name} = {getattr(self, name)!r}: expected a positive time in fs")
        unknown = [f for f in self.dashpots if f not in FACES]
        if unknown or len(set(self.dashpots)) != len(self.dashpots):
            raise ValueError(f"dynamics.dashpots = {list(self.dashpots)}: expected distinct outer faces of the box, "
                             f"some of {list(FACES)}")


@dataclass(frozen=True, kw_only=True)
class CoupledDynamicsCase(CoupledCase):
    """kind = "coupled_dynamics": the tables of :class:`~multiscale.kinds.coupled.CoupledCase` and
    ``[dynamics]``."""

    kind: Literal["coupled_dynamics"]
    dynamics: DynamicsConfig
    #: "linear" too: the model's C, convex at any strain, for hot runs of many ps at small strains
    #: (the Cauchy-Born energy, a third-order expansion, is unbounded below at large strains, which
    #: the thermal atoms find in the softest handshake elements once in a while)
    LAWS: ClassVar[tuple[str, ...]] = ("cauchy-born", "linear")

    def __post_init__(self):
        super().__post_init__()
        if self.solver.control != "load":
            raise ValueError("solver.control: a coupled_dynamics case is solved to its boundary values (control = "
                             "\"load\") before its dynamics")
        d = self.dynamics
        if d.stadium_A > self.atoms.handshake_A:
            raise ValueError(f"dynamics.stadium_A = {d.stadium_A:g} Å: wider than the handshake (atoms.handshake_A "
                             f"= {self.atoms.handshake_A:g} Å); the absorbing layer lies in the free atoms next to it")
        held = {b.name: b for b in self.boundary if b.type == "displacement"}
        for load in d.velocity:
            b = held.get(load.boundary)
            if b is None:
                raise ValueError(f"dynamics.velocity: boundary {load.boundary!r} has no displacement condition; "
                                 f"expected one of {sorted(held)} (a [[boundary]] of type displacement)")
            loose = [AXES[c] for c, v in enumerate(load.velocity_A_ps) if v != 0 and b.value_A[c] == "free"]
            if loose:
                raise ValueError(f"dynamics.velocity on {load.boundary!r}: component(s) {loose} are free in its "
                                 "displacement condition; a velocity load moves held components only")
        on_held = sorted(f for f in d.dashpots if f in held and "free" not in held[f].value_A)
        if on_held:
            raise ValueError(f"dynamics.dashpots = {list(d.dashpots)}: {on_held} are held in all three components by "
                             "displacement conditions, where a dashpot does nothing; put dashpots on faces that move")
        moved = [load.boundary for load in d.velocity]
        if len(set(moved)) != len(moved):
            raise ValueError(f"dynamics.velocity: boundaries {moved}: each boundary moves at one velocity (one "
                             "[[dynamics.velocity]] table per boundary)")


def run(case: CoupledDynamicsCase, ctx: RunContext) -> dict:
    return drain(iterate(case, ctx))


def iterate(case: CoupledDynamicsCase, ctx: RunContext):
    """The run as a generator: an :class:`~multiscale.kinds.OutputStep` at every thermo line (t = 0
    included, unless resumed); returns the report."""
    return (yield from fe_build.iterate_on_every_rank(_run, case, ctx))


def _dynamics(case: CoupledDynamicsCase, body, problem, comm):
    """The :class:`~coupling.dynamics.CoupledDynamics` of ``case`` at its time step (the automatic
    one when none is given)."""
    from ase.data import atomic_masses, atomic_numbers

    from coupling.dynamics import CoupledDynamics, Stadium, Thermostat, VelocityLoad, crystal_density_amu_A3

    d, m = case.dynamics, case.material
    density = crystal_density_amu_A3(float(atomic_masses[atomic_numbers[m.symbol]]), m.lattice, body.a0_A)
    thermostat = None if d.thermostat == "none" else Thermostat(d.thermostat, d.temperature_K, d.thermostat_time_fs)
    stadium = Stadium(d.stadium_A, d.stadium_time_fs) if d.stadium_A > 0 else None
    loads = tuple(VelocityLoad(v.boundary, tuple(c if c != 0 else None for c in v.velocity_A_ps), v.ramp_fs)
                  for v in d.velocity)
    dynamics = CoupledDynamics(problem, density, d.timestep_fs, damping_per_fs=d.damping_per_fs,
                               thermostat=thermostat, stadium=stadium, dashpots=d.dashpots,
                               elastic_constants_GPa=body.tensor.C, loads=loads, seed=d.seed)
    if d.timestep_fs is None:  # the coupled system's step; the perfect crystal's if that is shorter
        dynamics.set_timestep(_automatic_timestep(case, body, dynamics, comm))
    return dynamics, density


def _run(case: CoupledDynamicsCase, ctx: RunContext, comm) -> Generator[OutputStep, None, dict]:
    from dolfinx import fem
    from mpi4py import MPI

    from continuum.output import FieldWriter
    from coupling.dynamics import Pulse

    report, out, dyn_cfg = Report(case), ctx.out, case.dynamics
    checkpoints, body, problem = open_run(case, ctx, comm)
    if checkpoints.finished:
        return checkpoints.finished_report(out)
    t0 = time.perf_counter()
    problem.solve(case.solver.steps)
    report.timings_s["static"] = time.perf_counter() - t0
    dynamics, density = _dynamics(case, body, problem, comm)
    pulse = dyn_cfg.pulse
    if pulse is not None:
        speed = pulse.speed_A_fs(body.tensor.C, density)
        log.info("pulse: %s wave along %s at %.4g Å/fs (%.0f m/s)", pulse.wave, pulse.axis, speed, speed * 1e5)
    trajectory = out / "atoms.extxyz"
    velocity = fem.Function(problem.V, name="velocity_A_fs")
    profile = _TemperatureProfile(dynamics) if (dyn_cfg.thermostat != "none" or dyn_cfg.stadium_A > 0) else None
    watched = (body.pulled, tuple(body.interfaces))

    def frame() -> None:
        snapshot = dynamics.atoms()
        if snapshot is not None:
            snapshot.info["time_fs"] = dynamics.time_fs
            write_extxyz(trajectory, [snapshot], append=True)

    def fields(writer) -> None:
        velocity.x.array[: problem.n_fe] = dynamics.nodal_velocity()
        velocity.x.scatter_forward()
        writer.write(dynamics.time_fs)

    def row() -> dict:
        e = dynamics.energies()
        skip = ("hamiltonian", "total", "bath", "boundary_work", "conserved")
        return {"time_fs": dynamics.time_fs, "step": dynamics.steps_done,
                **{f"{k}_eV": v for k, v in e.items() if k not in skip},
                **{f"{k}_eV": e[k] for k in skip}, "free_atoms_K": dynamics.free_atom_temperature_K(),
                **dynamic_pull.columns(dynamics, *watched)}

    def output_step() -> OutputStep:
        return OutputStep(dynamics.steps_done, dynamics.time_fs, dict(rows[-1]), dynamics)

    def save(written: bool) -> None:
        local, shared = dynamics.state()
        extra = {**shared, "profile": None if profile is None else profile.state(),
                 "trajectory_bytes": trajectory.stat().st_size if comm.rank == 0 and trajectory.exists() else None}
        checkpoints.save(dynamics.steps_done, (dynamics.time_fs, local), written=written, increments=(0.0, 0.0),
                         rows=rows, wall_s=time.perf_counter() - report.started, layout_hash=here, extra=extra)
        if comm.rank == 0:
            write_rows(out / "thermo.csv", rows)

    here = layout(problem)
    meta = checkpoints.meta
    if comm.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(out / "fields", ignore_errors=True)  # rewritten by every run, a resumed one included
        if meta is None:
            trajectory.unlink(missing_ok=True)
    comm.barrier()
    t0 = time.perf_counter()
    with FieldWriter(problem, out / "fields", case.output.format, velocity=velocity) as writer:
        if meta is None:
            dynamics.set_temperature(dyn_cfg.temperature_K, seed=dyn_cfg.seed)
            if pulse is not None:  # a bar wave about the middle of the body's section
                x = problem.domain.mesh.geometry.x
                centre = 0.5 * (comm.allreduce(x.min(axis=0), op=MPI.MIN) + comm.allreduce(x.max(axis=0), op=MPI.MAX))
                dynamics.launch(Pulse(AXES.index(pulse.axis), pulse.centre_A, pulse.width_A, pulse.amplitude_A,
                                      pulse.wavelength_A, pulse.direction, lateral=pulse.lateral(body.tensor.C),
                                      lateral_centre_A=tuple(float(c) for c in centre)), speed)
            rows = [row()]
            rows[0]["drift_eV"] = 0.0
            fields(writer)
            frame()
            save(written=True)
            yield output_step()
        else:
            checkpoints.check_layout(problem)
            for _, _, file in meta["written"]:  # the fields so far, again
                dynamics.restore(checkpoints.load_state(file), _shared(meta, file))
                fields(writer)
            dynamics.restore(checkpoints.load_state(meta["state"]), meta["extra"])
            if profile is not None:
                profile.restore(meta["extra"]["profile"])
            rows = list(meta["rows"])
            report.started -= meta["wall_s"]
            _trim_frames(trajectory, meta["extra"].get("trajectory_bytes"), comm)
        c0 = rows[0]["conserved_eV"]
        kinetic0 = rows[0]["kinetic_eV"]
        lines, saved = len(rows) - 1, dynamics.steps_done
        while dynamics.steps_done < dyn_cfg.steps:
            done = dynamics.steps_done
            try:
                dynamics.run(min(dyn_cfg.log_every - done % dyn_cfg.log_every, dyn_cfg.steps - done))
                done = dynamics.steps_done
                lines += 1
                r = row()
                if not np.isfinite(r["hamiltonian_eV"]):
                    raise MDBlowUp(f"coupled dynamics: the energy is {r['hamiltonian_eV']} at step {done} (t = "
                                   f"{dynamics.time_fs:g} fs)", step=done)
            except MDBlowUp as exc:
                if comm.rank == 0:
                    write_rows(out / "thermo.csv", rows)
                raise MDBlowUp(f"{exc.diagnosis}. thermo.csv holds the lines before it, {trajectory} the frames and "
                               f"{out / 'checkpoint'} the last checkpointed state (step {saved}). Try a smaller "
                               "dynamics.timestep_fs or a gentler load", step=exc.step) from None
            r["drift_eV"] = r["conserved_eV"] - c0
            rows.append(r)
            if profile is not None and done > dyn_cfg.steps // 2:
                profile.add()
            if done % dyn_cfg.frames_every == 0 or done == dyn_cfg.steps:
                frame()
            written = lines % case.output.every == 0 or done == dyn_cfg.steps
            if written:
                fields(writer)
            if written or done - saved >= dyn_cfg.checkpoint_every:
                save(written)
                saved = done
            yield output_step()
    report.timings_s["dynamics"] = time.perf_counter() - t0
    results = _results(case, body, problem, dynamics, density, rows, kinetic0, report, comm)
    if comm.rank == 0:
        write_rows(out / "thermo.csv", rows)
        _energy_plot(out / "energy.png", rows, case.name)
    if profile is not None:
        results["temperature_profile"] = profile.summary(out / "temperature.png", case, comm)
    pull = dynamic_pull.debonding(rows, case, body.interfaces)
    if pull is not None:
        results["debonding"] = dynamic_pull.report(pull)
        if comm.rank == 0:
            dynamic_pull.debonding_plot(out / "debonding.png", pull, case.name)
    written = report.write(out, {**results, "finished": True}, on_this_rank=comm.rank == 0)
    checkpoints.finish()
    return written


def _shared(meta: dict, file: str) -> dict:
    """The shared values of a written state: its time (from the checkpoint's list) and the rest
    as now (the noise generator is restored from the last state afterwards)."""
    step, time_fs = next((w[0], w[1]) for w in meta["written"] if w[2] == file)
    return {**meta["extra"], "time_fs": time_fs, "steps": step}


def _trim_frames(trajectory: Path, size: int | None, comm) -> None:
    """Cut the frames back to the ``size`` (bytes) they had at the checkpoint resumed from: what
    was appended after it (a frame cut off by the kill included) goes."""
    if comm.rank == 0 and size is not None and trajectory.exists():
        with open(trajectory, "r+b") as f:
            f.truncate(size)


def _results(case, body, problem, dynamics, density, rows, kinetic0, report, comm) -> dict:
    t_ps = np.array([r["time_fs"] for r in rows]) * 1e-3
    drift = np.array([r["drift_eV"] for r in rows])
    slope = float(np.polyfit(t_ps, drift, 1)[0]) if len(rows) > 2 else 0.0
    half = rows[len(rows) // 2:]
    temperature = np.array([r["free_atoms_K"] for r in half])
    return {"ranks": comm.size, "atoms": problem.regions(), "lattice_constant_A": body.a0_A,
            "C_GPa": np.round(body.tensor.C, 4).tolist(), "density_amu_A3": density,
            "timestep_fs": dynamics.timestep_fs, "steps": dynamics.steps_done,
            "time_fs": dynamics.time_fs, "initial_kinetic_eV": kinetic0, "final": rows[-1],
            "drift": {"slope_eV_ps": slope, "largest_eV": float(np.abs(drift).max()),
                      "slope_per_ps_over_initial_kinetic": slope / kinetic0 if kinetic0 > 0 else None},
            "free_atoms_K_second_half": {"mean": float(temperature.mean()), "std": float(temperature.std())},
            "bath_eV": rows[-1]["bath_eV"], "boundary_work_eV": rows[-1]["boundary_work_eV"],
            "ms_per_step": 1e3 * report.timings_s["dynamics"] / max(dynamics.steps_done, 1),
            "timings_s": dict(problem.timings)}


class _TemperatureProfile:
    """The free atoms' kinetic energy averaged over time, binned by distance from the handshake
    (1 Å bins): is there a hot or cold band next to it?"""

    def __init__(self, dynamics):
        self.dynamics = dynamics
        p = dynamics.problem
        self.distance = dynamics.free_atom_distance_A() if p.on_atoms else None
        self.sum = np.zeros(p.n_free if p.on_atoms else 0)
        self.samples = 0

    def add(self) -> None:
        p = self.dynamics.problem
        if p.on_atoms:
            v = self.dynamics.velocities_A_fs[p.n_fe:].reshape(-1, 3)
            m = p.region.masses[p.region.free]
            self.sum += m * (v**2).sum(axis=1)
        self.samples += 1

    def state(self) -> dict:
        p = self.dynamics.problem
        total = p.comm.bcast(self.sum.tolist() if p.on_atoms else None, root=p.atom_rank)
        return {"sum": total, "samples": self.samples}

    def restore(self, state: dict) -> None:
        if self.dynamics.problem.on_atoms:
            self.sum = np.array(state["sum"], dtype=float)
        self.samples = int(state["samples"])

    def summary(self, path: Path, case, comm) -> dict | None:
        """Bins (distance Å, temperature K, atoms), the core's mean and the plot (atom rank's
        numbers on every rank)."""
        from ase import units

        p = self.dynamics.problem
        out = None
        if p.on_atoms and self.samples:
            per_atom = self.sum / self.samples / (3 * units.kB) / units.fs**2  # K
            edges = np.arange(0.0, np.ceil(self.distance.max()) + 1.0, 1.0)
            which = np.clip(np.digitize(self.distance, edges) - 1, 0, len(edges) - 2)
            bins = [(float(edges[k] + 0.5), float(per_atom[which == k].mean()), int((which == k).sum()))
                    for k in range(len(edges) - 1) if np.any(which == k)]
            target = case.dynamics.temperature_K
            out = {"distance_A": [b[0] for b in bins], "temperature_K": [b[1] for b in bins],
                   "atoms": [b[2] for b in bins], "mean_K": float(per_atom.mean()), "target_K": target,
                   "samples": self.samples}
        out = comm.bcast(out, root=p.atom_rank)
        if out is not None and comm.rank == 0:
            _profile_plot(path, out, case)
        return out


def _profile_plot(path: Path, profile: dict, case) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atomistic.plots import save_png

    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    ax.plot(profile["distance_A"], profile["temperature_K"], "o-", label="free atoms (time average)")
    target = profile["target_K"]
    if target > 0:
        ax.axhline(target, color="k", lw=1, label=f"target {target:g} K")
        ax.axhspan(0.9 * target, 1.1 * target, color="0.9", label="±10 %")
    if case.dynamics.stadium_A > 0:
        ax.axvspan(0.0, case.dynamics.stadium_A, color="tab:orange", alpha=0.15, label="stadium layer")
    ax.set_xlabel("distance from the handshake into the core (Å)")
    ax.set_ylabel("temperature (K)")
    ax.set_title(f"{case.name}: temperature profile, second half of the run")
    ax.legend(frameon=False, fontsize=8)
    return save_png(fig, path)


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
    drift of the conserved energy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atomistic.plots import save_png

    t = np.array([r["time_fs"] for r in rows])
    fig, (parts, drift) = plt.subplots(2, 1, figsize=(7.0, 5.5), sharex=True)
    labels = {"total": "potential energy Pi", "hamiltonian": "H = kinetic + Pi", "bath": "taken out by the baths",
              "boundary_work": "work of the moving boundaries", "conserved": "H + bath - work"}
    for key in rows[0]:
        if key.endswith("_eV") and key not in ("drift_eV", "external_eV"):
            values = np.array([r[key] for r in rows]) - rows[0][key]
            if np.ptp(values) > 1e-9 or key == "hamiltonian_eV":
                parts.plot(t, values, label=labels.get(key[:-3], key[:-3]), lw=2 if key == "hamiltonian_eV" else 1)
    parts.set_ylabel("change since t = 0 (eV)")
    parts.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8)
    drift.plot(t, [r["drift_eV"] for r in rows], color="k")
    drift.set_ylabel("drift of H + bath - work (eV)")
    drift.set_xlabel("time (fs)")
    parts.set_title(f"{name}: coupled dynamics")
    return save_png(fig, path)


KIND = Kind("coupled_dynamics", CoupledDynamicsCase, run, parallel=True, resumable=True, iterate=iterate)
