"""Atoms from a case file's ``[structure]`` table (see :class:`multiscale.config.StructureConfig`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
import ase.build
from ase.build import bulk, molecule
from ase.io import read

from .schema import CaseError


def build_structures(cfg, case_dir: Path) -> list[Atoms]:
    """``cfg.replicas`` structures, each rattled with its own seed; Å throughout."""
    if cfg.file is not None:
        path = case_dir / cfg.file
        if not path.is_file():
            raise CaseError(f"structure.file: {path} not found")
        try:
            base = read(path, index=cfg.index)
        except Exception as exc:  # ASE raises many types for unreadable files
            raise CaseError(f"structure.file: cannot read {path} ({type(exc).__name__}: {exc})") from None
    elif cfg.molecule is not None:
        base = molecule(cfg.molecule)
    elif cfg.surface is not None:
        try:
            base = getattr(ase.build, cfg.surface)(cfg.element, size=cfg.size, a=cfg.a, vacuum=cfg.vacuum_A)
        except Exception as exc:
            raise CaseError(f"structure: cannot build a {cfg.surface} slab of {cfg.element!r} "
                            f"with a = {cfg.a} ({exc})") from None
        base.info.pop("adsorbate_info", None)  # a dict that extxyz cannot store
    else:
        try:
            base = bulk(cfg.element, cfg.crystal, a=cfg.a, cubic=cfg.cubic and cfg.crystal != "hcp")
        except Exception as exc:
            raise CaseError(f"structure: cannot build a {cfg.crystal} crystal of {cfg.element!r} "
                            f"with a = {cfg.a} ({exc})") from None
        base = base.repeat(cfg.repeat)
    out = []
    for k in range(cfg.replicas):
        atoms = base.copy()
        if cfg.rattle_A > 0:
            rng = np.random.default_rng(cfg.seed + k)
            atoms.positions += rng.normal(scale=cfg.rattle_A, size=atoms.positions.shape)
        out.append(atoms)
    return out
