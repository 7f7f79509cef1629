"""Neighbour lists: vesin's O(N) cell lists, stored padded per centre atom.

vesin finds the pairs (periodic, triclinic, cutoffs beyond half the cell included). We then
drop edges between different bodies (masking, DESIGN §5) and pack the rest into a padded
``(n_atoms, max_neighbours)`` table, angular neighbours first in each row, so descriptors are dense batched
tensor operations with no Python loop over atoms and no atomics.

Only the integer pair table is stored: distance vectors are recomputed from the positions and
the cell inside the differentiable energy, so forces and stress come out of autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import vesin_torch

from atomistic.potential.structure import Structures


@dataclass(frozen=True)
class Neighbors:
    """Padded neighbour table.

    index  (n_atoms, n_max) long, global index of neighbour atom (the centre itself where padded)
    shift  (n_atoms, n_max, 3) float, integer lattice shifts: r_ij = x_j - x_i + shift @ cell
    mask   (n_atoms, n_max) bool, True for real neighbours
    n_angular  int, columns [0, n_angular) hold every neighbour within the angular cutoff
    cutoff     float Å, the radius the table was built with
    """

    index: torch.Tensor
    shift: torch.Tensor
    mask: torch.Tensor
    n_angular: int
    cutoff: float


def edge_list(structures: Structures, cutoff: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """All pairs within ``cutoff`` (Å) as flat arrays ``(i, j, shift, distance)``, global indices.

    A full list: each pair appears as (i, j) and (j, i). Structures are handled one by one by
    vesin (each call is O(n) in that structure's atoms).
    """
    nl = vesin_torch.NeighborList(cutoff=float(cutoff), full_list=True)
    pos = structures.positions.detach()
    cells = structures.cell.detach()
    out_i, out_j, out_s, out_d = [], [], [], []
    start = 0
    for b, n in enumerate(structures.n_atoms):
        p = pos[start : start + n]
        periodic = structures.pbc[b]
        box = cells[b] if bool(periodic.any()) else torch.zeros_like(cells[b])
        i, j, s, d = nl.compute(p, box, periodic, "ijSd")
        out_i.append(i.to(torch.long) + start)
        out_j.append(j.to(torch.long) + start)
        out_s.append(s)
        out_d.append(d)
        start += n
    return torch.cat(out_i), torch.cat(out_j), torch.cat(out_s), torch.cat(out_d)


def build_neighbors(
    structures: Structures,
    cutoff: float,
    angular_cutoff: float | None = None,
    *,
    mask_bodies: bool = True,
) -> Neighbors:
    """Padded neighbour table of ``structures`` for a descriptor with radial ``cutoff`` (Å).

    With ``mask_bodies`` and body labels present, edges between atoms of different bodies are
    dropped here, before any descriptor is formed: ``E(A ∪ B) = E(A) + E(B)``.
    """
    if cutoff <= 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    angular_cutoff = cutoff if angular_cutoff is None else angular_cutoff
    i, j, s, d = edge_list(structures, cutoff)
    if mask_bodies:
        i, j, s, d = drop_cross_body_edges((i, j, s, d), structures.body)
    return pad_edges(
        i, j, s, d, len(structures.positions), cutoff, angular_cutoff, structures.positions.dtype
    )


def drop_cross_body_edges(edges: tuple, body: torch.Tensor | None) -> tuple:
    """Keep only edges (i, j, ...) whose two atoms carry the same body label (DESIGN §5)."""
    if body is None:
        return edges
    keep = body[edges[0]] == body[edges[1]]
    return tuple(e[keep] for e in edges)


def pad_edges(
    i, j, shift, dist, n_atoms: int, cutoff: float, angular_cutoff: float, dtype=torch.float64
) -> Neighbors:
    """Pack a flat edge list into the padded table; in each row the neighbours within the
    angular cutoff come first (one integer sort, no sort by distance)."""
    device = i.device
    order = torch.argsort(2 * i + (dist >= angular_cutoff))
    i, j, shift = i[order], j[order], shift[order]
    counts = torch.bincount(i, minlength=n_atoms)
    first = torch.cumsum(counts, 0) - counts
    col = torch.arange(len(i), device=device) - first[i]
    n_max = int(counts.max()) if len(i) else 0
    n_ang = int(torch.bincount(i[dist[order] < angular_cutoff], minlength=n_atoms).max()) if len(i) else 0
    index = torch.arange(n_atoms, device=device)[:, None].repeat(1, n_max)
    shifts = torch.zeros(n_atoms, n_max, 3, device=device, dtype=dtype)
    mask = torch.zeros(n_atoms, n_max, dtype=torch.bool, device=device)
    index[i, col] = j
    shifts[i, col] = shift.to(dtype)
    mask[i, col] = True
    return Neighbors(index, shifts, mask, n_ang, float(cutoff))
