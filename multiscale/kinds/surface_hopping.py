"""kind = "surface_hopping": build (or train) the multi-state model, run batched FSSH, write

    populations.csv / .png   fraction of trajectories on each state and mean |c_k|^2 vs time (fs), and
                             their change since t = 0; for Tully's 1-D models the exact quantum
                             populations (split-operator wavepacket) as reference lines
    dissociation.csv / .png  molecules with ``run.dissociation_A``: the fraction of trajectories whose
                             bond (atoms 0-1) is beyond it vs time, with its standard error, and
                             the final bond lengths
    hops.csv                 accepted and frustrated hops, from -> to, in total
    hops_vs_time.csv / .png  the same, cumulative, at every record
    final.extxyz             every trajectory's last geometry, its active state in info["state"]
    model.safetensors        the trained diabatic model ([model.train] only)
    checkpoint.pt            the swarm and its records every ``run.checkpoint_every`` steps and at
                             the end: ``--resume`` continues a killed run bit for bit (the outputs
                             equal an uninterrupted run's; a finished run's are rewritten unchanged)
    report.json              final populations, hops, energy conservation, scattering branching
                             (particle models), ``exact_reference`` (Tully's 1-D models: the
                             wavepacket's transmitted/reflected populations per adiabatic state),
                             ``dissociation`` (molecules), held-out errors of a trained model; wall
                             time and ``timings_s.fssh`` cover every ``--resume`` segment
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from ase import Atoms, units
from ase.io import read

from atomistic import DescriptorSettings, NetworkSettings
from atomistic.errors import CheckpointMismatch
from atomistic.multistate import (
    ConicalIntersection,
    DiabaticPotential,
    DiatomicCrossing,
    FSSHSettings,
    MultiStateData,
    SurfaceHopping,
    ThreeState,
    TullyDual,
    TullyExtended,
    TullySimple,
    adiabatic_states,
    fit_multistate,
)
from atomistic.multistate.exact import wavepacket_scattering
from atomistic.multistate.files import load_diabatic, save_diabatic
from atomistic.multistate.fssh import load_checkpoint, save_checkpoint
from atomistic.multistate.initial import particle_initial_conditions, thermal_initial_conditions
from atomistic.multistate.models import TULLY_MASS_AMU
from atomistic.plots import dissociation_plot, hops_plot, population_plot
from atomistic.potential.io import ModelFileError

from ..common import RunOutputConfig, StructureConfig, build_structures, check_threads, set_threads
from ..outputs import Report, write_csv, write_extxyz
from ..schema import CaseError
from . import Kind, RunContext

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class AnalyticModel:
    """An analytic multi-state model: its class, whether it moves one particle of Tully's mass
    (2000 m_e; no [structure]) or a molecule (needs [structure]), and whether it depends on the
    particle's x only (then an exact wavepacket reference is computed)."""

    model: type
    particle: bool
    one_dimensional: bool = False


#: the analytic models, by the name ``[model] analytic`` gives
ANALYTIC = {"tully1": AnalyticModel(TullySimple, True, True), "tully2": AnalyticModel(TullyDual, True, True),
            "tully3": AnalyticModel(TullyExtended, True, True), "three_state": AnalyticModel(ThreeState, True, True),
            "conical_intersection": AnalyticModel(ConicalIntersection, True),
            "diatomic_crossing": AnalyticModel(DiatomicCrossing, False)}


