"""Load a case file and run it: the functions the CLI is a thin layer over.

    from multiscale import load_case, run_case
    report = run_case("cases/cu_md/nvt.toml", output="runs/nvt")
"""

from __future__ import annotations

import os
from pathlib import Path

from .case_file import load_case
from .kinds import KINDS, OutputStep, RunContext
from .schema import CaseError

__all__ = ["OutputStep", "Steps", "check_case", "irun", "load_case", "run", "run_case"]

#: environment variables that MPI launchers set to the number of ranks (MPICH/Hydra, Open MPI)
_WORLD_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
#: ... and to this process's rank
_WORLD_RANK = ("PMI_RANK", "OMPI_COMM_WORLD_RANK")


def _launcher_number(names: tuple[str, ...], default: int) -> int:
    """The first of the launcher's environment variables ``names`` that holds a number, else
    ``default``: read without loading any MPI library."""
    for name in names:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return default


def launched_ranks() -> int:
    """How many MPI ranks the launcher started this process among (1 outside mpiexec)."""
    return _launcher_number(_WORLD_SIZE, 1)


def launched_rank() -> int:
    """This process's MPI rank as the launcher set it (0 outside mpiexec)."""
    return _launcher_number(_WORLD_RANK, 0)


def run(case, case_dir: str | Path = ".", *, resume: bool = False, output: str | Path | None = None,
        progress: bool = True) -> dict:
    """Run an already built case config (e.g. from :func:`load_case`, perhaps changed with
    :func:`dataclasses.replace`); relative paths in it start at ``case_dir``. Returns the report.

    Outputs go to ``output``, else the case's ``[output] dir``, else ``runs/<name>``. ``resume``
    continues an interrupted run from its checkpoints; a kind that cannot resume refuses it.
    """
    kind, context = _prepare(case, case_dir, resume, output, progress)
    return kind.run(case, context)


class Steps:
    """The iterator :func:`irun` returns: its items are :class:`~multiscale.kinds.OutputStep`;
    once it is exhausted, :attr:`report` holds the run's report (None before). To stop early, leave
    the loop and :meth:`close` it (or use it in a ``with`` block): the checkpoints written so far
    stay, and ``resume=True`` continues from the last of them. Under ``mpiexec``, every rank must
    iterate alike."""

    def __init__(self, steps):
        self._steps = steps
        self.report: dict | None = None

    def __iter__(self):
        return self

    def __next__(self) -> OutputStep:
        try:
            return next(self._steps)
        except StopIteration as stop:
            self.report = stop.value
            raise

    def close(self) -> None:
        """Stop the run here: its output files are closed, its checkpoints stay (what happens to
        an iterator left in a ``for`` loop once nothing refers to it)."""
        self._steps.close()

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def irun(case, case_dir: str | Path = ".", *, resume: bool = False, output: str | Path | None = None,
         progress: bool = True) -> Steps:
    """:func:`run` as an iterator over the run's output steps (a thermo line each, t = 0 included),
    for the kinds that step in time (``coupled_dynamics``)::

        steps = irun(load_case("cases/dynamics/debonding_bars.toml"), "cases/dynamics", output="runs/x")
        for step in steps:
            print(step.time_fs, step.thermo["hamiltonian_eV"], step.state.free_atom_temperature_K())
        report = steps.report

    Every output file is written as by :func:`run`, and the errors :func:`run` raises are raised
    by the iteration (a kind without output steps is refused here)."""
    kind, context = _prepare(case, case_dir, resume, output, progress)
    if kind.iterate is None:
        raise CaseError(f"irun: kind {case.kind!r} has no output steps to yield; use run() (kinds that do: "
                        f"{', '.join(sorted(k for k, v in KINDS.items() if v.iterate is not None))})")
    return Steps(kind.iterate(case, context))


def _prepare(case, case_dir, resume: bool, output, progress: bool):
    """The kind of ``case`` and the run's context, after the checks every run makes first."""
    kind = KINDS[case.kind]
    ranks = launched_ranks()
    if ranks > 1 and not kind.runs_on_ranks(case):
        which = "this case" if callable(kind.parallel) else f"kind {case.kind!r}"
        raise CaseError(f"mpiexec: {which} runs in one process ({ranks} ranks were started, and each would write "
                        "the same files); run it without mpiexec (what uses MPI: "
                        f"{', '.join(sorted(v.parallel_description() for v in KINDS.values() if v.parallel))})")
    if resume and not kind.resumable:
        raise CaseError(f"--resume: kind {case.kind!r} cannot resume an interrupted run; run it again without "
                        f"--resume (kinds that can: {', '.join(sorted(k for k, v in KINDS.items() if v.resumable))})")
    if ranks > 1:
        # the files the case names, checked on every rank before any collective step: a missing
        # or broken model file then fails every rank alike (one message, exit 2), where a failure
        # on the rank that loads it would leave the others waiting for it
        from .common import check_files

        check_files(case, Path(case_dir))
    out = Path(output or case.output.dir or Path("runs") / case.name)
    return kind, RunContext(case_dir=Path(case_dir), out=out, resume=resume, progress=progress)


def check_case(path: str | Path):
    """Everything that can be known without solving: the case file (schema and cross-table
    checks) and the files it names (the model file is loaded, a structure file read). Returns the
    case; raises the input error a run would raise."""
    from .common import check_files

    path = Path(path)
    case = load_case(path)
    check_files(case, path.parent)
    return case


def run_case(path: str | Path, *, resume: bool = False, output: str | Path | None = None,
             progress: bool = True) -> dict:
    """Validate and run the case file at ``path``; returns the run's report (a dict)."""
    path = Path(path)
    return run(load_case(path), path.parent, resume=resume, output=output, progress=progress)
