"""The MD loop: blocks of device-only steps separated by host checks.

Inside a block (``check_every`` steps) nothing waits for the host: the step, the Verlet-list
validity bound and the blow-up flags are device tensors. At the end of a block one small
transfer reads the flags, and then

- a block during which the neighbour list could have gone stale is replayed from its start
  with a fresh list (so a late rebuild never changes the physics; the list is also rebuilt
  ahead of time when the remaining margin is about to run out, so replays are rare);
- a block with non-finite or huge forces or atoms too close is replayed step by step to find
  the first bad step; the run stops with :class:`MDBlowUp` naming the step, the atoms and the
  check, and the last good state is kept (``last_good.extxyz``);
- otherwise the log and trajectory records are written, a checkpoint is taken when due, and
  :meth:`MolecularDynamics.irun` yields the state (hook point for observers and coupled loops).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units
from tqdm.auto import tqdm

from atomistic.analysis.timestep import suggest_timestep
from atomistic.atomic_files import write_extxyz, write_text
from atomistic.errors import InputMismatch, MDBlowUp
from atomistic.md.captured import MAX_ATOMS as GRAPH_MAX_ATOMS
from atomistic.md.captured import BlockResult, GraphBlocks, Plan
from atomistic.md.forcefield import VerletForceField
from atomistic.md.integrators import Propagator
from atomistic.md.monitor import DriftReport, energy_drift
from atomistic.md.output import ThermoLog, TrajectoryWriter, load_checkpoint, save_checkpoint, thermo_plot, truncate
from atomistic.md.settings import RUN_ONLY_SETTINGS, MDSettings
from atomistic.md.state import MDState, System, kinetic_energy, maxwell_boltzmann, pressure, temperature
from atomistic.potential.models import model_device
from atomistic.potential.structure import cell_volume, check_distances, fixed_mask, from_atoms

log = logging.getLogger(__name__)

DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass
class MDResult:
    """What a finished run returns.

    atoms: final structures (ASE, with momenta); timestep_fs; steps; drift: one report per
    structure (NVE with enough log samples, else empty); rebuilds / replays: neighbour-list
    rebuilds and replayed blocks; atom_steps_per_s: throughput of the loop (atom-steps per
    second of wall clock; None when no step was timed); wall_s: seconds in the loop; segments:
    how many runs (the first and each ``resume``) made it; outputs: paths written;
    cuda_graphs: this segment's graph counts (captures, replayed blocks, why a capture failed),
    None when blocks ran eagerly.

    The counters cover the whole run, every resumed segment included (they travel in the
    checkpoint); steps redone after a kill are counted once, and the wall time lost with them
    is not counted. A checkpoint written before these counters existed leaves them covering the
    resumed segment only (logged).
    """

    atoms: list[Atoms]
    timestep_fs: float
    steps: int
    drift: list[DriftReport] = field(default_factory=list)
    rebuilds: int = 0
    replays: int = 0
    atom_steps_per_s: float | None = None
    wall_s: float = 0.0
    segments: int = 1
    outputs: dict[str, str] = field(default_factory=dict)
    cuda_graphs: dict | None = None

    def summary(self) -> dict:
        return {"timestep_fs": self.timestep_fs, "steps": self.steps, "rebuilds": self.rebuilds,
                "replays": self.replays, "atom_steps_per_s": self.atom_steps_per_s, "wall_s": self.wall_s,
                "segments": self.segments, "drift": [d.as_dict() for d in self.drift], "outputs": self.outputs,
                "cuda_graphs": self.cuda_graphs}


class MolecularDynamics:
    """MD of one or more structures (replicas run batched) under ``model``.

    ``atoms``: an ASE ``Atoms`` or a list (same model, any sizes; each structure keeps its own
    thermostat and barostat). ``output``: folder for ``thermo.csv``, ``trajectory.extxyz``,
    ``checkpoint.pt``, ``thermo.png`` and ``md.json`` (None: nothing is written).
    ``resume``: continue from ``output/checkpoint.pt``.
    """

    def __init__(self, model, atoms: Atoms | Sequence[Atoms], settings: MDSettings, *,
                 device: str | torch.device | None = None, output: str | Path | None = None,
                 resume: bool = False, progress: bool = False, mask_bodies: bool = True):
        frames = [atoms] if isinstance(atoms, Atoms) else list(atoms)
        if not frames:
            raise InputMismatch("MD needs at least one structure")
        for k, a in enumerate(frames):  # before any expensive work (a Hessian, a first force block)
            check_distances(a, what=f"structure {k}")
        self.settings = settings
        self.frames = [a.copy() for a in frames]
        dtype = DTYPES[settings.precision]
        device = model_device(model, device)
        if model_device(model) != device or model.dtype != dtype:
            model = copy.deepcopy(model).to(device=device, dtype=dtype)
        self.model = model.eval()
        self.device, self.dtype = device, dtype
        self.output = Path(output) if output is not None else None
        self.progress = progress
        self._check_inputs()

        structures = from_atoms(self.frames, model.species, device=device, dtype=dtype)
        fixed = torch.as_tensor(fixed_mask(self.frames, what="MD"), device=device)
        mobile = (~fixed).to(dtype)[:, None]
        n_mobile = torch.zeros(len(frames), dtype=dtype, device=device).index_add(0, structures.batch, mobile[:, 0])
        any_fixed = torch.zeros(len(frames), dtype=torch.long, device=device).index_add(
            0, structures.batch, fixed.to(torch.long)) > 0
        thermo = settings.thermostat
        conserves_momentum = thermo is None or thermo.kind == "bussi"
        self._remove_drift = (~any_fixed) & conserves_momentum
        n_dof = 3.0 * n_mobile - 3.0 * self._remove_drift.to(dtype)
        masses = torch.as_tensor(np.concatenate([a.get_masses() for a in self.frames]), dtype=dtype, device=device)
        self.system = System(structures=structures, masses=masses[:, None], mobile=mobile, n_dof=n_dof,
                             n_atoms=torch.as_tensor(structures.n_atoms, device=device, dtype=dtype),
                             periodic=structures.pbc.all(dim=1))
        self.timestep_fs = settings.timestep_fs or self._suggest_timestep()
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(settings.seed)
        graphs = settings.cuda_graphs and device.type == "cuda" and len(masses) <= GRAPH_MAX_ATOMS
        if settings.cuda_graphs and device.type == "cuda" and not graphs:
            log.info("%d atoms: MD blocks run without CUDA graphs (above %d atoms the kernels outlast their "
                     "launches)", len(masses), GRAPH_MAX_ATOMS)
        self.forcefield = VerletForceField(self.model, structures, skin=settings.skin_A,
                                           stress=settings.ensemble == "npt", mask_bodies=mask_bodies, static=graphs)
        self.propagator = Propagator(self.system, self.forcefield, self.timestep_fs, thermo, settings.barostat,
                                     self.generator)
        #: the CUDA-graph runner of the blocks (None: every block runs eagerly)
        self.graphs = GraphBlocks(self._advance, self.generator, input_stress=settings.barostat is not None) \
            if graphs else None
        self.fingerprint = self._fingerprint()
        self._log_pressure = bool(self.system.periodic.all())  # logged steps also compute the stress
        self.replays = 0
        self._block_length = settings.check_every
        self._margin_at_start = settings.skin_A
        self._drift_samples: list[np.ndarray] = []
        # whole-run counters of the segments before this one (from the checkpoint when resuming):
        # seconds in the loop, steps those seconds cover, list rebuilds, replayed blocks, segments
        self._before = {"wall_s": 0.0, "timed_steps": 0, "rebuilds": 0, "replays": 0, "segments": 0}
        self._wall_s, self._timed_steps, self._loop_t0 = 0.0, 0, None  # this segment
        self._resumed = resume
        self._writers(resume)
        self.state = self._initial_state(resume)

    # --- set-up ------------------------------------------------------------------------------
    def _check_inputs(self) -> None:
        s = self.settings
        if s.ensemble == "npt":
            for k, a in enumerate(self.frames):
                if not a.pbc.all() or a.cell.rank < 3:
                    raise InputMismatch(f"md.barostat needs a periodic cell in all three directions; structure {k} "
                                     f"has pbc={a.pbc.tolist()} and a cell of rank {a.cell.rank}")
            if fixed_mask(self.frames, what="MD").any():
                raise InputMismatch("md.barostat cannot be combined with fixed atoms (FixAtoms)")

    def _suggest_timestep(self) -> float:
        suggestion = suggest_timestep(self.model, self.frames[0])
        log.info("no time step given: using %.3f fs = T_min/20 from the Hessian (highest frequency %.1f cm^-1)",
                 suggestion.timestep_fs, suggestion.max_frequency_cm)
        return float(suggestion.timestep_fs)

    def _fingerprint(self) -> str:
        return checkpoint_fingerprint(self.settings, self.model, timestep_fs=self.timestep_fs,
                                      symbols=[a.get_chemical_formula() for a in self.frames])

    def _writers(self, resume: bool) -> None:
        self.thermo_log = self.trajectory = None
        if self.output is None:
            if resume:
                raise InputMismatch("resume needs an output folder holding checkpoint.pt")
            return
        self.output.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = self.output / "checkpoint.pt"
        if resume and not self.checkpoint_path.exists():
            if not self.settings.checkpoint_every:
                raise InputMismatch(f"resume: checkpointing is off (md.checkpoint_every = 0), so no run of this case "
                                    f"leaves a checkpoint in {self.output} to continue from; set md.checkpoint_every "
                                    "or run again without --resume (that starts over from step 0)")
            raise InputMismatch(f"resume: no checkpoint at {self.checkpoint_path} (the earlier run stopped before its "
                                f"first checkpoint at step {self.settings.checkpoint_every}, or wrote elsewhere); "
                                "run again without --resume (that starts over from step 0)")
        self._resume_payload = load_checkpoint(self.checkpoint_path, self.fingerprint) if resume else None
        if resume:
            truncate(self.output / "thermo.csv", self._resume_payload["outputs"]["thermo.csv"])
            truncate(self.output / "trajectory.extxyz", self._resume_payload["outputs"]["trajectory.extxyz"])
        self.thermo_log = ThermoLog(self.output / "thermo.csv", append=resume)
        self.trajectory = TrajectoryWriter(self.output / "trajectory.extxyz", append=resume)

    def _initial_state(self, resume: bool) -> MDState:
        s, system, dev, dt = self.settings, self.system, self.device, self.dtype
        if resume:
            payload = self._resume_payload
            x, p = payload["positions"].to(dev, dt), payload["momenta"].to(dev, dt)
            cell, step = payload["cell"].to(dev, dt), payload["step"]
            self.generator.set_state(payload["rng"])
            self._drift_samples = [np.asarray(v) for v in payload["extra"].get("drift", [])]
            self._block_length = payload["extra"].get("block_length", s.check_every)
            # the uninterrupted run widened its tables after an overflow: the same widths here
            self.forcefield.slack = payload["extra"].get("slack", self.forcefield.slack)
            counters = payload["extra"].get("counters")
            if counters is None:
                log.warning("%s predates whole-run counters: rebuilds, replays, wall time and throughput will "
                            "cover the resumed segment only", self.checkpoint_path)
            else:
                self._before.update(counters)
            log.info("resuming at step %d from %s", step, self.checkpoint_path)
        else:
            x, cell, step = system.structures.positions, system.structures.cell, 0
            t_init = s.initial_temperature_K
            given = np.concatenate([a.get_momenta() for a in self.frames])
            if t_init is None and not np.any(given) and s.thermostat is not None:
                t_init = s.thermostat.temperature_K
            if t_init is not None:
                p = maxwell_boltzmann(system, t_init, self.generator, self._remove_drift)
            else:
                p = torch.as_tensor(given, device=dev, dtype=dt) * system.mobile
        self.forcefield.rebuild(x, cell)
        if resume and payload.get("forces") is not None:
            # the forces the uninterrupted run carries into its next step, not a re-evaluation:
            # those were summed over the previous list's edge order, so recomputing them with the
            # list just rebuilt can differ in the last bit, and the runs would part from here
            stress = payload.get("stress")
            return MDState(positions=x, momenta=p, cell=cell, forces=payload["forces"].to(dev, dt),
                           energy=payload["energy"].to(dev, dt),
                           stress=None if stress is None else stress.to(dev, dt), step=step)
        out = self.forcefield.evaluate(x, cell)
        return MDState(positions=x, momenta=p, cell=cell, forces=out.forces, energy=out.energy,
                       stress=out.stress, step=step)

    # --- the loop ------------------------------------------------------------------------------
    def irun(self, steps: int | None = None) -> Iterator[MDState]:
        """Advance to ``steps`` total steps (default ``settings.steps``), yielding the state at
        every host check."""
        target = self.settings.steps if steps is None else steps
        s = self.settings
        bar = tqdm(total=target, initial=self.state.step, unit="step", disable=not self.progress,
                   desc="MD", leave=False)
        self._loop_first, self._loop_t0 = self.state.step, time.perf_counter()
        try:
            while self.state.step < target:
                n = min(self._block_length, target - self.state.step)
                if s.checkpoint_every:
                    n = min(n, s.checkpoint_every - self.state.step % s.checkpoint_every)
                start, rng = self.state, self.generator.get_state()
                fresh = self._margin_at_start >= self.forcefield.skin
                while True:
                    end, records, frames, (stale, bad, margin, overflow) = self._block(start, n)
                    if overflow:  # a compacted row outgrew its width: wider tables, same block again
                        self.forcefield.widen()
                        self.generator.set_state(rng)
                        self.forcefield.rebuild(start.positions, start.cell)
                        self._margin_at_start, fresh = self.forcefield.skin, True
                        self.replays += 1
                        log.debug("neighbour table overflow: slack now %.2f", self.forcefield.slack)
                        continue
                    if not stale:
                        break
                    # the list may have missed a pair inside the cutoff: redo the block with a
                    # fresh list, and with shorter blocks if even a fresh one ran out of skin
                    self.replays += 1
                    self.generator.set_state(rng)
                    if fresh:
                        if n == 1:
                            self._diagnose(start, 1, rng, reason="an atom moved more than half the Verlet skin "
                                           f"(md.skin_A = {s.skin_A} Å) in one step")
                        n = self._block_length = max(1, n // 2)
                        log.info("atoms cross the Verlet skin within a block: host checks every %d steps now", n)
                    self.forcefield.rebuild(start.positions, start.cell)
                    self._margin_at_start, fresh = self.forcefield.skin, True
                if bad:
                    self._diagnose(start, n, rng, reason=None)
                self.state = end
                self._flush(records, frames)
                checkpoint = bool(s.checkpoint_every) and end.step % s.checkpoint_every == 0
                if checkpoint:
                    self._checkpoint()
                bar.update(n)
                # rebuild ahead of time when the next block would probably exhaust the margin;
                # always at a checkpoint, so that a resumed run sums in the same order (bit for bit;
                # the forces carried into the next step come from the checkpoint, not from this list)
                used = self._margin_at_start - margin
                if checkpoint or margin < 1.5 * used or margin < 0.25 * self.forcefield.skin:
                    self.forcefield.rebuild(end.positions, end.cell)
                    self._margin_at_start = self.forcefield.skin
                else:
                    self._margin_at_start = margin
                yield end
        finally:
            self._wall_s += time.perf_counter() - self._loop_t0
            self._timed_steps += self.state.step - self._loop_first
            self._loop_t0 = None
            bar.close()

    def counters(self) -> dict:
        """Whole-run counters so far (every segment): ``wall_s`` (s in the loop), ``timed_steps``
        (the steps that time covers), ``rebuilds``, ``replays``, ``segments``."""
        wall, steps = self._wall_s, self._timed_steps
        if self._loop_t0 is not None:  # inside irun: the part of this loop run so far
            wall, steps = wall + time.perf_counter() - self._loop_t0, steps + self.state.step - self._loop_first
        b = self._before
        return {"wall_s": b["wall_s"] + wall, "timed_steps": b["timed_steps"] + steps,
                "rebuilds": b["rebuilds"] + self.forcefield.rebuilds, "replays": b["replays"] + self.replays,
                "segments": b["segments"] + 1}


    def _block(self, state: MDState, n: int):
        """``n`` steps with no host round-trip; one transfer at the end reads the flags."""
        s = self.settings
        plan = Plan.of(state.step, n, s.log_every, s.trajectory_every, self._log_pressure)
        if self.graphs is not None:
            end, rows, frames, flags = self.graphs.run(state, plan, self.forcefield.layout())
        else:
            end, rows, frames, flags = self._advance(state, plan)
        margin_h, bad_h, overflow_h = flags.cpu().tolist()
        records = [(state.step + k, rows[i]) for i, k in enumerate(plan.logged)]
        return end, records, frames, (margin_h <= 0.0, bool(bad_h), margin_h, bool(overflow_h))

    def _advance(self, state: MDState, plan: Plan) -> BlockResult:
        """The steps of one block on the device (eager, or recorded into a CUDA graph)."""
        s, ff = self.settings, self.forcefield
        limit = s.safety.max_force_eV_A
        bad = torch.zeros((), dtype=torch.bool, device=self.device)
        overflow = torch.zeros((), dtype=torch.bool, device=self.device)
        margin = None
        rows, frames = [], []
        for k in range(1, plan.n + 1):
            logged = k in plan.logged
            state = self.propagator.step(state, stress=logged and plan.stress)
            overflow = overflow | ff.overflow
            f = state.forces
            bad = bad | ~torch.isfinite(f).all() | ~torch.isfinite(state.energy).all() | (f.abs().amax() > limit)
            m = ff.margin(state.positions, state.cell).amin()
            margin = m if margin is None else torch.minimum(margin, m)
            if logged:
                rows.append(self._thermo(state))
            if k in plan.framed:
                frames.append(state)
        close = (ff.min_distance(state.positions, state.cell).amin() < s.safety.min_distance_A)
        flags = torch.stack([margin.to(torch.float64), (bad | close).to(torch.float64), overflow.to(torch.float64)])
        return state, torch.stack(rows) if rows else None, frames, flags

    def _thermo(self, state: MDState) -> torch.Tensor:
        """(B, 6): E_pot, E_kin, E_tot (eV), T (K), P (GPa), V (Å^3), still on the device."""
        ke = kinetic_energy(self.system, state.momenta)
        volume = cell_volume(state.cell)
        if state.stress is not None:
            p = pressure(self.system, state) / units.GPa
        else:
            p = torch.full_like(ke, float("nan"))
        return torch.stack([state.energy, ke, state.energy + ke, temperature(self.system, state.momenta), p,
                            torch.where(self.system.periodic, volume, torch.nan)], dim=1)

    def _flush(self, records, frames) -> None:
        if records:
            steps = [r[0] for r in records]
            values = torch.stack([r[1] for r in records]).cpu().numpy()  # (k, B, 6)
            if self.settings.ensemble == "nve":
                n_atoms = self.system.n_atoms.cpu().numpy()
                t_ps = np.asarray(steps, dtype=float) * self.timestep_fs / 1000.0
                for k in range(len(steps)):
                    self._drift_samples.append(np.concatenate([[t_ps[k]], values[k, :, 2] / n_atoms]))
            if self.thermo_log is not None:
                rows = []
                for step, v in zip(steps, values):
                    for b in range(v.shape[0]):
                        rows.append((step, step * self.timestep_fs, b, *v[b]))
                self.thermo_log.append(rows)
        if frames and self.trajectory is not None:
            self.trajectory.append([a for st in frames for a in self.to_atoms(st)])

    def _checkpoint(self) -> None:
        if self.output is None:
            return
        st = self.state
        save_checkpoint(self.checkpoint_path, positions=st.positions, momenta=st.momenta, cell=st.cell,
                        forces=st.forces, energy=st.energy, stress=st.stress,
                        step=st.step, generator=self.generator, fingerprint=self.fingerprint,
                        outputs={"thermo.csv": self.thermo_log.size(), "trajectory.extxyz": self.trajectory.size()},
                        extra={"drift": [v.tolist() for v in self._drift_samples],
                               "block_length": self._block_length, "slack": self.forcefield.slack,
                               "counters": self.counters()})

    def _diagnose(self, start: MDState, n: int, rng, reason: str | None):
        """Replay a bad block one step at a time (fresh list every step) to find the first bad
        step; keep the state before it and raise :class:`MDBlowUp`."""
        s, ff = self.settings, self.forcefield
        self.generator.set_state(rng)
        state = start
        for _ in range(n):
            ff.rebuild(state.positions, state.cell)
            new = self.propagator.step(state)
            problem = None
            f = new.forces
            if not (torch.isfinite(f).all() and torch.isfinite(new.energy).all()):
                bad_atoms = torch.nonzero(~torch.isfinite(f).all(dim=1)).flatten()[:10].tolist()
                problem = f"non-finite energy or forces (atoms {bad_atoms})"
            else:
                norm = torch.linalg.vector_norm(f, dim=1)
                worst = int(norm.argmax())
                dmin = float(ff.min_distance(new.positions, new.cell).amin())
                if float(norm[worst]) > s.safety.max_force_eV_A:
                    problem = (f"force {float(norm[worst]):.3g} eV/Å on atom {worst} exceeds "
                               f"safety.max_force_eV_A = {s.safety.max_force_eV_A}")
                elif dmin < s.safety.min_distance_A:
                    problem = (f"two atoms came {dmin:.3f} Å apart, closer than safety.min_distance_A = "
                               f"{s.safety.min_distance_A}")
            if problem:
                self._blow_up(state, new.step, problem)
            state = new
        if reason:
            self._blow_up(state, state.step, reason)
        raise RuntimeError("a block flagged as bad replayed cleanly: the dynamics are not reproducible")

    def _blow_up(self, last_good: MDState, step: int, problem: str):
        atoms = self.to_atoms(last_good)
        where = ""
        if self.output is not None:
            path = write_extxyz(self.output / "last_good.extxyz", atoms)
            where = f"; the last good state (step {last_good.step}) is in {path}"
        self.state = last_good
        raise MDBlowUp(f"MD stopped at step {step} (t = {step * self.timestep_fs:.1f} fs): {problem}{where}. "
                       f"Try a smaller md.timestep_fs (now {self.timestep_fs:.3g} fs) or check the model in "
                       "this region of configuration space.", last_good=atoms, step=last_good.step)

    def run(self, steps: int | None = None, *, equilibration_ps: float | None = None) -> MDResult:
        """Run to the end; returns :class:`MDResult` (and writes ``md.json`` and ``thermo.png``;
        ``equilibration_ps``: marked on the plot as the time (ps) an analysis drops)."""
        target = self.settings.steps if steps is None else steps
        finished = self._resumed and self.state.step >= target
        if finished and self._before["segments"] > 0:  # the results of the finished run, rewritten unchanged
            log.info("the run in %s already finished at step %d: nothing to continue, its results are rewritten "
                     "unchanged", self.output, self.state.step)
            c = dict(self._before)
        else:
            for _ in self.irun(steps):
                pass
            c = self.counters()
        n_atoms = len(self.system.masses)
        result = MDResult(atoms=self.to_atoms(self.state), timestep_fs=self.timestep_fs, steps=self.state.step,
                          rebuilds=c["rebuilds"], replays=c["replays"], wall_s=c["wall_s"], segments=c["segments"],
                          atom_steps_per_s=(c["timed_steps"] * n_atoms / c["wall_s"]
                                            if c["timed_steps"] and c["wall_s"] > 0 else None),
                          drift=self.drift(), cuda_graphs=self.graphs.stats() if self.graphs is not None else None)
        for d in result.drift:
            log.info("NVE drift %.3g meV/atom/ps over %.2f ps (fluctuation %.3g meV/atom)%s",
                     d.drift_meV_per_atom_ps, d.duration_ps, d.fluctuation_meV_per_atom,
                     "; GROWING with time" if d.growing else "")
        if result.cuda_graphs is not None:
            log.info("CUDA graphs: %d captured, %d blocks replayed from them%s", result.cuda_graphs["captures"],
                     result.cuda_graphs["replays"], f"; off after: {self.graphs.failed}" if self.graphs.failed else "")
        if self.output is not None:
            if self.settings.checkpoint_every and not finished:
                self._checkpoint()
            outputs = {"thermo": str(self.output / "thermo.csv"), "trajectory": str(self.output / "trajectory.extxyz"),
                       "checkpoint": str(self.checkpoint_path)}
            if self.thermo_log is not None and self.thermo_log.size() > 100:
                outputs["plot"] = str(thermo_plot(self.output / "thermo.csv", self.output / "thermo.png",
                                                        equilibration_ps=equilibration_ps))
            result.outputs = outputs
            write_text(self.output / "md.json", json.dumps(result.summary(), indent=2))
        return result

    def drift(self) -> list[DriftReport]:
        """NVE energy drift per structure from the logged total energies (needs >= 8 samples)."""
        if self.settings.ensemble != "nve" or len(self._drift_samples) < 8:
            return []
        data = np.stack(self._drift_samples)
        return [energy_drift(data[:, 0], data[:, 1 + b]) for b in range(data.shape[1] - 1)]

    def to_atoms(self, state: MDState | None = None) -> list[Atoms]:
        """The structures of ``state`` (default: the current one) as ASE ``Atoms`` with momenta."""
        state = state or self.state
        pos = state.positions.detach().cpu().numpy()
        mom = state.momenta.detach().cpu().numpy()
        cell = state.cell.detach().cpu().numpy()
        out, start = [], 0
        for b, a in enumerate(self.frames):
            n = len(a)
            atoms = a.copy()
            atoms.set_positions(pos[start:start + n])
            atoms.set_momenta(mom[start:start + n], apply_constraint=False)
            if a.pbc.any():
                atoms.set_cell(cell[b])
            atoms.info.update(step=state.step, time_fs=state.step * self.timestep_fs)
            out.append(atoms)
            start += n
        return out


def checkpoint_fingerprint(settings: MDSettings, model, **content) -> str:
    """What a checkpoint must match to be resumed: the dynamics' settings (not those of how the
    run is carried out, :data:`RUN_ONLY_SETTINGS`), the model's species and weights, and
    ``content`` (the time step, the structures, an engine's name, ...)."""
    s = asdict(settings)
    for key in RUN_ONLY_SETTINGS:
        s.pop(key)
    content = {"settings": s, "species": list(model.species), "model": model_digest(model), **content}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def model_digest(model) -> str:
    """A short hash of the model's weights and buffers (checkpoints name the model they belong to)."""
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().to(torch.float64).numpy().tobytes())
    return h.hexdigest()[:16]