@dataclass(frozen=True)
class DiabaticTrainingConfig:
    """Train a :class:`~atomistic.multistate.DiabaticPotential` on ``dataset`` (extxyz of frames
    labelled by :func:`~atomistic.multistate.casscf.label_states`, relative to the case file;
    frames with ``split = "test"`` are held out and scored): ``hidden`` layer widths,
    ``cutoff_A``, ``n_radial`` radial functions from ``r_min_A``, ``epochs`` of full-batch Adam at
    ``lr``, ``coupling_weight`` of the phase-free coupling term, ``seed``."""

    dataset: str
    hidden: tuple[int, ...] = (32, 32)
    cutoff_A: float = 6.5
    n_radial: int = 12
    r_min_A: float = 1.0
    epochs: int = 2000
    lr: float = 5e-3
    coupling_weight: float = 3.0
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1 or not self.lr > 0 or self.coupling_weight < 0:
            raise ValueError(f"model.train: epochs must be >= 1, lr > 0 and coupling_weight >= 0, got "
                             f"{self.epochs}, {self.lr}, {self.coupling_weight}")
        if not self.cutoff_A > self.r_min_A >= 0 or self.n_radial < 1:
            raise ValueError(f"model.train: need cutoff_A > r_min_A >= 0 and n_radial >= 1, got "
                             f"{self.cutoff_A}, {self.r_min_A}, {self.n_radial}")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"model.train.hidden must be positive widths, got {list(self.hidden)}")


@dataclass(frozen=True)
class MultiStateModelConfig:
    """Exactly one of ``analytic`` (a name in :data:`ANALYTIC`),
    ``path`` (a diabatic model file, relative to the case file) or ``train``; ``device``."""

    analytic: str | None = None
    path: str | None = None
    train: DiabaticTrainingConfig | None = None
    device: str = "cpu"

    def __post_init__(self):
        if sum(x is not None for x in (self.analytic, self.path, self.train)) != 1:
            raise ValueError("model: give exactly one of 'analytic', 'path' or a [model.train] table")
        if self.analytic is not None and self.analytic not in ANALYTIC:
            raise ValueError(f"model.analytic must be one of {sorted(ANALYTIC)}, "
                             f"got {self.analytic!r}")

    @property
    def particle(self) -> bool:
        return self.analytic is not None and ANALYTIC[self.analytic].particle


@dataclass(frozen=True)
class InitialConditionsConfig:
    """``trajectories`` starting on adiabatic ``state``. Particle models: at ``x0_bohr``,
    ``y0_bohr`` with ``momentum_au`` (ħ/bohr) along x. Molecules: at [structure] with
    Maxwell–Boltzmann momenta at ``temperature_K`` (0: at rest), ``seed``."""

    trajectories: int = 1000
    state: int = 0
    x0_bohr: float = -10.0
    y0_bohr: float = 0.0
    momentum_au: float = 20.0
    temperature_K: float = 0.0
    seed: int = 0

    def __post_init__(self):
        if self.trajectories < 1:
            raise ValueError(f"initial.trajectories must be >= 1, got {self.trajectories}")
        if self.state < 0:
            raise ValueError(f"initial.state must be >= 0, got {self.state}")
        if self.temperature_K < 0:
            raise ValueError(f"initial.temperature_K must be >= 0, got {self.temperature_K}")


@dataclass(frozen=True)
class HoppingRunConfig:
    """``steps`` of ``fssh.timestep_fs``, populations recorded every ``record_every``; particle
    models stop early once every trajectory is beyond ``exit_bohr`` from the origin along x
    (scattering: transmitted or reflected); molecules: a trajectory whose bond between atoms 0
    and 1 is longer than ``dissociation_A`` (Å) counts as dissociated (reported with its error).
    ``checkpoint.pt`` is written every ``checkpoint_every`` steps (and at the end)."""

    steps: int = 2000
    record_every: int = 10
    exit_bohr: float | None = None
    dissociation_A: float | None = None
    checkpoint_every: int = 500

    def __post_init__(self):
        if self.steps < 1 or self.record_every < 1:
            raise ValueError(f"run.steps and run.record_every must be >= 1, got {self.steps}, {self.record_every}")
        if self.checkpoint_every < 1:
            raise ValueError(f"run.checkpoint_every must be a positive number of steps, got {self.checkpoint_every}")
        if self.exit_bohr is not None and not self.exit_bohr > 0:
            raise ValueError(f"run.exit_bohr must be positive, got {self.exit_bohr}")
        if self.dissociation_A is not None and not self.dissociation_A > 0:
            raise ValueError(f"run.dissociation_A must be positive, got {self.dissociation_A}")


