"""Read a TOML case file into its typed configuration, validating everything up front."""

from __future__ import annotations

import tomllib
from pathlib import Path

from .active_config import ActiveCase
from .config import MDCase, ReactionCase, TrainCase, VibrationsCase
from .continuum_config import ContinuumCase
from .coupled_config import CoupledCase
from .hopping_config import SurfaceHoppingCase
from .schema import CaseError, build

#: every case kind, by the ``kind`` a case file names
CASE_KINDS = {"train": TrainCase, "md": MDCase, "vibrations": VibrationsCase, "reaction": ReactionCase,
              "continuum": ContinuumCase, "coupled": CoupledCase, "active_learning": ActiveCase,
              "surface_hopping": SurfaceHoppingCase}


def load_case(path: str | Path):
    """Parse and validate ``path``; returns the case's config object (e.g. :class:`TrainCase`)."""
    path = Path(path)
    if not path.is_file():
        raise CaseError(f"{path}: case file not found")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CaseError(f"{path}: not valid TOML ({exc})") from None
    kind = table.get("kind")
    if kind not in CASE_KINDS:
        raise CaseError(f"{path}: kind: expected one of {sorted(CASE_KINDS)}, got {kind!r}")
    try:
        return build(CASE_KINDS[kind], table)
    except CaseError as exc:
        raise CaseError(f"{path}: {exc}") from None
