"""The active-learning loop (DESIGN §3): committee MD; where the committee disagrees, the oracle
labels the configuration, the dataset grows, every member is fine-tuned from its current weights,
and MD resumes from the same state.

One iteration::

    MD (Langevin NVT, the committee mean drives it) -- every ``check_every`` steps: d, energy spread
      └─ d > force_threshold_eV_A (or spread > energy_threshold_eV_per_atom, or a blow-up)
           -> state.pt records the MD state and a pending label id        (atomic)
           -> the oracle labels it; dataset.extxyz gets the record        (append + fsync)
           -> all members fine-tuned on the whole dataset -> gen_NNN.safetensors (atomic)
           -> state.pt: new generation, nothing pending                    (atomic)

A kill at any moment loses nothing and labels nothing twice: on restart a pending label already
in the dataset (or among the failures) is not asked for again, a label the current generation has
not seen is trained on, and MD continues from the recorded state. The run ends when the oracle
budget is spent, the temperature schedule is done, or the disagreement stayed below a target.

Files in ``workdir``: ``dataset.extxyz``, ``failures.jsonl`` and ``failed/`` (see
:mod:`.store`), ``generations/gen_NNN.safetensors``, ``state.pt``, ``disagreement.csv`` (MD time,
temperature, d, energy spread, generation, at every check; the query rows are marked) and
``trajectory.extxyz`` (the replicas' configurations at every check, with the same numbers).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from tqdm.auto import tqdm

from atomistic.active.oracle import Oracle
from atomistic.active.store import LabelledStore
from atomistic.atomic_files import atomic_path, write_extxyz
from atomistic.errors import ActiveLearningError, CheckpointMismatch, MDBlowUp, OracleFailure
from atomistic.md import MDSettings, MolecularDynamics, Thermostat
from atomistic.md.output import truncate
from atomistic.potential.committee import Committee, CommitteePrediction, evaluate_committee, predict_committee
from atomistic.potential.descriptors import DescriptorSettings
from atomistic.potential.io import load_potential, save_potential
from atomistic.potential.models import NetworkSettings
from atomistic.training.committee import train_model
from atomistic.training.data import Frame, prepare
from atomistic.training.trainer import TrainSettings, fit

log = logging.getLogger(__name__)

STATE_VERSION = 1
TRACE_FIELDS = ("md_step", "time_fs", "temperature_K", "replica", "d_eV_per_A", "energy_spread_eV_per_atom",
                "generation", "query")


@dataclass(frozen=True)
class Stage:
    """Langevin NVT at ``temperature_K`` for ``steps`` time steps."""

    temperature_K: float
    steps: int

    def __post_init__(self):
        if not self.temperature_K > 0:
            raise ValueError(f"stage temperature_K must be positive, got {self.temperature_K}")
        if self.steps < 1:
            raise ValueError(f"stage steps must be >= 1, got {self.steps}")


def _default_fine_tune() -> TrainSettings:
    return TrainSettings(max_epochs=40, lr=1e-3, lr_patience=8, patience=15, progress=False)


@dataclass(frozen=True)
class ActiveSettings:
    """The loop's settings.

    stages                 MD schedule, run in order (e.g. heating); the state carries over
    timestep_fs            MD time step
    friction_time_fs       Langevin 1/friction
    check_every            MD steps between disagreement checks (and host checks)
    force_threshold_eV_A   query when d (DESIGN §2) exceeds this
    energy_threshold_eV_per_atom  query when the members' energy spread per atom exceeds this (None: off)
    cooldown_steps         MD steps after a query (or a failed one) before the next may fire
    max_oracle_calls       budget of queries (failed ones included: they cost oracle time)
    target_disagreement_eV_A, target_steps  stop early once d stayed below the target for
                           ``target_steps`` consecutive MD steps of the last stage (None: off)
    max_consecutive_failures  stop with an error after this many failed labels in a row
    fine_tune              training settings of each generation (warm start from the last)
    checkpoint_every       checks between state checkpoints during MD
    precision              MD precision ("float64" or "float32")
    replicas               independent MD walkers, run batched; every walker over the threshold at
                           a check is labelled, and one generation learns them all
    subset_fraction        each member fine-tunes on its own random subset of this fraction of the
                           labels, drawn anew every generation (query by bagging: the members then
                           differ most where the data are thin); 1.0: all members see all labels
    """

    stages: tuple[Stage, ...]
    timestep_fs: float = 1.0
    friction_time_fs: float = 100.0
    check_every: int = 10
    force_threshold_eV_A: float = 0.5
    energy_threshold_eV_per_atom: float | None = None
    cooldown_steps: int = 20
    max_oracle_calls: int = 50
    target_disagreement_eV_A: float | None = None
    target_steps: int = 1000
    max_consecutive_failures: int = 5
    fine_tune: TrainSettings = field(default_factory=_default_fine_tune)
    checkpoint_every: int = 10
    precision: str = "float64"
    replicas: int = 1
    subset_fraction: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if not self.stages:
            raise ValueError("stages: give at least one (temperature_K, steps) stage")
        for name in ("timestep_fs", "friction_time_fs", "force_threshold_eV_A"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("check_every", "max_oracle_calls", "target_steps", "max_consecutive_failures",
                     "checkpoint_every", "replicas"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.cooldown_steps < 0:
            raise ValueError(f"cooldown_steps must be >= 0, got {self.cooldown_steps}")
        for name in ("energy_threshold_eV_per_atom", "target_disagreement_eV_A"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive (or left out), got {value}")
        if not 0 < self.subset_fraction <= 1:
            raise ValueError(f"subset_fraction must be in (0, 1], got {self.subset_fraction}")
        if self.precision not in ("float64", "float32"):
            raise ValueError(f"precision must be 'float64' or 'float32', got {self.precision!r}")


def train_generation_zero(frames: Sequence[Frame], species: list[str], descriptor: DescriptorSettings,
                          network: NetworkSettings, training: TrainSettings, members: int, seed: int,
                          workdir: Path) -> Committee:
    """Generation 0: ``members`` models from different seeds, each on all of ``frames`` (too few
    to hold any out), with per-epoch checkpoints in ``workdir`` (a kill resumes the training)."""
    models = []
    for k in range(members):
        model, _ = train_model(frames, frames, species, descriptor, network, training, seed=seed * 1000 + k,
                               checkpoint=Path(workdir) / f"member{k}.ckpt", resume=True,
                               label=f"generation 0, member {k + 1}/{members}", tag=["active-learning", k])
        models.append(model)
    return Committee(models)


#: the old name of :func:`train_generation_zero`
train_committee = train_generation_zero


def label_initial(store: LabelledStore, oracle: Oracle, frames: Sequence[Atoms]) -> int:
    """Label the starting configurations (ids 0..n-1) that are not in ``store`` yet; returns how
    many oracle calls that took. A failed one is recorded and skipped; when every one has failed,
    :class:`~atomistic.errors.ActiveLearningError` (there is nothing to train on)."""
    calls = 0
    for k, atoms in enumerate(frames):
        if k in store:
            continue
        calls += 1
        try:
            store.append(oracle(atoms), k, source="initial")
        except OracleFailure as exc:
            where = store.record_failure(atoms, k, exc.message, exc.kind, source="initial")
            log.warning("initial configuration %d: the oracle failed (%s); kept in %s", k, exc, where)
    if frames and not any(k in store.ids for k in range(len(frames))):
        raise ActiveLearningError(f"initial: the oracle failed on all {len(frames)} starting configurations; "
                                  "nothing to train on (the failures and their configurations are in the store's "
                                  "failures.jsonl and failed/)")
    return calls


class ActiveLearning:
    """The loop (module docstring). ``committee``: generation 0 (ignored on resume, where the
    latest generation on disk is used); ``oracle``: labels configurations; ``atoms``: the MD
    starting structure (each replica starts from it with its own Maxwell–Boltzmann momenta);
    ``store``: the dataset, holding generation 0's training data; ``resume``: continue the run
    in ``workdir``."""

    def __init__(self, committee: Committee, oracle: Oracle, atoms: Atoms, settings: ActiveSettings,
                 workdir: str | Path, store: LabelledStore, *, resume: bool = False, progress: bool = False):
        if not isinstance(committee, Committee) or len(committee) < 2:
            raise ValueError("active learning needs a committee (a Committee of at least 2 members)")
        if len(store) == 0:
            raise ValueError("the dataset is empty: label the starting configurations first")
        self.oracle, self.settings, self.store = oracle, settings, store
        template = atoms.copy()
        template.calc = None
        self.replicas = [template.copy() for _ in range(settings.replicas)]
        self.workdir = Path(workdir)
        self.progress = progress
        self.state_path = self.workdir / "state.pt"
        self.trace_path = self.workdir / "disagreement.csv"
        self.trajectory_path = self.workdir / "trajectory.extxyz"
        self.generations_dir = self.workdir / "generations"
        self.fingerprint = self._fingerprint(committee, template)
        if self.state_path.exists():
            if not resume:
                raise FileExistsError(f"{self.state_path} exists: resume that run, or use another folder")
            self._load()
        else:
            self.committee = committee
            self._new_state()
        self._prepared: list[Frame] = []

    # --- state ---------------------------------------------------------------------------------
    def _fingerprint(self, committee: Committee, atoms: Atoms) -> str:
        s = asdict(self.settings)
        s["fine_tune"].pop("progress")
        content = [s, committee.species, atoms.get_chemical_formula(), len(committee)]
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _new_state(self) -> None:
        self.state = {"version": STATE_VERSION, "fingerprint": self.fingerprint, "generation": 0,
                      "n_trained": len(self.store), "stage": 0, "stage_step": 0, "md_step": 0,
                      "pending": [], "next_label_id": max(self.store.ids + list(self.store.failed_ids)) + 1,
                      "cooldown": 0, "consecutive_failures": 0, "below_target": 0, "trace_bytes": 0,
                      "trajectory_bytes": 0, "generations": "[]", "status": "running"}
        self._keep(self.replicas)
        self._save_generation()
        with open(self.trace_path, "w", newline="") as f:
            csv.writer(f).writerow(TRACE_FIELDS)
        self.state["trace_bytes"] = self.trace_path.stat().st_size
        self.trajectory_path.unlink(missing_ok=True)
        self._save()

    def _load(self) -> None:
        state = torch.load(self.state_path, weights_only=True)
        if state.get("version") != STATE_VERSION or state.get("fingerprint") != self.fingerprint:
            raise CheckpointMismatch(f"{self.state_path}: written by a run with other settings; use another folder")
        self.state = state
        self.committee = load_potential(self.generation_path(state["generation"]),
                                        device=self.settings.fine_tune.device,
                                        dtype=self.settings.fine_tune.torch_dtype)
        truncate(self.trace_path, state["trace_bytes"])
        if self.trajectory_path.exists():
            truncate(self.trajectory_path, state["trajectory_bytes"])
        log.info("resumed at generation %d, MD step %d (stage %d), %d labels", state["generation"],
                 state["md_step"], state["stage"], len(self.store))

    def _save(self) -> None:
        with atomic_path(self.state_path) as tmp:
            torch.save(self.state, tmp)

    @property
    def ensemble(self) -> Committee:
        """The old name of ``committee`` (the current generation)."""
        return self.committee

    def generation_path(self, generation: int) -> Path:
        return self.generations_dir / f"gen_{generation:03d}.safetensors"

    @property
    def generations(self) -> list[dict]:
        """One row per generation: labels, oracle calls, fine-tuning seconds."""
        return json.loads(self.state["generations"])

    @property
    def oracle_calls(self) -> int:
        """Queries asked of the oracle so far (failed ones included; starting data excluded)."""
        return sum(a.info.get("source") == "query" for a in self.store.frames) + sum(
            f.get("source") == "query" for f in self.store.failures)

    def _save_generation(self, seconds: float = 0.0, epochs: Sequence[int] = ()) -> None:
        g = self.state["generation"]
        save_potential(self.committee, self.generation_path(g), provenance={
            "active_learning_generation": g, "n_labels": len(self.store), "oracle_calls": self.oracle_calls})
        rows = [r for r in self.generations if r["generation"] != g]
        rows.append({"generation": g, "n_labels": len(self.store), "oracle_calls": self.oracle_calls,
                     "fine_tune_s": seconds, "epochs": list(epochs)})
        self.state["generations"] = json.dumps(rows)

    def _keep(self, replicas: Sequence[Atoms]) -> None:
        """Record the MD state of every replica (positions Å, momenta amu Å/fs-units, cells Å)."""
        s = self.state
        s["positions"] = torch.as_tensor(np.stack([a.get_positions() for a in replicas]))
        s["momenta"] = torch.as_tensor(np.stack([a.get_momenta() for a in replicas]))
        s["cell"] = torch.as_tensor(np.stack([a.cell.array for a in replicas]))

    def _atoms(self) -> list[Atoms]:
        """The replicas at the recorded MD state."""
        out = []
        for b, template in enumerate(self.replicas):
            a = template.copy()
            a.set_positions(self.state["positions"][b].numpy())
            a.set_momenta(self.state["momenta"][b].numpy(), apply_constraint=False)
            if a.pbc.any():
                a.set_cell(self.state["cell"][b].numpy())
            out.append(a)
        return out

    # --- the loop ------------------------------------------------------------------------------
    def run(self) -> dict:
        """Run until the budget, the schedule or the target ends it; returns a summary."""
        s = self.state
        while True:
            if s["pending"]:
                self._label()
            if len(self.store) > s["n_trained"]:
                self._retrain()
            reason = self._finished()
            if reason:
                break
            self._md_until_query()
        s["status"] = reason
        self._save()
        log.info("active learning finished (%s): %d generations, %d oracle calls, %d labels, %d failures",
                 reason, s["generation"], self.oracle_calls, len(self.store), len(self.store.failures))
        return self.summary()

    def summary(self) -> dict:
        s = self.state
        return {"status": s["status"], "generation": s["generation"], "oracle_calls": self.oracle_calls,
                "labels": len(self.store), "failures": len(self.store.failures), "md_steps": s["md_step"],
                "md_time_fs": s["md_step"] * self.settings.timestep_fs, "generations": self.generations}

    def _finished(self) -> str | None:
        s, st = self.state, self.settings
        if self.oracle_calls >= st.max_oracle_calls:
            return "budget"
        if s["stage"] >= len(st.stages):
            return "schedule"
        if st.target_disagreement_eV_A is not None and s["below_target"] >= st.target_steps:
            return "target"
        return None

    def _md_settings(self, stage: Stage) -> MDSettings:
        s, st = self.state, self.settings
        seed = (st.seed * 1_000_003 + s["md_step"] * 7919 + s["generation"]) % (2**63)
        return MDSettings(ensemble="nvt", steps=stage.steps - s["stage_step"], timestep_fs=st.timestep_fs,
                          thermostat=Thermostat("langevin", stage.temperature_K, st.friction_time_fs),
                          check_every=st.check_every, log_every=0, trajectory_every=0, checkpoint_every=0,
                          seed=seed, precision=st.precision)

    def _md_until_query(self) -> None:
        s, st = self.state, self.settings
        stage = st.stages[s["stage"]]
        last = s["stage"] == len(st.stages) - 1
        md = MolecularDynamics(self.committee, self._atoms(), self._md_settings(stage))
        done, checks = 0, 0
        bar = tqdm(total=stage.steps, initial=s["stage_step"], unit="step", leave=False, disable=not self.progress,
                   desc=f"MD {stage.temperature_K:.0f} K, gen {s['generation']}")
        try:
            for state in md.irun():
                n, done = state.step - done, state.step
                s["stage_step"] += n
                s["md_step"] += n
                bar.update(n)
                s["cooldown"] = max(0, s["cooldown"] - n)
                d, spread = self._disagreement(md, state)
                below = last and st.target_disagreement_eV_A is not None and max(d) < st.target_disagreement_eV_A
                s["below_target"] = s["below_target"] + n if below else 0
                over = [b for b in range(len(d)) if d[b] > st.force_threshold_eV_A or (
                    st.energy_threshold_eV_per_atom is not None and spread[b] > st.energy_threshold_eV_per_atom)]
                query = self._most_uncertain(over, d) if over and s["cooldown"] == 0 else []
                frames = md.to_atoms(state)
                self._keep(frames)
                self._trace(stage, d, spread, query, frames)
                if query:
                    self._queue(query, d, "d = " + ", ".join(f"{d[b]:.3f}" for b in query) + " eV/Å")
                    return
                checks += 1
                if checks % st.checkpoint_every == 0:
                    self._save()
                if last and s["below_target"] >= st.target_steps:
                    self._save()
                    return
        except MDBlowUp as exc:
            # the committee drove the atoms somewhere unphysical: the last good state is exactly
            # the kind of configuration it needs to learn; label the walker it disagrees on most
            s["stage_step"] += exc.step - done
            s["md_step"] += exc.step - done
            self._keep(exc.last_good)
            d, spread = self._disagreement_of(exc.last_good)
            worst = [int(np.argmax(d))]
            self._trace(stage, d, spread, worst, exc.last_good)
            self._queue(worst, d, f"MD blew up ({exc.diagnosis.split(';')[0]})")
            return
        finally:
            bar.close()
        s["stage"] += 1
        s["stage_step"] = 0
        self._save()

    def _most_uncertain(self, replicas: list[int], d: Sequence[float]) -> list[int]:
        """The replicas to label, most uncertain first, as many as the budget has room for."""
        room = self.settings.max_oracle_calls - self.oracle_calls
        return sorted(replicas, key=lambda b: -d[b])[:max(room, 1)]

    def _queue(self, replicas: list[int], d: Sequence[float], why: str) -> None:
        s = self.state
        s["pending"] = [[s["next_label_id"] + k, b, float(d[b])] for k, b in enumerate(replicas)]
        s["next_label_id"] += len(replicas)
        self._save()
        log.info("query %s at MD step %d (%.0f K): %s", ", ".join(str(p[0]) for p in s["pending"]), s["md_step"],
                 self.settings.stages[s["stage"]].temperature_K, why)

    def _disagreement(self, md: MolecularDynamics, state) -> tuple[list[float], list[float]]:
        """Per replica: d (eV/Å) and the members' energy spread per atom (eV/atom), with the
        MD's own Verlet list (valid for this state when the driver yields it)."""
        positions, cell = state.positions.detach(), state.cell.detach()
        table, _ = md.forcefield.compact(positions, cell)
        structures = replace(md.system.structures, positions=positions, cell=cell)
        return self._committee(predict_committee(md.model, structures, table), structures.n_atoms)

    def _disagreement_of(self, replicas: Sequence[Atoms]) -> tuple[list[float], list[float]]:
        return self._committee(evaluate_committee(self.committee, list(replicas)), [len(a) for a in replicas])

    @staticmethod
    def _committee(p: CommitteePrediction, n_atoms: Sequence[int]) -> tuple[list[float], list[float]]:
        n = torch.as_tensor(n_atoms, dtype=p.energy_spread.dtype, device=p.energy_spread.device)
        d, spread = torch.stack([p.force_disagreement, p.energy_spread / n]).detach().cpu().tolist()
        return d, spread

    def _trace(self, stage: Stage, d: Sequence[float], spread: Sequence[float], query: Sequence[int],
               frames: Sequence[Atoms]) -> None:
        """One row per replica in ``disagreement.csv`` and its configuration ``frames`` (with the
        same numbers in ``info``) in ``trajectory.extxyz``."""
        s = self.state
        buf = io.StringIO()
        w = csv.writer(buf)
        for b in range(len(d)):
            row = {"md_step": s["md_step"], "time_fs": s["md_step"] * self.settings.timestep_fs,
                   "temperature_K": stage.temperature_K, "replica": b, "d_eV_per_A": d[b],
                   "energy_spread_eV_per_atom": spread[b], "generation": s["generation"], "query": int(b in query)}
            w.writerow([f"{row[k]:.6g}" if isinstance(row[k], float) else row[k] for k in TRACE_FIELDS])
            frames[b].info.update(row)
        with open(self.trace_path, "a", newline="") as f:
            f.write(buf.getvalue())
        write_extxyz(self.trajectory_path, frames, append=True, durable=False)
        s["trace_bytes"] = self.trace_path.stat().st_size
        s["trajectory_bytes"] = self.trajectory_path.stat().st_size

    def _label(self) -> None:
        s, st = self.state, self.settings
        replicas = self._atoms()
        stage = st.stages[min(s["stage"], len(st.stages) - 1)]
        for label_id, b, d in s["pending"]:
            if label_id in self.store:  # labelled (or failed) before an interruption
                continue
            atoms = replicas[b]
            info = {"source": "query", "generation": s["generation"], "md_step": s["md_step"], "replica": b,
                    "time_fs": s["md_step"] * st.timestep_fs, "temperature_K": stage.temperature_K, "d_eV_per_A": d}
            try:
                labelled = self.oracle(atoms)
            except OracleFailure as exc:
                where = self.store.record_failure(atoms, label_id, exc.message, exc.kind, **info)
                s["consecutive_failures"] += 1
                log.warning("label %d: the oracle failed (%s); configuration kept in %s; MD goes on",
                            label_id, exc, where)
            else:
                self.store.append(labelled, label_id, **info)
                s["consecutive_failures"] = 0
        s["pending"] = []
        s["cooldown"] = st.cooldown_steps
        self._save()
        if s["consecutive_failures"] >= st.max_consecutive_failures:
            raise ActiveLearningError(
                f"the oracle failed {s['consecutive_failures']} times in a row (see {self.store.failures_path}); "
                "check its settings, then run again with --resume")

    def _retrain(self) -> None:
        s, st = self.state, self.settings
        species = self.committee.species
        cutoff = self.committee.members[0].descriptor_settings.cutoff
        if len(self._prepared) > len(self.store):
            self._prepared = []
        self._prepared += prepare(self.store.frames[len(self._prepared):], species, cutoff)
        t0 = time.perf_counter()
        g = s["generation"] + 1
        epochs = []
        n = len(self._prepared)
        for k, member in enumerate(self.committee.members):
            seed = st.seed * 1000 + 17 * g + k
            frames = self._prepared
            if st.subset_fraction < 1:
                keep = np.random.default_rng(seed).permutation(n)[:max(1, round(st.subset_fraction * n))]
                frames = [self._prepared[i] for i in np.sort(keep)]
            history = fit(member, frames, frames, st.fine_tune, seed=seed,
                          label=f"generation {g}, member {k + 1}/{len(self.committee)}")
            member.eval()
            epochs.append(len(history["epoch"]))
        seconds = time.perf_counter() - t0
        s["generation"] = g
        s["n_trained"] = len(self.store)
        self._save_generation(seconds, epochs)
        self._save()
        log.info("generation %d: fine-tuned on %d labels in %.1f s (%s epochs)", g, len(self.store), seconds,
                 "/".join(map(str, epochs)))

