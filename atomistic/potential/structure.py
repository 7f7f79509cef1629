"""ASE ``Atoms`` <-> tensors: a batch of structures as flat, device-resident arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from ase import Atoms
from ase.constraints import FixAtoms

from atomistic.errors import InputMismatch, UnknownSpeciesError


@dataclass(frozen=True)
class Structures:
    """One or more structures, concatenated.

    positions  (n_atoms, 3) Å
    cell       (n_structures, 3, 3) Å, rows are lattice vectors (as in ASE)
    pbc        (n_structures, 3) bool
    species    (n_atoms,) long, index into the model's species list
    batch      (n_atoms,) long, structure index of each atom
    body       (n_atoms,) long or None, body label (edges between bodies are dropped)
    """

    positions: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    species: torch.Tensor
    batch: torch.Tensor
    n_atoms: tuple[int, ...]
    body: torch.Tensor | None = None

    @property
    def n_structures(self) -> int:
        return len(self.n_atoms)

    @property
    def volume(self) -> torch.Tensor:
        """(n_structures,) Å^3, |det(cell)| (zero where the cell is degenerate, e.g. no cell)."""
        return cell_volume(self.cell)

    def to(self, device=None, dtype=None) -> Structures:
        dtype = dtype or self.positions.dtype
        return replace(
            self,
            positions=self.positions.to(device=device, dtype=dtype),
            cell=self.cell.to(device=device, dtype=dtype),
            pbc=self.pbc.to(device),
            species=self.species.to(device),
            batch=self.batch.to(device),
            body=None if self.body is None else self.body.to(device),
        )


def cell_volume(cell: torch.Tensor) -> torch.Tensor:
    """|det(cell)| of cells (..., 3, 3) Å, as the triple product (Å^3): a few elementwise kernels,
    no linear-algebra library call, so it can sit inside a captured CUDA graph."""
    return (torch.linalg.cross(cell[..., 0, :], cell[..., 1, :], dim=-1) * cell[..., 2, :]).sum(-1).abs()


def species_indices(symbols: Sequence[str], species: Sequence[str]) -> np.ndarray:
    """Map chemical symbols to indices into ``species``; unknown ones raise a clear error."""
    lookup = {s: k for k, s in enumerate(species)}
    unknown = sorted(set(symbols) - set(lookup))
    if unknown:
        raise UnknownSpeciesError(
            f"element(s) {', '.join(unknown)} not known to this model (it knows {', '.join(species)})"
        )
    return np.fromiter((lookup[s] for s in symbols), dtype=np.int64, count=len(symbols))


def from_atoms(
    frames: Atoms | Sequence[Atoms],
    species: Sequence[str],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
    body: Sequence[int] | np.ndarray | None = None,
) -> Structures:
    """Pack ASE ``Atoms`` into :class:`Structures`.

    ``body`` (optional, one label per atom over all frames) marks which body each atom belongs to.
    If omitted, a per-atom array ``atoms.arrays["body"]`` is used when every frame has one.
    """
    if isinstance(frames, Atoms):
        frames = [frames]
    n_atoms = tuple(len(a) for a in frames)
    pos = np.concatenate([a.get_positions() for a in frames]) if frames else np.zeros((0, 3))
    cell = np.stack([a.cell.array for a in frames])
    pbc = np.stack([a.pbc for a in frames])
    sp = np.concatenate([species_indices(a.get_chemical_symbols(), species) for a in frames])
    batch = np.repeat(np.arange(len(frames)), n_atoms)
    if body is None and frames and all("body" in a.arrays for a in frames):
        body = np.concatenate([a.arrays["body"] for a in frames])
    body_t = None
    if body is not None:
        body = np.asarray(body, dtype=np.int64)
        if body.shape != (len(pos),):
            raise ValueError(f"body labels: expected {len(pos)} labels, got shape {body.shape}")
        body_t = torch.as_tensor(body, device=device)
    return Structures(
        positions=torch.as_tensor(pos, dtype=dtype, device=device),
        cell=torch.as_tensor(cell, dtype=dtype, device=device),
        pbc=torch.as_tensor(pbc, device=device),
        species=torch.as_tensor(sp, device=device),
        batch=torch.as_tensor(batch, device=device),
        n_atoms=n_atoms,
        body=body_t,
    )


#: atoms closer than this (Å) are an input error for any method: no bond is this short (H2: 0.74 Å)
MIN_DISTANCE_A = 0.5


def check_distances(atoms: Atoms, *, min_A: float = MIN_DISTANCE_A, what: str = "structure") -> None:
    """Refuse atoms closer than ``min_A`` Å (periodic images included): overlapping atoms make
    every method meaningless, and some (a Hessian, a first force block at enormous forces) slow.
    Raises :class:`~atomistic.errors.InputMismatch` naming the two atoms and their distance."""
    if len(atoms) < 2 and not atoms.pbc.any():
        return
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, min_A)
    if len(d):
        k = int(np.argmin(d))
        raise InputMismatch(f"{what}: atoms {int(i[k])} ({atoms[int(i[k])].symbol}) and {int(j[k])} "
                            f"({atoms[int(j[k])].symbol}) are {d[k]:.3g} Å apart (less than {min_A} Å: overlapping "
                            "atoms); check the structure's lattice constant, cell or coordinates")


def fixed_mask(atoms_or_frames: Atoms | Sequence[Atoms], *, what: str = "this method") -> np.ndarray:
    """(n_atoms over all frames,) bool: the atoms held by an ASE ``FixAtoms`` constraint.

    Any other constraint raises :class:`~atomistic.errors.InputMismatch` (a ``ValueError``).
    """
    frames = [atoms_or_frames] if isinstance(atoms_or_frames, Atoms) else atoms_or_frames
    out = []
    for a in frames:
        unsupported = [type(c).__name__ for c in a.constraints if not isinstance(c, FixAtoms)]
        if unsupported:
            raise InputMismatch(f"constraint {', '.join(unsupported)} is not supported by {what} (only FixAtoms)")
        m = np.zeros(len(a), dtype=bool)
        for c in a.constraints:
            m[c.get_indices()] = True
        out.append(m)
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)
