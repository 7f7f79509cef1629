"""Atomic file replacement: write to a unique temporary file beside the target, fsync, rename.

A crash leaves either the old file or the new one, never a torn one. Files that grow by records
(datasets, logs) are appended with one write per call instead (:func:`append_bytes`). New files get
the permissions any other program would give them (0666 less the umask: shareable), not the
0600 of a temporary file; CSV rows end in ``\n``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
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
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return write_text(path, buf.getvalue())


def write_extxyz(path: str | os.PathLike, frames: Atoms | Sequence[Atoms], *, append: bool = False,
                 durable: bool = True, exact: bool = False) -> Path:
    """Write ``frames`` (one ASE ``Atoms`` or a list; their calculators' results included) as extxyz.

    By default the whole file is replaced atomically. ``append``: the records are added at the
    end of ``path`` (created if missing) with one write, so a kill leaves at most one torn record;
    with ``durable`` (the default) that write is flushed and fsynced before this returns.
    ``durable=False`` suits logs that a checkpoint cuts back to a known size anyway.
    ``exact``: see :func:`extxyz_text`.
    """
    text = extxyz_text(frames, exact=exact)
    if append:
        append_bytes(path, text.encode("utf-8"), durable=durable)
        return Path(path)
    return write_text(path, text)


def extxyz_text(frames: Atoms | Sequence[Atoms], *, exact: bool = False) -> str:
    """``frames`` as extxyz text (ASE's writer). ASE writes the cell, the energy, the stress and the
    info values exactly, but per-atom real columns (positions, forces, ...) with 8 decimals.
    ``exact``: those columns get the shortest text that reads back as the same float, so reading
    the text gives the very numbers that were written (data that is trained on, then re-read
    by a resumed run)."""
    frames = [frames] if isinstance(frames, Atoms) else list(frames)
    # parallel=False: under MPI, ASE's writer would broadcast from rank 0 to every rank, and the
    # callers write on one rank only (the other ranks' next collective would receive it)
    if not exact:
        buf = io.StringIO()
        write(buf, frames, format="extxyz", parallel=False)
        return buf.getvalue()
    return "".join(_exact_record(a) for a in frames)


def _exact_record(atoms: Atoms) -> str:
    from ase.io.extxyz import REV_PROPERTY_NAME_MAP, key_val_str_to_dict, save_calc_results

    buf = io.StringIO()
    write(buf, atoms, format="extxyz", parallel=False)
    lines = buf.getvalue().splitlines(keepends=True)
    full = atoms.copy()  # the arrays ASE wrote from: the atoms' own and the calculator's per-atom results
    save_calc_results(full, atoms.calc, calc_prefix="")
    spec = key_val_str_to_dict(lines[1])["Properties"].split(":")
    columns = []  # (first token, number of tokens, exact values per atom) of every real column
    start = 0
    for name, kind, ncol in zip(spec[::3], spec[1::3], map(int, spec[2::3])):
        values = full.arrays.get(REV_PROPERTY_NAME_MAP.get(name, name))
        if kind == "R" and values is not None and values.shape in ((len(atoms), ncol), (len(atoms),)):
            columns.append((start, ncol, np.asarray(values, dtype=float).reshape(len(atoms), ncol)))
        start += ncol
    for i in range(len(atoms)):
        tokens = lines[2 + i].split()
        for first, ncol, values in columns:
            tokens[first:first + ncol] = [repr(float(x)) for x in values[i]]
        lines[2 + i] = " ".join(tokens) + "\n"
    return "".join(lines)


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


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def _mode_of(path: Path) -> int:
    """The permissions ``path`` has (kept on replacement), or 0666 less the umask for a new file."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o666 & ~_umask()


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
        os.chmod(tmp, _mode_of(path))
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
