"""Model files: safetensors weights plus a JSON header, never a pickle.

One ``.safetensors`` file holds every member of a committee (tensor names ``member{k}.{param}``)
and, in the safetensors metadata under ``"multiscale"``, a JSON header::

    format, format_version, kind, species, cutoff, angular_cutoff, descriptor, network,
    n_members, units, dataset_hash, code_version, provenance

safetensors parses only a JSON header and raw arrays: loading executes nothing. Files that are
not safetensors (a torch.save pickle or zip, anything else) are refused with a clear message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from atomistic.atomic_files import atomic_path
from atomistic.errors import ModelFileError
from atomistic.potential.committee import Committee
from atomistic.potential.descriptors import DescriptorSettings
from atomistic.potential.models import BPPotential, NetworkSettings
from atomistic.units import UNITS
from atomistic.version import __version__

FORMAT = "multiscale-nnpes"
FORMAT_VERSION = 1


def _members(model: BPPotential | Committee) -> list[BPPotential]:
    return list(model.members) if isinstance(model, Committee) else [model]


def save_potential(model: BPPotential | Committee, path: str | os.PathLike, *, dataset_hash: str = "",
                   provenance: dict | None = None) -> Path:
    """Write ``model`` (one potential or a committee) to ``path`` atomically (write, then rename)."""
    path = Path(path)
    members = _members(model)
    first = members[0]
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "behler_parrinello",
        "species": first.species,
        "cutoff": first.cutoff,
        "angular_cutoff": first.angular_cutoff,
        **first.settings(),
        "n_members": len(members),
        "units": UNITS,
        "dataset_hash": dataset_hash,
        "code_version": __version__,
        "provenance": provenance or {},
    }
    tensors = {}
    for k, m in enumerate(members):
        for name, t in m.state_dict().items():
            tensors[f"member{k}.{name}"] = t.detach().to("cpu", torch.float64).contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"multiscale": json.dumps(header)})
    return path


def read_header(path: str | os.PathLike, kinds: tuple[str, ...] = ("behler_parrinello",)) -> dict:
    """The JSON header of a model file (validated, its ``kind`` one of ``kinds``), without
    loading weights."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder; expected a model file (.safetensors)")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    with open(path, "rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    looks_safetensors = len(head) == 9 and head[8:9] == b"{" and 8 + int.from_bytes(head[:8], "little") <= size
    if not looks_safetensors and (head[:1] == b"\x80" or head[:4] == b"PK\x03\x04"):
        raise ModelFileError(
            f"{path}: this is a pickled (torch.save) file; multiscale refuses to unpickle model files "
            "because unpickling can run arbitrary code. Use a .safetensors model written by save_potential."
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a safetensors model file ({exc})") from None
    if "multiscale" not in meta:
        raise ModelFileError(f"{path}: safetensors file without a multiscale header")
    try:
        header = json.loads(meta["multiscale"])
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the header is not a JSON object")
    if header.get("format") != FORMAT:
        raise ModelFileError(f"{path}: format {header.get('format')!r}, expected {FORMAT!r}")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format_version {header.get('format_version')!r} is not supported "
            f"(this code reads version {FORMAT_VERSION})"
        )
    if header.get("kind") not in kinds:
        raise ModelFileError(f"{path}: model kind {header.get('kind')!r}, expected one of {list(kinds)}")
    species = header.get("species")
    if not isinstance(species, list) or not species or not all(_is_element(s) for s in species):
        raise ModelFileError(f"{path}: species {species!r} is not a list of chemical elements")
    return header


def _is_element(symbol) -> bool:
    from ase.data import atomic_numbers

    return isinstance(symbol, str) and symbol in atomic_numbers and symbol != "X"


def header_settings(header: dict, path) -> tuple[DescriptorSettings, NetworkSettings]:
    """The descriptor and network settings a model file's header names."""
    try:
        d = dict(header["descriptor"])
        d["angular_terms"] = tuple(tuple(t) for t in d["angular_terms"])
        n = dict(header["network"])
        return DescriptorSettings(**d), NetworkSettings(hidden=tuple(n["hidden"]), activation=n["activation"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: bad descriptor/network settings in header ({exc!r})") from None


def load_potential(path: str | os.PathLike, *, device: str | torch.device = "cpu",
                   dtype: torch.dtype = torch.float64) -> BPPotential | Committee:
    """Load a model file; returns a :class:`BPPotential` or, for several members, a
    :class:`~atomistic.potential.committee.Committee`."""
    header = read_header(path)
    descriptor, network = header_settings(header, path)
    try:
        n_members = int(header["n_members"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: bad n_members in header ({exc!r})") from None
    if n_members < 1:
        raise ModelFileError(f"{path}: n_members must be >= 1, got {n_members}")
    members = []
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        for k in range(n_members):
            model = BPPotential(header["species"], descriptor, network)
            prefix = f"member{k}."
            state = {name[len(prefix):]: f.get_tensor(name) for name in keys if name.startswith(prefix)}
            try:
                model.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise ModelFileError(f"{path}: weights do not match the header ({exc})") from None
            members.append(model.to(device=device, dtype=dtype))
    model = members[0] if len(members) == 1 else Committee(members)
    model.header = header
    return model.eval()