@dataclass(frozen=True)
class SurfaceHoppingCase:
    """kind = "surface_hopping": populations and hops of FSSH trajectories on a multi-state model."""

    kind: Literal["surface_hopping"]
    name: str
    model: MultiStateModelConfig
    initial: InitialConditionsConfig = field(default_factory=InitialConditionsConfig)
    fssh: FSSHSettings = field(default_factory=FSSHSettings)
    run: HoppingRunConfig = field(default_factory=HoppingRunConfig)
    structure: StructureConfig | None = None
    output: RunOutputConfig = field(default_factory=RunOutputConfig)
    threads: int = 0

    def __post_init__(self):
        if self.model.particle and self.structure is not None:
            raise ValueError(f"structure: model.analytic = {self.model.analytic!r} moves one particle; "
                             "remove [structure] and use initial.x0_bohr / momentum_au")
        if not self.model.particle and self.structure is None:
            raise ValueError("structure: a molecular multi-state model needs a [structure] table")
        if self.model.particle and self.run.dissociation_A is not None:
            raise ValueError("run.dissociation_A: a particle model has no bond; use run.exit_bohr")
        check_threads(self.threads)



def train_diabatic(case: SurfaceHoppingCase, case_dir: Path, out: Path) -> tuple[DiabaticPotential, dict]:
    """Train on ``[model.train].dataset`` and save the model; returns it and a report with its
    held-out errors (energy MAE eV, force MAE eV/Å, coupling |d| relative L1)."""
    cfg = case.model.train
    path = case_dir / cfg.dataset
    if not path.is_file():
        raise CaseError(f"model.train.dataset: {path} not found")
    try:
        frames = read(str(path), index=":")
        train = [f for f in frames if f.info.get("split", "train") != "test"]
        test = [f for f in frames if f.info.get("split") == "test"]
        data = MultiStateData.from_frames(train)
        held_out = MultiStateData.from_frames(test) if test else None
    except (ValueError, KeyError, OSError) as exc:
        raise CaseError(f"model.train.dataset: {path} is not a multi-state dataset ({exc})") from None
    template = train[0]
    species = sorted(set(template.get_chemical_symbols()))
    torch.manual_seed(cfg.seed)
    angular = 0 if len(template) < 3 else DescriptorSettings().n_angular  # a diatomic has no angles
    model = DiabaticPotential(species, data.energies.shape[1],
                              DescriptorSettings(cutoff=cfg.cutoff_A, n_radial=cfg.n_radial, r_min=cfg.r_min_A,
                                                 angular_cutoff=min(3.0, cfg.cutoff_A), n_angular=angular),
                              NetworkSettings(hidden=cfg.hidden))
    t0 = time.perf_counter()
    history = fit_multistate(model, template, data, epochs=cfg.epochs, batch_size=len(train), lr=cfg.lr,
                             weights=(1.0, 1.0, cfg.coupling_weight), seed=cfg.seed)
    report = {"dataset": str(path), "train_frames": len(train), "test_frames": len(test),
              "final_loss": history[-1], "seconds": time.perf_counter() - t0}
    if held_out is not None:
        got = adiabatic_states(model.bind(template), held_out.positions)
        report["test_energy_mae_eV"] = float((got.energies - held_out.energies).abs().mean())
        report["test_force_mae_eV_A"] = float((got.forces - held_out.forces).abs().mean())
        if held_out.couplings is not None:
            n = held_out.energies.shape[1]
            rows, cols = torch.triu_indices(n, n, 1)
            gap = held_out.energies[:, cols] - held_out.energies[:, rows]
            d_ref = torch.linalg.vector_norm(held_out.couplings[:, rows, cols].flatten(2), dim=-1) / gap
            d = torch.linalg.vector_norm(got.couplings[:, rows, cols].flatten(2), dim=-1)
            report["test_coupling_rel_l1"] = float((d - d_ref).abs().sum() / d_ref.sum())
    save_diabatic(model, out / "model.safetensors", provenance={"case": case.name, "dataset": cfg.dataset})
    log.info("trained a %d-state diabatic model on %d frames: %s", model.n_states, len(train),
             {k: v for k, v in report.items() if k.startswith("test_")})
    return model, report


