"""Every file a case writes goes through here: atomic (write, fsync, rename), so a kill leaves the
old file or the new one, never a torn one (appended trajectories: one write per frame, fsynced);
and one report envelope for every kind.

``report.json`` always holds ``name``, ``kind``, ``version``, ``wall_s`` and ``timings_s``
(seconds by phase), then the kind's own results.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from atomistic.atomic_files import write_csv as _write_csv
from atomistic.atomic_files import write_extxyz, write_text

from . import __version__

__all__ = ["Report", "write_csv", "write_extxyz", "write_json", "write_rows", "write_text"]


def write_json(path: Path, data) -> Path:
    """``data`` as indented JSON (numpy scalars as numbers), atomically."""
    return write_text(path, json.dumps(data, indent=2, default=float) + "\n")


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """A CSV table (header, then rows), atomically."""
    return _write_csv(path, list(header), rows)


def write_rows(path: Path, rows: Sequence[dict]) -> Path:
    """A CSV table from dicts with the same keys (the first row's order), atomically."""
    header = list(rows[0]) if rows else []
    return _write_csv(path, header, ([row[k] for k in header] for row in rows))


class Report:
    """The report envelope of a run: ``Report(case)`` starts the clock; ``timings_s[phase]`` collects
    seconds; :meth:`write` adds ``wall_s`` and writes ``report.json`` atomically."""

    def __init__(self, case):
        self.name, self.kind = case.name, case.kind
        self.started = time.perf_counter()
        self.timings_s: dict[str, float] = {}

    def envelope(self, body: dict) -> dict:
        wall = time.perf_counter() - self.started
        timings = {k: round(float(v), 4) for k, v in {**self.timings_s, **body.pop("timings_s", {})}.items()}
        return {"name": self.name, "kind": self.kind, "version": __version__, "wall_s": wall,
                "timings_s": timings, **body}

    def write(self, out: Path, body: dict, *, on_this_rank: bool = True) -> dict:
        """The whole report (envelope + ``body``), written to ``out/report.json`` (on this rank)."""
        report = self.envelope(dict(body))
        if on_this_rank:
            write_json(out / "report.json", report)
        return report
