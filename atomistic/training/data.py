"""Labelled datasets: ASE frames with energy (eV), forces (eV/Å) and optionally stress (eV/Å^3).

Read from extxyz or an ASE database; every frame is checked up front, and a bad one is named by
file and frame index. Training tensors are prepared once here (labels, neighbour lists).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from atomistic.atomic_files import write_extxyz
from atomistic.errors import DatasetError, UnknownSpeciesError
from atomistic.potential.neighbors import drop_cross_body_edges, edge_list
from atomistic.potential.structure import from_atoms


def label(atoms: Atoms, energy: float, forces: np.ndarray, stress: np.ndarray | None = None) -> Atoms:
    """Attach reference labels to a copy of ``atoms`` (stress in eV/Å^3, Voigt or 3x3)."""
    out = atoms.copy()
    results = {"energy": float(energy), "forces": np.asarray(forces, dtype=float)}
    if stress is not None:
        results["stress"] = np.asarray(stress, dtype=float)
    out.calc = SinglePointCalculator(out, **results)
    return out


def label_with(atoms: Atoms, calc, stress: bool = True) -> Atoms:
    """Label ``atoms`` with an ASE calculator (the oracle). Stress only for 3-D periodic cells."""
    a = atoms.copy()
    a.calc = calc
    s = a.get_stress() if stress and a.pbc.all() else None
    return label(atoms, a.get_potential_energy(), a.get_forces(), s)


def read_frames(path: str | os.PathLike) -> list[Atoms]:
    """Read and validate labelled frames from ``.xyz``/``.extxyz`` or an ASE database (``.db``)."""
    from ase.io import read

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: dataset file not found")
    try:
        if path.suffix == ".db":
            import ase.db

            with ase.db.connect(str(path)) as db:
                frames = [row.toatoms(add_additional_information=False) for row in db.select()]
        else:
            frames = read(str(path), index=":")
    except Exception as exc:  # ASE raises many kinds for malformed files
        raise DatasetError(f"{path}: cannot read dataset ({type(exc).__name__}: {exc})") from None
    validate_frames(frames, str(path))
    return frames


def validate_frames(frames: Sequence[Atoms], source: str = "dataset") -> None:
    """Every frame needs a finite energy and finite forces of the right shape; stress is optional."""
    if not frames:
        raise DatasetError(f"{source}: no frames")
    for k, a in enumerate(frames):
        where = f"{source}, frame {k}"
        if a.calc is None or "energy" not in a.calc.results:
            raise DatasetError(f"{where}: no energy label")
        if "forces" not in a.calc.results:
            raise DatasetError(f"{where}: no forces label")
        e = a.calc.results["energy"]
        f = np.asarray(a.calc.results["forces"])
        if not np.isfinite(e):
            raise DatasetError(f"{where}: energy is {e}")
        if f.shape != (len(a), 3):
            raise DatasetError(f"{where}: forces have shape {f.shape}, expected ({len(a)}, 3)")
        if not np.isfinite(f).all():
            raise DatasetError(f"{where}: forces contain NaN or inf")
        s = a.calc.results.get("stress")
        if s is not None and np.asarray(s).shape not in ((6,), (3, 3)):
            raise DatasetError(f"{where}: stress has shape {np.asarray(s).shape}, expected (6,) or (3, 3)")
        if s is not None and not np.isfinite(np.asarray(s)).all():
            raise DatasetError(f"{where}: stress contains NaN or inf")


def write_frames(frames: Sequence[Atoms], path: str | os.PathLike) -> Path:
    """Write labelled frames as extxyz, atomically (:func:`~atomistic.atomic_files.write_extxyz`)."""
    return write_extxyz(path, frames)


def dataset_hash(frames: Sequence[Atoms]) -> str:
    """A content hash of structures and labels (sha256, first 16 hex digits)."""
    h = hashlib.sha256()
    for a in frames:
        stress = a.calc.results.get("stress")
        for arr in (a.numbers, a.positions, a.cell.array, a.pbc, a.calc.results["forces"],
                    np.zeros(0) if stress is None else stress):
            h.update(np.ascontiguousarray(arr, dtype=float).tobytes())
        h.update(np.float64(a.calc.results["energy"]).tobytes())
    return h.hexdigest()[:16]


@dataclass
class Frame:
    """One labelled structure prepared for training (CPU tensors, float64).

    positions (n, 3) Å; cell (3, 3) Å; species (n,); energy eV; forces (n, 3) eV/Å;
    stress (3, 3) eV/Å^3 or None; edges: (i, j, shift, distance) within the cutoff (body-masked).
    """

    positions: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    species: torch.Tensor
    energy: float
    forces: torch.Tensor
    stress: torch.Tensor | None
    edges: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

    @property
    def n_atoms(self) -> int:
        return len(self.positions)


def prepare(frames: Sequence[Atoms], species: Sequence[str], cutoff: float) -> list[Frame]:
    """Tensors and neighbour edges of every frame, computed once. Frames with per-atom ``body``
    labels lose their cross-body edges here, exactly as in :func:`build_neighbors`."""
    out = []
    for k, a in enumerate(frames):
        try:
            s = from_atoms(a, species)
        except UnknownSpeciesError as exc:
            raise UnknownSpeciesError(f"frame {k}: {exc}") from None
        stress = a.calc.results.get("stress")
        if stress is not None:
            stress = np.asarray(stress, dtype=float)
            if stress.shape == (6,):
                xx, yy, zz, yz, xz, xy = stress
                stress = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
            stress = torch.as_tensor(stress, dtype=torch.float64)
        edges = drop_cross_body_edges(edge_list(s, cutoff), s.body)
        out.append(Frame(
            positions=s.positions, cell=s.cell[0], pbc=s.pbc[0], species=s.species,
            energy=float(a.calc.results["energy"]),
            forces=torch.as_tensor(np.asarray(a.calc.results["forces"]), dtype=torch.float64),
            stress=stress, edges=edges,
        ))
    return out
