"""Molecular dynamics under LAMMPS with our model: :class:`~atomistic.md.MDSettings` mapped onto
LAMMPS's integrators, with the outputs of our own engine (``thermo.csv``, ``trajectory.extxyz``,
``md.json`` with the NVE drift report, ``thermo.png``) plus LAMMPS's ``log.lammps``.

The ensembles, as LAMMPS runs them:
    nve                        ``fix nve`` (velocity Verlet, as ours)
    nvt, thermostat langevin   ``fix nve`` + ``fix langevin`` (damping = thermostat.time_fs)
    nvt, thermostat bussi      ``fix nve`` + ``fix temp/csvr`` (Bussi's stochastic rescaling, as ours)
    npt                        ``fix npt``: Martyna-Tobias-Klein Nose-Hoover chains, ``iso`` or
                               ``aniso`` (thermostat.time_fs and barostat.time_fs as damping times);
                               ours is stochastic cell rescaling: the same ensemble, other dynamics

Every rank calls :func:`run_lammps_md` alike (it is collective); rank 0 writes the files.
Checkpoints are ours (``checkpoint.pt``: positions, velocities, cell, step, the outputs' sizes,
written atomically by rank 0); ``resume`` continues from one. An NVE run resumes on the same
trajectory to rounding; LAMMPS's thermostats draw a fresh random stream (seeded with the seed and
the step), so a resumed NVT/NPT run is statistically, not bitwise, the same.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from atomistic.errors import InputMismatch, MDBlowUp
from atomistic.md.driver import checkpoint_fingerprint
from atomistic.md.monitor import DriftReport, energy_drift
from atomistic.md.output import ThermoLog, TrajectoryWriter, load_checkpoint, save_checkpoint, thermo_plot, truncate
from atomistic.md.settings import MDSettings

from .lammps import LammpsEngine, check_ghost_cutoff, load_lammps

log = logging.getLogger(__name__)

BAR_TO_GPA = 1e-4


@dataclass
class LammpsMDResult:
    """atoms: the final state (ASE, with velocities); timestep_fs; steps; ranks; drift (NVE);
    throughput in atom-steps/s over the loop; outputs: the files written (rank 0)."""

    atoms: Atoms
    timestep_fs: float
    steps: int
    ranks: int
    wall_s: float
    atom_steps_per_s: float
    drift: list[DriftReport] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"engine": "lammps", "ranks": self.ranks, "timestep_fs": self.timestep_fs, "steps": self.steps,
                "wall_s": self.wall_s, "atom_steps_per_s": self.atom_steps_per_s,
                "drift": [d.as_dict() for d in self.drift], "outputs": self.outputs}


#: LAMMPS's random generators take seeds in [1, 9e8]; a thermostat adds the rank to its seed
SEED_RANGE = 899_000_000


def thermostat_seed(seed: int, step: int) -> int:
    """The seed of LAMMPS's thermostats for a run (re)started at ``step``, in their range."""
    return 1 + (int(seed) + 7919 * int(step)) % SEED_RANGE


def ensemble_commands(settings: MDSettings, timestep_fs: float, seed: int) -> list[str]:
    """The LAMMPS commands that integrate ``settings``' ensemble (module docstring); ``seed`` from
    :func:`thermostat_seed`."""
    cmds = [f"timestep {timestep_fs / 1000.0!r}"]
    t = settings.thermostat
    if settings.ensemble == "nve":
        return cmds + ["fix multiscale_integrate all nve"]
    damp = t.time_fs / 1000.0
    if settings.ensemble == "nvt":
        cmds.append("fix multiscale_integrate all nve")
        if t.kind == "langevin":  # it does not conserve momentum: 3N degrees of freedom, as ours counts
            return cmds + [f"fix multiscale_thermostat all langevin {t.temperature_K!r} {t.temperature_K!r} "
                           f"{damp!r} {seed}", "compute_modify thermo_temp extra/dof 0"]
        return cmds + [f"fix multiscale_thermostat all temp/csvr {t.temperature_K!r} {t.temperature_K!r} "
                       f"{damp!r} {seed}"]
    b = settings.barostat
    p = b.pressure_GPa / BAR_TO_GPA
    style = "iso" if b.kind == "isotropic" else "aniso"
    return cmds + [f"fix multiscale_integrate all npt temp {t.temperature_K!r} {t.temperature_K!r} {damp!r} "
                   f"{style} {p!r} {p!r} {b.time_fs / 1000.0!r}"]


