"""The case kinds: one module each, found by the registry :data:`KINDS`.

A kind module defines its tables (frozen dataclasses, 1:1 with the TOML), its ``Case`` (with
``kind: Literal["<name>"]``), a ``run(case, context) -> dict`` and one line that registers them::

    KIND = Kind("md", MDCase, run, resumable=True)

Nothing else needs to change to add a kind: :func:`discover` imports every module of this
package and collects its ``KIND``. Heavy dependencies (DOLFINx, PETSc) are imported inside
``run``, never at module level, so loading a case file of any kind stays cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class RunContext:
    """Where a run reads and writes: ``case_dir`` (relative paths of the case file start there),
    ``out`` (the output folder), ``resume`` (continue from the checkpoints in ``out``),
    ``progress`` (progress bars)."""

    case_dir: Path
    out: Path
    resume: bool = False
    progress: bool = True


@dataclass(frozen=True)
class OutputStep:
    """What :func:`multiscale.api.irun` yields at every output step of a run: the ``step`` and the
    time (``time_fs``) it reached, its ``thermo`` line (the row written to ``thermo.csv``: energies
    in eV, temperatures in K) and the live ``state`` of the run (for ``coupled_dynamics``, the
    :class:`~coupling.dynamics.CoupledDynamics`: ``state.atoms()``, ``state.nodal_velocity()``,
    ``state.problem``). Read the state, don't change it; it moves on at the next step."""

    step: int
    time_fs: float
    thermo: dict
    state: object


def drain(steps):
    """Run the generator ``steps`` to its end; its return value (a kind's report)."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


@dataclass(frozen=True)
class Kind:
    """A case kind: its ``name`` (the case file's ``kind``), its ``case`` class, its ``run``,
    whether an interrupted run can be continued with ``--resume`` (``resumable``), whether it
    runs on several MPI ranks (``parallel``: True, or a function of the case, with
    ``parallel_note`` saying when; the others run in one process and refuse mpiexec)
    and, for kinds that step in time, ``iterate(case, context)``: a generator of
    :class:`OutputStep` that returns the report (what :func:`multiscale.api.irun` drives)."""

    name: str
    case: type
    run: Callable[[object, RunContext], dict]
    resumable: bool = False
    parallel: bool | Callable[[object], bool] = False
    iterate: Callable | None = None
    parallel_note: str = ""

    def runs_on_ranks(self, case) -> bool:
        """Whether ``case`` of this kind runs on several MPI ranks."""
        return bool(self.parallel(case)) if callable(self.parallel) else bool(self.parallel)

    def parallel_description(self) -> str:
        """The kind's name, with when it uses MPI if only some of its cases do."""
        return f"kind {self.name!r} {self.parallel_note}".strip()


@cache
def discover() -> dict[str, Kind]:
    """Every kind, by name, from the modules of this package."""
    kinds: dict[str, Kind] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if not isinstance(kind, Kind):
            continue
        if kind.name in kinds:
            raise RuntimeError(f"case kind {kind.name!r} is registered twice ({module.__name__})")
        kinds[kind.name] = kind
    return kinds


class _Registry:
    """A read-only mapping name -> :class:`Kind`, filled on first use."""

    def __getitem__(self, name: str) -> Kind:
        return discover()[name]

    def __contains__(self, name: object) -> bool:
        return name in discover()

    def __iter__(self):
        return iter(discover())

    def __len__(self) -> int:
        return len(discover())

    def keys(self):
        return discover().keys()

    def items(self):
        return discover().items()

    def values(self):
        return discover().values()


#: the one registry of case kinds: name -> :class:`Kind`
KINDS = _Registry()
