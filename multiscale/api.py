"""Public entry points: load a case file and run it."""

from __future__ import annotations

from pathlib import Path

from .case_file import load_case
from .active_config import ActiveCase
from .config import MDCase, ReactionCase, TrainCase, VibrationsCase
from .continuum_config import ContinuumCase
from .coupled_config import CoupledCase
from .hopping_config import SurfaceHoppingCase

__all__ = ["load_case", "run_case"]


def run_case(path: str | Path, *, resume: bool = False, output: str | Path | None = None,
             progress: bool = True) -> dict:
    """Validate and run the case file at ``path``; returns the run's report (a dict).

    Outputs go to ``output``, else the case's ``[output] dir``, else ``runs/<name>``.
    """
    path = Path(path)
    case = load_case(path)
    out = Path(output or case.output.dir or Path("runs") / case.name)
    if isinstance(case, TrainCase):
        from .train_job import run_train

        return run_train(case, path.parent, out, resume=resume, progress=progress)
    if isinstance(case, MDCase):
        from .md_job import run_md

        return run_md(case, path.parent, out, resume=resume, progress=progress)
    if isinstance(case, (VibrationsCase, ReactionCase)):
        from . import analysis_jobs

        run = analysis_jobs.run_vibrations if isinstance(case, VibrationsCase) else analysis_jobs.run_reaction
        return run(case, path.parent, out, resume=resume, progress=progress)
    if isinstance(case, ContinuumCase):
        from .continuum_job import run_continuum

        return run_continuum(case, path.parent, out, resume=resume, progress=progress)
    if isinstance(case, CoupledCase):
        from .coupled_job import run_coupled

        return run_coupled(case, path.parent, out, progress=progress)
    if isinstance(case, ActiveCase):
        from .active_job import run_active

        return run_active(case, path.parent, out, resume=resume, progress=progress)
    if isinstance(case, SurfaceHoppingCase):
        from .hopping_job import run_hopping

        return run_hopping(case, path.parent, out, progress=progress)
    raise NotImplementedError(type(case).__name__)  # unreachable: load_case knows every kind