def _check(atoms: Atoms, settings: MDSettings, rank0: bool) -> None:
    if atoms.constraints:
        names = ", ".join(type(c).__name__ for c in atoms.constraints)
        raise InputMismatch(f"engine 'lammps' does not take constraints ({names}); use our engine")
    if settings.ensemble == "npt" and (not atoms.pbc.all() or atoms.cell.rank < 3):
        raise InputMismatch(f"md.barostat needs a periodic cell in all three directions; the structure has "
                            f"pbc={atoms.pbc.tolist()}")
    if settings.precision != "float64" and rank0:
        log.warning("engine 'lammps' evaluates the model in the model's own precision; md.precision = %r ignored",
                    settings.precision)


def initial_velocities(model, atoms: Atoms, settings: MDSettings) -> Atoms:
    """``atoms`` with Maxwell-Boltzmann velocities at ``initial_temperature_K`` (seeded as our
    engine seeds them: the same numbers on the CPU), else as they are."""
    atoms = atoms.copy()
    t = settings.initial_temperature_K
    if t is None:
        if atoms.get_momenta().any() or settings.thermostat is None:
            return atoms
        t = settings.thermostat.temperature_K
    from atomistic.md.state import System, maxwell_boltzmann
    from atomistic.potential.structure import from_atoms

    s = from_atoms(atoms, model.species)
    drift = settings.thermostat is None or settings.thermostat.kind == "bussi"
    n = len(atoms)
    system = System(structures=s, masses=torch.as_tensor(atoms.get_masses(), dtype=torch.float64)[:, None],
                    mobile=torch.ones(n, 1, dtype=torch.float64),
                    n_dof=torch.tensor([3.0 * n - 3.0 * drift], dtype=torch.float64),
                    n_atoms=torch.tensor([float(n)], dtype=torch.float64), periodic=s.pbc.all(dim=1))
    generator = torch.Generator().manual_seed(settings.seed)
    p = maxwell_boltzmann(system, t, generator, torch.tensor([drift]))
    atoms.set_momenta(p.numpy())
    return atoms