def _model(case: SurfaceHoppingCase, case_dir: Path, out: Path, resumed: dict | None = None):
    """(the model's ``diabatic`` module, the starting geometry or None for a particle model,
    the training report or None). ``resumed``: the checkpoint's ``extra`` of a run being resumed
    (a model it trained is loaded from ``out``, not trained again)."""
    cfg = case.model
    if cfg.analytic is not None:
        model = ANALYTIC[cfg.analytic].model()
        return model, None if cfg.particle else build_structures(case.structure, case_dir)[0], None
    if cfg.path is not None:
        try:
            trained = load_diabatic(case_dir / cfg.path, device=cfg.device)
        except ModelFileError as exc:
            raise CaseError(f"model.path: {exc}") from None
        report = None
    elif resumed is not None:
        trained, report = _trained_before(out, resumed, cfg.device), json.loads(resumed["training"])
    else:
        trained, report = train_diabatic(case, case_dir, out)
        trained = trained.to(cfg.device)
    atoms = build_structures(case.structure, case_dir)[0]
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(trained.species))
    if unknown:
        raise CaseError(f"structure: elements {unknown} are not in the model's species {trained.species}")
    return trained.bind(atoms), atoms, report


def _trained_before(out: Path, resumed: dict, device: str) -> DiabaticPotential:
    """The model the resumed run trained, as it saved it in ``out``."""
    path = out / "model.safetensors"
    if not path.is_file() or _sha256(path) != resumed["model_sha256"]:
        raise CheckpointMismatch(f"--resume: {path} is missing or is not the model that the checkpointed run trained; "
                                 "run again without --resume (that trains it again)")
    return load_diabatic(path, device=device)


