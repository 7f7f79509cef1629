"""Files of trained diabatic models: safetensors weights and the JSON header of
:mod:`atomistic.potential.io` (kind ``"diabatic"``, plus ``n_states``), never a pickle."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from atomistic.atomic_files import atomic_path
from atomistic.errors import ModelFileError
from atomistic.multistate.network import DiabaticPotential
from atomistic.potential.io import FORMAT, FORMAT_VERSION, header_settings, read_header
from atomistic.units import UNITS
from atomistic.version import __version__


def save_diabatic(model: DiabaticPotential, path: str | os.PathLike, *, provenance: dict | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (write, then rename)."""
    path = Path(path)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "diabatic", "species": model.species,
              "n_states": model.n_states, "cutoff": model.cutoff,
              "descriptor": asdict(model.descriptor_settings), "network": asdict(model.network_settings),
              "units": UNITS, "code_version": __version__, "provenance": provenance or {}}
    tensors = {k: t.detach().to("cpu", torch.float64).contiguous() for k, t in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"multiscale": json.dumps(header)})
    return path


def load_diabatic(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> DiabaticPotential:
    """Load a diabatic model file written by :func:`save_diabatic` (float64, on ``device``)."""
    header = read_header(path, kinds=("diabatic",))
    descriptor, network = header_settings(header, path)
    n_states = header.get("n_states")
    if not isinstance(n_states, int) or n_states < 2:
        raise ModelFileError(f"{path}: n_states {n_states!r} is not an integer >= 2")
    model = DiabaticPotential(header["species"], n_states, descriptor, network)
    with safe_open(str(path), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not match the header ({exc})") from None
    model.header = header
    return model.to(device).eval()
