"""Load a case file and run it: the functions the CLI is a thin layer over.

    from multiscale import load_case, run_case
    report = run_case("cases/cu_md/nvt.toml", output="runs/nvt")
"""

from __future__ import annotations

from pathlib import Path

from .case_file import load_case
from .kinds import KINDS, RunContext
from .schema import CaseError

__all__ = ["load_case", "run", "run_case"]


def run(case, case_dir: str | Path = ".", *, resume: bool = False, output: str | Path | None = None,
        progress: bool = True) -> dict:
    """Run an already built case config (e.g. from :func:`load_case`, perhaps changed with
    :func:`dataclasses.replace`); relative paths in it start at ``case_dir``. Returns the report.

    Outputs go to ``output``, else the case's ``[output] dir``, else ``runs/<name>``. ``resume``
    continues an interrupted run from its checkpoints; a kind that cannot resume refuses it.
    """
    kind = KINDS[case.kind]
    if resume and not kind.resumable:
        raise CaseError(f"--resume: kind {case.kind!r} cannot resume an interrupted run; run it again without "
                        f"--resume (kinds that can: {', '.join(sorted(k for k, v in KINDS.items() if v.resumable))})")
    out = Path(output or case.output.dir or Path("runs") / case.name)
    return kind.run(case, RunContext(case_dir=Path(case_dir), out=out, resume=resume, progress=progress))


def run_case(path: str | Path, *, resume: bool = False, output: str | Path | None = None,
             progress: bool = True) -> dict:
    """Validate and run the case file at ``path``; returns the run's report (a dict)."""
    path = Path(path)
    return run(load_case(path), path.parent, resume=resume, output=output, progress=progress)