def run_lammps_md(model, atoms: Atoms, settings: MDSettings, *, output: str | Path | None = None,
                  resume: bool = False, comm=None, device=None, progress: bool = False,
                  ghost_cutoff_A: float | None = None) -> LammpsMDResult:
    """``settings.steps`` steps of MD of ``atoms`` under LAMMPS (collective over ``comm``).

    ``settings.timestep_fs`` None: the time step suggested from the Hessian (T_min / 20), as
    our engine does. ``output``: the folder for the files (rank 0 writes them). ``device`` and
    ``ghost_cutoff_A``: :class:`~atomistic.engines.lammps.LammpsEngine`'s.
    Raises :class:`~atomistic.errors.MDBlowUp` (with the last good state) when a force exceeds
    ``settings.safety.max_force_eV_A``, and ``RuntimeError`` when the model fails on a rank.
    """
    _, MPI = load_lammps()
    comm = comm if comm is not None else MPI.COMM_WORLD
    rank0 = comm.Get_rank() == 0
    _check(atoms, settings, rank0)
    check_ghost_cutoff(model, settings.skin_A, ghost_cutoff_A)
    out = Path(output) if output is not None else None
    timestep_fs = settings.timestep_fs
    if timestep_fs is None:  # rank 0's, to 10 digits: every rank and a resumed run use the same number
        timestep_fs = None
        if rank0:
            from atomistic.analysis.timestep import suggest_timestep

            timestep_fs = float(f"{float(suggest_timestep(model, atoms).timestep_fs):.10g}")
            log.info("no time step given: using %.3f fs = T_min/20 from the Hessian", timestep_fs)
        timestep_fs = comm.bcast(timestep_fs, root=0)
    checkpoint = out / "checkpoint.pt" if out is not None else None
    fingerprint = _fingerprint(model, atoms, settings, timestep_fs)
    step0, samples = 0, []
    if resume:
        if checkpoint is None or not checkpoint.exists():
            raise InputMismatch(f"resume: no checkpoint at {checkpoint}")
        state = load_checkpoint(checkpoint, fingerprint)
        atoms = atoms.copy()
        atoms.set_positions(state["positions"].numpy())
        atoms.set_cell(state["cell"].numpy()[0])
        atoms.set_momenta(state["momenta"].numpy())
        step0, samples = int(state["step"]), [np.asarray(v) for v in state["extra"]["drift"]]
        if rank0:
            for name, size in state["outputs"].items():
                truncate(out / name, size)
    else:
        atoms = initial_velocities(model, atoms, settings)
    writers = None
    if out is not None and rank0:
        out.mkdir(parents=True, exist_ok=True)
        writers = (ThermoLog(out / "thermo.csv", append=resume), TrajectoryWriter(out / "trajectory.extxyz",
                                                                                  append=resume))
    comm.Barrier()
    engine = LammpsEngine(model, atoms, comm=comm, device=device, skin_A=settings.skin_A,
                          ghost_cutoff_A=ghost_cutoff_A, log_path=(out / "log.lammps") if out is not None else None,
                          safety_max_force_eV_A=settings.safety.max_force_eV_A)
    try:
        engine.lmp.commands_list(ensemble_commands(settings, timestep_fs, thermostat_seed(settings.seed, step0))
                                 + [f"reset_timestep {step0}"])
        result = _loop(engine, settings, timestep_fs, step0, samples, writers, out, checkpoint, fingerprint,
                       progress)
    finally:
        engine.close()
    return result


