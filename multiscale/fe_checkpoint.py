"""Checkpoints of a finite-element run (kinds ``continuum``, ``coupled``: load steps;
``coupled_dynamics``: time steps, the "load factor" slot holding the time in fs): with
them ``multiscale run case.toml --resume`` continues an interrupted run and ends with the numbers
of an uninterrupted one.

In ``<output>/checkpoint/``, after every converged load step (and once before the first):

``state_<step>.npz``
    the unknowns at that step (``problem.state()``: the nodal displacements, for ``coupled``
    followed on rank 0 by the free atoms' displacements), one float64 array per rank
    (``rank0``, ``rank1``, ...), each rank's local part in its own order. Written atomically
    (temporary file, rename), read with ``allow_pickle=False``.
``checkpoint.json``
    the commit point, replaced atomically after the state file: ``format``, ``kind``, ``name``,
    ``fingerprint`` (of the case settings that change results, and of the files they name),
    ``ranks``, ``layout`` (a hash of each rank's dof coordinates and number of unknowns),
    ``step``, ``load_factor``, ``increments`` (the walk's nominal and next load increment),
    ``state`` (the file of that step), ``written`` (step, load factor, state file of every step
    whose fields were written), ``rows`` (load.csv so far), ``wall_s`` so far, ``finished``
    (true once the run wrote its final outputs), ``extra`` (what else the kind needs: for
    ``coupled_dynamics`` the time, the step count and the noise generator's state).

The distributed unknowns are gathered to rank 0, which writes one file per step, each rank's part
in that rank's own order: a resume needs the same number of ranks and the same partition of the
mesh (checked through ``layout``) and refuses anything else with one line (exit 2). (A
rank-independent order would allow another rank count, but the assembly's summation order
follows the partition, so the resumed numbers would move at round-off.) Rank 0 holds one copy of
the unknowns while writing.

The states of the steps whose fields were written (every ``output.every`` steps) are kept, so a
resume rewrites the field files and the atoms' trajectory from scratch, equal to those of an
uninterrupted run (at most as much disk as the field files themselves); other states are
removed once a newer one is committed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from atomistic.atomic_files import atomic_path
from atomistic.errors import CheckpointMismatch
from continuum.collective import on_root

from .outputs import write_json
from .schema import CaseError

log = logging.getLogger(__name__)

FORMAT = 1
FOLDER = "checkpoint"
META = "checkpoint.json"
#: what a checkpoint.json must hold to be resumed from
REQUIRED = ("format", "kind", "fingerprint", "ranks", "layout", "step", "load_factor", "increments", "state",
            "written", "rows", "wall_s", "finished")


def fingerprint(case, case_dir: Path) -> str:
    """A hash of every setting of ``case`` except the output folder, and of the contents of the
    files it names (model, mesh, interface table)."""
    settings = dataclasses.asdict(case)
    settings["output"] = {k: v for k, v in settings.get("output", {}).items() if k != "dir"}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    interface = getattr(case, "interface", None)
    for name in (case.potential.path, case.mesh.file, getattr(interface, "table", None)):
        if name is not None:
            path = Path(case_dir) / name
            digest.update(hashlib.sha256(path.read_bytes()).digest() if path.is_file() else b"missing")
    return digest.hexdigest()


def layout(problem) -> str:
    """This rank's layout of the unknowns: a hash of its dof coordinates and number of unknowns."""
    x = np.ascontiguousarray(problem.V.tabulate_dof_coordinates(), dtype=float)
    n = len(problem.state()[1])
    return hashlib.sha256(x.tobytes() + f"/{n}".encode()).hexdigest()[:16]


def _on_root(comm, work):
    """``work()`` on rank 0; its result, or its input error, on every rank."""
    return on_root(comm, 0, work, (CaseError, CheckpointMismatch))


