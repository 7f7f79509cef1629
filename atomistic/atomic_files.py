"""Atomic file replacement: write to a unique temporary file beside the target, fsync, rename.

A crash leaves either the old file or the new one, never a torn one. Files that grow by records
(datasets, logs) are appended with one write per call instead (:func:`append_bytes`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ase import Atoms
from ase.io import write

from atomistic.errors import CheckpointMismatch  # noqa: F401 (re-exported)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_csv(path: str | os.PathLike, header: list[str], rows) -> Path:
    """Write a CSV table (a header, then ``rows``) atomically."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return write_text(path, buf.getvalue())


def write_extxyz(path: str | os.PathLike, frames: Atoms | Sequence[Atoms], *, append: bool = False,
                 durable: bool = True) -> Path:
    """Write ``frames`` (one ASE ``Atoms`` or a list; their calculators' results included) as extxyz.

    By default the whole file is replaced atomically. ``append``: the records are added at the
    end of ``path`` (created if missing) with one write, so a kill leaves at most one torn record;
    with ``durable`` (the default) that write is flushed and fsynced before this returns.
    ``durable=False`` suits logs that a checkpoint cuts back to a known size anyway.
    """
    buf = io.StringIO()
    write(buf, frames if isinstance(frames, Atoms) else list(frames), format="extxyz")
    if append:
        append_bytes(path, buf.getvalue().encode("utf-8"), durable=durable)
        return Path(path)
    return write_text(path, buf.getvalue())


def append_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> None:
    """One write of ``data`` at the end of ``path``; with ``durable``, flushed and fsynced (the
    folder too when the file is new)."""
    path = Path(path)
    new = not path.exists()
    with open(path, "ab") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    if durable and new:
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path; on success it is fsynced and renamed onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