def _loop(engine: LammpsEngine, settings: MDSettings, timestep_fs: float, step0: int, samples: list,
          writers, out: Path | None, checkpoint: Path | None, fingerprint: str, progress: bool) -> LammpsMDResult:
    comm = engine.comm
    n = engine.n_atoms
    every = [k for k in (settings.log_every, settings.trajectory_every, settings.checkpoint_every) if k]
    stride = int(np.gcd.reduce(every)) if every else max(settings.steps, 1)
    step, first = step0, True
    engine.run(0)  # forces, energy and thermo of the initial state
    last_good = engine.atoms()
    if step0 == 0:  # a resumed run logged its first state before
        _record(engine, settings, step, timestep_fs, writers, samples, last_good)
    bar = None
    if progress and comm.Get_rank() == 0 and settings.steps - step0 > 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=settings.steps - step0, desc="MD (lammps)", unit="step")
    t0 = time.perf_counter()
    while step < settings.steps:
        k = min(stride - step % stride, settings.steps - step)
        engine.run(k, setup=first)
        first = False
        now = int(engine.lmp.extract_global("ntimestep"))
        if engine.blown_up is not None or now != step + k:
            diagnosis = (f"MD under LAMMPS stopped at step {now}: {engine.blown_up or 'halted'}; the last good state "
                         f"gathered (step {last_good.info['step']}) is kept")
            if out is not None and comm.Get_rank() == 0:
                from atomistic.atomic_files import write_extxyz

                write_extxyz(out / "last_good.extxyz", [last_good])
                diagnosis += f" in {out / 'last_good.extxyz'}"
            raise MDBlowUp(diagnosis, last_good=[last_good], step=now)
        step = now
        frame = settings.trajectory_every and step % settings.trajectory_every == 0
        save = settings.checkpoint_every and step % settings.checkpoint_every == 0 and checkpoint is not None
        if frame or save or step == settings.steps:  # gathered (every rank, O(N)) only when needed
            last_good = engine.atoms()
        _record(engine, settings, step, timestep_fs, writers, samples, last_good)
        if save:
            _checkpoint(engine, checkpoint, last_good, step, writers, samples, fingerprint)
        if bar is not None:
            bar.update(k)
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    steps_run = settings.steps - step0
    drift = []
    if settings.ensemble == "nve" and len(samples) >= 8:
        data = np.stack(samples)
        drift = [energy_drift(data[:, 0], data[:, 1])]
        d = drift[0]
        log.info("NVE drift %.3g meV/atom/ps over %.2f ps (fluctuation %.3g meV/atom)", d.drift_meV_per_atom_ps,
                 d.duration_ps, d.fluctuation_meV_per_atom)
    result = LammpsMDResult(atoms=last_good, timestep_fs=timestep_fs, steps=settings.steps, ranks=comm.Get_size(),
                            wall_s=wall, atom_steps_per_s=n * steps_run / wall if wall > 0 else float("nan"),
                            drift=drift)
    if out is not None and comm.Get_rank() == 0:
        result.outputs = {"thermo": "thermo.csv", "log": "log.lammps"}
        if settings.trajectory_every:
            result.outputs["trajectory"] = "trajectory.extxyz"
        if settings.log_every:
            thermo_plot(out / "thermo.csv", out / "thermo.png")
            result.outputs["plot"] = "thermo.png"
        from atomistic.atomic_files import write_text

        write_text(out / "md.json", json.dumps(result.summary(), indent=2, default=float) + "\n")
        result.outputs["summary"] = "md.json"
    return result


def _record(engine: LammpsEngine, settings: MDSettings, step: int, timestep_fs: float, writers, samples: list,
            state: Atoms) -> None:
    """Thermo row (every ``log_every``) and frame (every ``trajectory_every``); collective."""
    lmp = engine.lmp
    if settings.log_every and step % settings.log_every == 0:
        pe, ke, temp, press, vol = (float(lmp.get_thermo(k)) for k in ("pe", "ke", "temp", "press", "vol"))
        if not engine.periodic:
            press, vol = float("nan"), float("nan")
        time_fs = step * timestep_fs
        if writers is not None:
            writers[0].append([(step, time_fs, 0, pe, ke, pe + ke, temp, press * BAR_TO_GPA, vol)])
        samples.append(np.array([time_fs / 1000.0, (pe + ke) / engine.n_atoms]))
    if settings.trajectory_every and step % settings.trajectory_every == 0 and writers is not None:
        frame = state.copy()
        frame.info.update(step=step, time_fs=step * timestep_fs)
        writers[1].append([frame])


def _checkpoint(engine, path: Path, state: Atoms, step: int, writers, samples, fingerprint: str) -> None:
    if writers is None:
        return
    outputs = {"thermo.csv": writers[0].size(), "trajectory.extxyz": writers[1].size()}
    save_checkpoint(path, positions=torch.as_tensor(state.get_positions()),
                    momenta=torch.as_tensor(state.get_momenta()), cell=torch.as_tensor(state.cell.array)[None],
                    step=step, generator=torch.Generator(), fingerprint=fingerprint, outputs=outputs,
                    extra={"drift": [v.tolist() for v in samples]})


def _fingerprint(model, atoms: Atoms, settings: MDSettings, timestep_fs: float) -> str:
    """What a checkpoint must match to be resumed, as our engine's, with the engine named."""
    return checkpoint_fingerprint(settings, model, engine="lammps", timestep_fs=timestep_fs,
                                  symbols=atoms.get_chemical_symbols())