class Checkpoints:
    """The checkpoints of one run in ``out/checkpoint`` (collective: every rank calls every
    method). :meth:`open` starts them: removed for a fresh run, read and checked for a resume."""

    def __init__(self, out: Path, comm, case, case_dir: Path):
        self.folder, self.comm = Path(out) / FOLDER, comm
        self.kind, self.name = case.kind, case.name
        self.fingerprint = fingerprint(case, case_dir) if comm.rank == 0 else None
        #: the last committed checkpoint.json (None before the first)
        self.meta: dict | None = None

    @classmethod
    def open(cls, case, ctx, comm) -> Checkpoints:
        """A fresh run's checkpoints (old ones removed) or, with ``ctx.resume``, the last one read:
        :class:`~atomistic.errors.CheckpointMismatch` when it comes from other settings or another
        number of ranks, :class:`~multiscale.schema.CaseError` when there is none."""
        self = cls(ctx.out, comm, case, ctx.case_dir)
        if not ctx.resume:
            if comm.rank == 0:  # and an old run's results, which would read as this run's until its first step
                if self.folder.exists():
                    shutil.rmtree(self.folder)
                for name in ("report.json", "load.csv"):
                    (Path(ctx.out) / name).unlink(missing_ok=True)
            comm.barrier()
            return self
        self.meta = _on_root(comm, self._read)
        if comm.rank == 0:
            log.info("%s: resuming from load step %d (load factor %.6g)%s", self.name, self.meta["step"],
                 self.meta["load_factor"], "; the run had finished" if self.meta["finished"] else "")
        return self

    def _read(self) -> dict:
        path = self.folder / META
        if not path.exists():
            raise CaseError(f"--resume: no checkpoint in {self.folder} (no load step of this case was started "
                            "there); run without --resume to start afresh")
        try:
            meta = json.loads(path.read_text())
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise CheckpointMismatch(f"--resume: {path} cannot be read ({exc}); start afresh without --resume") \
                from None
        if meta.get("format") != FORMAT or meta.get("kind") != self.kind:
            raise CheckpointMismatch(f"--resume: {path} is a checkpoint of kind {meta.get('kind')!r}, format "
                                     f"{meta.get('format')!r} (expected {self.kind!r}, {FORMAT}); start afresh")
        if meta.get("fingerprint") != self.fingerprint:
            raise CheckpointMismatch(f"--resume: the checkpoint in {self.folder} was written with other case "
                                     "settings (or another model, mesh or table file); start afresh without "
                                     "--resume, or into another output folder")
        if meta.get("ranks") != self.comm.size:
            raise CheckpointMismatch(f"--resume: the checkpoint in {self.folder} was written by {meta.get('ranks')} "
                                     f"MPI rank(s), this run has {self.comm.size}; resume with mpiexec -n "
                                     f"{meta.get('ranks')}")
        missing = [key for key in REQUIRED if key not in meta]
        if missing:
            raise CheckpointMismatch(f"--resume: {path} lacks {missing}; start afresh without --resume")
        for file in {meta["state"], *(w[2] for w in meta["written"])}:
            if not (self.folder / file).is_file():
                raise CheckpointMismatch(f"--resume: {self.folder / file}, named by {path}, is missing; start afresh "
                                         "without --resume")
        for stale in self.folder.glob(".*.tmp"):  # left by a kill inside an atomic write
            stale.unlink(missing_ok=True)
        return meta

    @property
    def finished(self) -> bool:
        return bool(self.meta and self.meta["finished"])

    def check_layout(self, problem) -> None:
        """The unknowns are laid out across the ranks as when the checkpoint was written."""
        mine = self.comm.gather(layout(problem), root=0)

        def check():
            if mine != self.meta["layout"]:
                raise CheckpointMismatch(f"--resume: the mesh was partitioned differently from the run that wrote "
                                         f"{self.folder}; its unknowns cannot be read back here (start afresh)")

        _on_root(self.comm, check)

    def load_state(self, file: str) -> np.ndarray:
        """This rank's part of the unknowns in the state file ``file``."""
        parts, error = None, None
        if self.comm.rank == 0:
            try:
                with np.load(self.folder / file, allow_pickle=False) as data:
                    parts = [np.array(data[f"rank{r}"], dtype=float) for r in range(self.comm.size)]
            except (OSError, ValueError, KeyError) as exc:
                error = f"--resume: {self.folder / file} cannot be read ({exc}); start afresh without --resume"
        error = self.comm.bcast(error, root=0)
        if error is not None:
            raise CheckpointMismatch(error)
        return self.comm.scatter(parts, root=0)

    def save(self, step: int, state, *, written: bool, increments: tuple[float, float], rows: list[dict],
             wall_s: float, layout_hash: str | None = None, extra: dict | None = None) -> None:
        """Commit load step ``step``: ``state`` (``problem.state()``: load factor, local unknowns)
        written to its own file, then checkpoint.json; older states no longer needed removed.
        ``extra``: further JSON-able values of the run (the same on every rank), kept as ``extra``."""
        load_factor, values = state
        parts = self.comm.gather(np.asarray(values, dtype=float), root=0)
        layouts = self.comm.gather(layout_hash, root=0) if self.meta is None else None
        if self.comm.rank == 0:
            file = f"state_{step:05d}.npz"
            with atomic_path(self.folder / file) as tmp, open(tmp, "wb") as f:
                np.savez(f, **{f"rank{r}": p for r, p in enumerate(parts)})
            previous = self.meta or {"written": [], "layout": layouts}
            written_list = [*previous["written"], [step, float(load_factor), file]] if written else previous["written"]
            meta = {"format": FORMAT, "kind": self.kind, "name": self.name, "fingerprint": self.fingerprint,
                    "ranks": self.comm.size, "layout": previous["layout"], "step": step,
                    "load_factor": float(load_factor), "increments": [float(v) for v in increments],
                    "state": file, "written": written_list, "rows": rows, "wall_s": float(wall_s),
                    "extra": extra, "finished": False}
            write_json(self.folder / META, meta)
            keep = {file, *(w[2] for w in written_list)}
            for old in self.folder.glob("state_*.npz"):
                if old.name not in keep:
                    old.unlink(missing_ok=True)
            self.meta = meta
        self.meta = self.comm.bcast(self.meta, root=0)

    def finish(self) -> None:
        """Mark the run finished (its final outputs are written): a later ``--resume`` leaves them."""
        if self.comm.rank == 0:
            self.meta = {**self.meta, "finished": True}
            write_json(self.folder / META, self.meta)
        self.meta = self.comm.bcast(self.meta, root=0)

    def finished_report(self, out: Path) -> dict:
        """The report of the finished run in ``out``, unchanged."""
        def read():
            try:
                return json.loads((Path(out) / "report.json").read_text())
            except (OSError, ValueError) as exc:
                raise CheckpointMismatch(f"--resume: the run in {out} has finished but its report.json cannot be "
                                         f"read ({exc}); start afresh without --resume") from None

        report = _on_root(self.comm, read)
        if self.comm.rank == 0:
            log.warning("%s: the run in %s had already finished (load step %d, load factor %.6g); its results "
                    "are left as they are", self.name, out, self.meta["step"], self.meta["load_factor"])
        return report
