"""Load a case file and run it: the functions the CLI is a thin layer over.

    from multiscale import load_case, run_case
    report = run_case("cases/cu_md/nvt.toml", output="runs/nvt")
"""

from __future__ import annotations

import os
from pathlib import Path

from .case_file import load_case
from .kinds import KINDS, RunContext
from .schema import CaseError

__all__ = ["check_case", "load_case", "run", "run_case"]

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
    kind = KINDS[case.kind]
    ranks = launched_ranks()
    if ranks > 1 and not kind.parallel:
        raise CaseError(f"mpiexec: kind {case.kind!r} runs in one process ({ranks} ranks were started, and each "
                        "would write the same files); run it without mpiexec (kinds that use MPI: "
                        f"{', '.join(sorted(k for k, v in KINDS.items() if v.parallel))})")
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
    return kind.run(case, RunContext(case_dir=Path(case_dir), out=out, resume=resume, progress=progress))


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