def _initial(case: SurfaceHoppingCase, atoms: Atoms | None, device) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Positions (T, N, 3) Å, momenta (T, N, 3) amu Å/fs and masses (N,) amu."""
    ini = case.initial
    if atoms is None:  # one particle of Tully's mass
        return particle_initial_conditions(ini.trajectories, x0_bohr=ini.x0_bohr, y0_bohr=ini.y0_bohr,
                                           momentum_au=ini.momentum_au, device=device)
    return thermal_initial_conditions(atoms, ini.trajectories, temperature_K=ini.temperature_K, seed=ini.seed,
                                      device=device)


def run(case: SurfaceHoppingCase, ctx: RunContext) -> dict:
    case_dir, out, progress = ctx.case_dir, ctx.out, ctx.progress
    envelope = Report(case)
    out.mkdir(parents=True, exist_ok=True)
    set_threads(case.threads)
    settings = _settings(case, case_dir)
    checkpoint_path = out / "checkpoint.pt"
    saved = _resumed(checkpoint_path, settings) if ctx.resume else None
    extra = {"fssh_s": 0.0, "wall_s": 0.0, "finished": False} if saved is None else saved["extra"]
    model, atoms, training = _model(case, case_dir, out, None if saved is None else extra)
    device = torch.device(case.model.device)
    pos, mom, masses = _initial(case, atoms, device)
    n_states = int(model.diabatic(pos[:1]).shape[1])
    if case.initial.state >= n_states:
        raise CaseError(f"initial.state: {case.initial.state} is not a state of this {n_states}-state model")
    model_sha256 = _sha256(out / "model.safetensors") if case.model.train is not None else None
    if saved is None:
        sim = SurfaceHopping.start(model, pos, mom, masses, case.initial.state, case.fssh)
        e0 = sim.total_energy()
    else:  # the swarm, its records and the run's clocks as the checkpoint left them
        sim = SurfaceHopping.from_state_dict(model, saved["swarm"], device)
        e0 = extra["e0"].to(device)
        envelope.started -= extra["wall_s"]
        if not extra["finished"]:
            log.info("resuming at step %d (t = %.1f fs) from %s", sim.steps_done, sim.time_fs, checkpoint_path)
    stop = None
    if case.model.particle and case.run.exit_bohr is not None:
        edge = case.run.exit_bohr * units.Bohr
        stop = lambda s: bool((s.positions[:, 0, 0].abs() > edge).all())  # noqa: E731
    bonds = None
    if case.run.dissociation_A is not None:
        bonds = [_bond_lengths(sim)] if saved is None else list(extra["bonds"].numpy())

    def until(s) -> bool:  # called at every record after the first: watch the bond, stop when done
        if bonds is not None:
            bonds.append(_bond_lengths(s))
        return stop is not None and stop(s)

    t0 = time.perf_counter()

    def checkpoint(s: SurfaceHopping, records: dict, *, finished: bool = False, fssh_s: float | None = None,
                   wall_s: float | None = None, exact: dict | None = None) -> None:
        now = time.perf_counter()
        save_checkpoint(checkpoint_path, s, records, extra={
            "fingerprint": _digest(settings), "case": json.dumps(settings, sort_keys=True), "finished": finished,
            "e0": e0.detach().cpu(), "bonds": None if bonds is None else torch.as_tensor(np.stack(bonds)),
            "fssh_s": extra["fssh_s"] + now - t0 if fssh_s is None else fssh_s,
            "wall_s": now - envelope.started if wall_s is None else wall_s,
            "training": json.dumps(training, default=float), "model_sha256": model_sha256,
            "exact": json.dumps(exact, default=float)})

    if extra["finished"]:
        log.warning("the run in %s had already finished at t = %.1f fs: nothing to continue, its outputs are "
                    "rewritten unchanged", out, sim.time_fs)
        history = {**saved["history"], "hops": {"accepted": sim.hops.accepted.tolist(),
                                                "frustrated": sim.hops.frustrated.tolist()}}
        seconds = extra["fssh_s"]
    else:
        history = sim.run(case.run.steps, case.run.record_every, until=until, progress=progress,
                          history=None if saved is None else saved["history"],
                          checkpoint_every=case.run.checkpoint_every, checkpoint=checkpoint)
        seconds = extra["fssh_s"] + time.perf_counter() - t0
    drift = (sim.total_energy() - e0).abs()

    header = ["time_fs"] + [f"surface_{k}" for k in range(n_states)] + [f"electronic_{k}" for k in range(n_states)]
    write_csv(out / "populations.csv", header,
              ([t, *s, *e] for t, s, e in zip(history["time_fs"], history["surface"], history["electronic"])))
    exact = json.loads(extra["exact"]) if extra["finished"] else _exact_reference(case, model)
    reference = None
    if exact is not None:
        reference = {"label": f"exact (wavepacket, k = {exact['k_au']:g})",
                     "populations": [t + r for t, r in zip(exact["transmitted"], exact["reflected"])]}
    population_plot(out / "populations.png", history, title=f"{case.name}: {case.initial.trajectories} trajectories",
                    reference=reference)
    hops = history["hops"]
    pairs = [(a, b) for a in range(n_states) for b in range(n_states) if a != b]
    write_csv(out / "hops.csv", ["from", "to", "accepted", "frustrated"],
              ([a, b, hops["accepted"][a][b], hops["frustrated"][a][b]] for a, b in pairs))
    write_csv(out / "hops_vs_time.csv",
              ["time_fs"] + [f"accepted_{a}_{b}" for a, b in pairs] + [f"frustrated_{a}_{b}" for a, b in pairs],
              ([t] + [acc[a][b] for a, b in pairs] + [fr[a][b] for a, b in pairs]
               for t, acc, fr in zip(history["time_fs"], history["accepted"], history["frustrated"])))
    hops_plot(out / "hops.png", history, title=f"{case.name}: surface hops")
    symbols = atoms.get_chemical_symbols() if atoms is not None else ["X"]
    final = []
    for xyz, state in zip(sim.positions.detach().cpu().numpy(), sim.active.cpu().tolist()):
        frame = Atoms(symbols, positions=xyz)
        frame.info["state"] = state
        final.append(frame)
    write_extxyz(out / "final.extxyz", final)

    surface, electronic = sim.populations()
    envelope.timings_s["fssh"] = seconds
    report = {"trajectories": case.initial.trajectories, "n_states": n_states, "time_fs": sim.time_fs,
              "step_us_per_trajectory": 1e6 * seconds / max(1, len(history["time_fs"]) - 1) / case.run.record_every
              / case.initial.trajectories,
              "final_surface_populations": surface.tolist(), "final_electronic_populations": electronic.tolist(),
              "hops": hops, "max_energy_change_eV": float(drift.max()), "mean_energy_change_eV": float(drift.mean())}
    if case.model.particle:
        x = sim.positions[:, 0, 0]
        report["branching"] = {
            "reflected": [float(((x < 0) & (sim.active == k)).double().mean()) for k in range(n_states)],
            "transmitted": [float(((x > 0) & (sim.active == k)).double().mean()) for k in range(n_states)]}
    if exact is not None:
        report["exact_reference"] = exact
    if bonds is not None:
        report["dissociation"] = _dissociation(case, history["time_fs"], bonds, out)
    if training is not None:
        report["training"] = training
    if extra["finished"]:  # the wall time of the run that finished, not of this rewrite
        envelope.started = time.perf_counter() - extra["wall_s"]
    report = envelope.write(out, report)
    if not extra["finished"]:
        checkpoint(sim, history, finished=True, fssh_s=seconds, wall_s=report["wall_s"], exact=exact)
    log.info("surface hopping %s: final populations %s after %.1f fs (%.1f s)", case.name,
             [round(p, 4) for p in surface.tolist()], sim.time_fs, seconds)
    return report


#: settings a resumed run may change: they do not change the trajectories or the records
FREE_SETTINGS = ("name", "threads", "run.checkpoint_every")
#: files the case reads, fingerprinted by their content
CASE_FILES = ("model.path", "model.train.dataset", "structure.file")


def _settings(case: SurfaceHoppingCase, case_dir: Path) -> dict:
    """What decides the trajectories and their records, flat (``table.key -> value``, as JSON
    has them), with the SHA-256 of the files the case reads: every setting but the output and
    :data:`FREE_SETTINGS`."""
    flat = {}

    def walk(table: dict, prefix: str) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value

    walk(asdict(case), "")
    flat = {k: v for k, v in json.loads(json.dumps(flat)).items()
            if k not in FREE_SETTINGS and not k.startswith("output.")}
    for key in CASE_FILES:
        if isinstance(flat.get(key), str) and (case_dir / flat[key]).is_file():
            flat[f"{key} (SHA-256)"] = _sha256(case_dir / flat[key])
    return flat


def _digest(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _resumed(path: Path, settings: dict) -> dict | None:
    """The checkpoint at ``path`` of a run of the same case, or None (there is none: a fresh
    start, logged); a checkpoint of another case is refused, naming the settings that differ."""
    if not path.is_file():
        log.warning("--resume: no checkpoint at %s (the earlier run stopped before its first one, or wrote "
                    "elsewhere): starting from step 0", path)
        return None
    saved = load_checkpoint(path)
    if saved["extra"].get("fingerprint") != _digest(settings):
        before = json.loads(saved["extra"].get("case", "{}"))
        changed = [f"{k} {_shown(before.get(k))} -> {_shown(settings.get(k))}"
                   for k in sorted(set(before) | set(settings)) if k not in before or k not in settings
                   or before[k] != settings[k]]
        raise CheckpointMismatch(f"--resume: {path} is from a run with other settings ({'; '.join(changed)}); run "
                                 "again without --resume (that starts over) or with another --output")
    return saved


def _shown(value) -> str:
    """A setting's value in a message: unset, a file's SHA-256 cut short, or as JSON."""
    if value is None:
        return "unset"
    return value[:12] if isinstance(value, str) and len(value) == 64 else json.dumps(value)


def _bond_lengths(sim: SurfaceHopping) -> np.ndarray:
    """(T,) Å: the distance between atoms 0 and 1 of every trajectory."""
    return torch.linalg.vector_norm(sim.positions[:, 1] - sim.positions[:, 0], dim=-1).cpu().numpy()


def _binomial(count: int, n: int) -> dict:
    """A fraction ``count / n`` with its standard error sqrt(f (1 - f) / n) and the 95 % Wilson
    score interval (which stays informative at 0 and 1, where the standard error is 0)."""
    f, z = count / n, 1.959963984540054
    centre, half = (f + z * z / (2 * n)) / (1 + z * z / n), z * np.sqrt(f * (1 - f) / n + z * z / (4 * n * n)) / (
        1 + z * z / n)
    return {"fraction": f, "standard_error": float(np.sqrt(f * (1 - f) / n)), "count": count, "trajectories": n,
            "wilson_95": [float(max(0.0, centre - half)), float(min(1.0, centre + half))]}


def _dissociation(case: SurfaceHoppingCase, time_fs: list[float], bonds: list[np.ndarray], out: Path) -> dict:
    """The dissociated fraction (bond of atoms 0-1 beyond ``run.dissociation_A`` Å) at the end, with
    its error, and vs time (``dissociation.csv``, ``dissociation.png``)."""
    threshold, n = case.run.dissociation_A, len(bonds[0])
    counts = [int((b > threshold).sum()) for b in bonds]
    fractions = np.array(counts) / n
    errors = np.sqrt(fractions * (1 - fractions) / n)
    write_csv(out / "dissociation.csv", ["time_fs", "dissociated_fraction", "standard_error"],
              zip(time_fs, fractions, errors))
    dissociation_plot(out / "dissociation.png", time_fs, fractions, errors, bonds[-1], threshold,
                      title=f"{case.name}: {n} trajectories")
    final = bonds[-1]
    result = {"threshold_A": threshold, "bond_atoms": [0, 1], "time_fs": float(time_fs[-1]), **_binomial(counts[-1], n),
              "final_bond_A": {"mean": float(final.mean()), "min": float(final.min()), "max": float(final.max())}}
    log.info("dissociated (bond > %g Å) at %.1f fs: %.4f +- %.4f (%d of %d)", threshold, time_fs[-1],
             result["fraction"], result["standard_error"], counts[-1], n)
    return result


def _exact_reference(case: SurfaceHoppingCase, model) -> dict | None:
    """Tully's 1-D models: the exact quantum branching of a wavepacket with the case's start
    (x0, k, mass 2000 m_e, initial state; width 20/k bohr as Tully's), else None."""
    cfg, ini = case.model, case.initial
    if cfg.analytic is None or not ANALYTIC[cfg.analytic].one_dimensional:
        return None
    if not (ini.x0_bohr < 0 and ini.momentum_au > 0):
        log.info("no exact reference: it needs x0_bohr < 0 and momentum_au > 0 (a packet coming from the left)")
        return None
    t0 = time.perf_counter()
    result = wavepacket_scattering(model, k_au=ini.momentum_au, x0_bohr=ini.x0_bohr, state=ini.state,
                                   mass_au=TULLY_MASS_AMU * units._amu / units._me).as_dict()
    log.info("exact reference (wavepacket, %d points, %.1f s): transmitted %s, reflected %s", result["grid_points"],
             time.perf_counter() - t0, [round(v, 4) for v in result["transmitted"]],
             [round(v, 4) for v in result["reflected"]])
    return result


KIND = Kind("surface_hopping", SurfaceHoppingCase, run, resumable=True)
