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
class Kind:
    """A case kind: its ``name`` (the case file's ``kind``), its ``case`` class, its ``run``,
    whether an interrupted run can be continued with ``--resume`` (``resumable``) and whether it
    runs on several MPI ranks (``parallel``; the others run in one process and refuse mpiexec)."""

    name: str
    case: type
    run: Callable[[object, RunContext], dict]
    resumable: bool = False
    parallel: bool = False


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
