"""Read a TOML case file into its typed configuration, validating everything up front."""

from __future__ import annotations

import tomllib
from pathlib import Path

from .kinds import KINDS
from .schema import CaseError, build


def load_case(path: str | Path):
    """Parse and validate ``path``; returns the case's config object (e.g. ``MDCase``)."""
    path = Path(path)
    if path.is_dir():
        raise CaseError(f"{path}: is a folder; expected a case file (.toml)")
    if not path.is_file():
        raise CaseError(f"{path}: case file not found")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CaseError(f"{path}: not valid TOML ({exc})") from None
    return case_from_table(table, where=str(path))


def case_from_table(table: dict, where: str = "case"):
    """The case config of a parsed TOML ``table`` (its ``kind`` picks the class)."""
    kind = table.get("kind")
    if kind not in KINDS:
        raise CaseError(f"{where}: kind: expected one of {sorted(KINDS)}, got {kind!r}")
    try:
        return build(KINDS[kind].case, table)
    except CaseError as exc:
        raise CaseError(f"{where}: {exc}") from None
