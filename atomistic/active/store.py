"""The labelled dataset of an active-learning run: append-only on disk, nothing labelled is lost.

``dataset.extxyz`` holds one extxyz record per label. Each record carries a unique integer
``label_id`` in its info line and is appended with a single write, then flushed and fsynced
before :meth:`LabelledStore.append` returns. A kill at any moment can leave at most one torn
record at the end of the file; opening the store cuts it off (with a warning), so the file
always holds exactly the labels that were completed. Records are written exactly (positions
and forces to the last bit, not ASE's 8 decimals) and :attr:`LabelledStore.frames` holds them as
they read back, so a run trains on the very numbers a resumed run reads from the file.

Labels that failed (oracle exceptions, unconverged SCF, time-outs) go to ``failures.jsonl``,
one fsynced JSON line each, and the configuration is kept in ``failed/label_<id>.extxyz``.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

from ase import Atoms
from ase.io import read

from atomistic.atomic_files import append_bytes, extxyz_text, write_extxyz

log = logging.getLogger(__name__)


def _complete_records(text: str) -> int:
    """Length in characters of the longest prefix of ``text`` made of whole extxyz records."""
    end, pos = 0, 0
    while pos < len(text):
        head = text.find("\n", pos)
        if head < 0:
            break
        try:
            n = int(text[pos:head].strip())
        except ValueError:
            break
        stop = head
        for _ in range(n + 1):  # the comment line and n atom lines, each ending in a newline
            stop = text.find("\n", stop + 1)
            if stop < 0:
                return end
        pos = end = stop + 1
    return end


class LabelledStore:
    """The append-only dataset in ``folder`` (``dataset.extxyz``, ``failures.jsonl``, ``failed/``).

    ``frames``: the labelled ``Atoms`` (energy eV, forces eV/Å, stress eV/Å^3 where labelled) in
    the order they were added; ``ids``: their ``label_id`` values; ``failed_ids``: labels that
    failed and were set aside.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "dataset.extxyz"
        self.failures_path = self.folder / "failures.jsonl"
        self.frames: list[Atoms] = self._read()
        self.ids: list[int] = [int(a.info["label_id"]) for a in self.frames]
        self.failures: list[dict] = self._read_failures()
        self.failed_ids = {int(f["label_id"]) for f in self.failures}

    def __len__(self) -> int:
        return len(self.frames)

    def __contains__(self, label_id: int) -> bool:
        return label_id in self.ids or label_id in self.failed_ids

    def _read(self) -> list[Atoms]:
        if not self.path.exists():
            return []
        raw = self.path.read_bytes()
        text = raw.decode("utf-8", errors="replace")
        keep = _complete_records(text)
        if keep < len(text):
            log.warning("%s: cutting off a torn last record (%d bytes) left by an interrupted write",
                        self.path, len(raw) - len(text[:keep].encode()))
            with open(self.path, "r+b") as f:
                f.truncate(len(text[:keep].encode()))
                os.fsync(f.fileno())
        if keep == 0:
            return []
        frames = read(io.StringIO(text[:keep]), index=":", format="extxyz")
        for k, a in enumerate(frames):
            if "label_id" not in a.info or a.calc is None or "forces" not in a.calc.results:
                raise ValueError(f"{self.path}: record {k} has no label_id or no forces; this is not "
                                 "an active-learning dataset")
        return frames

    def _read_failures(self) -> list[dict]:
        if not self.failures_path.exists():
            return []
        out = []
        for line in self.failures_path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a torn last line: that failure was never recorded
                log.warning("%s: ignoring a torn line", self.failures_path)
        return out

    def append(self, atoms: Atoms, label_id: int, **info) -> None:
        """Add one labelled configuration durably (it is on disk when this returns)."""
        if label_id in self:
            raise ValueError(f"label {label_id} is already in {self.path}")
        if atoms.calc is None or "forces" not in atoms.calc.results:
            raise ValueError("append needs a labelled configuration (energy and forces)")
        a = atoms.copy()
        a.calc = atoms.calc
        a.info.update(info, label_id=int(label_id))
        record = extxyz_text(a, exact=True)
        append_bytes(self.path, record.encode("utf-8"))
        # keep the label as it reads back from the file, not the oracle's object: a resumed run
        # trains on what it reads from disk, so an uninterrupted run must train on exactly that too
        # (the record is written exactly, so these are the oracle's numbers bit for bit)
        self.frames.append(read(io.StringIO(record), format="extxyz"))
        self.ids.append(int(label_id))

    def record_failure(self, atoms: Atoms, label_id: int, reason: str, kind: str, **info) -> Path:
        """Keep a configuration the oracle could not label, and the reason, durably."""
        if label_id in self:
            raise ValueError(f"label {label_id} is already recorded")
        where = self.folder / "failed" / f"label_{label_id:05d}.extxyz"
        a = atoms.copy()
        a.calc = None
        a.info.update(info, label_id=int(label_id), failure=kind)
        write_extxyz(where, a)
        entry = {"label_id": int(label_id), "kind": kind, "reason": reason, "configuration": str(where), **info}
        append_bytes(self.failures_path, (json.dumps(entry, default=float) + "\n").encode("utf-8"))
        self.failures.append(entry)
        self.failed_ids.add(int(label_id))
        return where
