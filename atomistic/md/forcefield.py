"""A model bound to a set of structures, with a Verlet neighbour list (cutoff + skin).

The padded table is built by vesin for ``cutoff + skin`` and reused while it is provably
complete. Pairs inside the cutoff contribute through the smooth cutoff function, so extra pairs
in the skin add exactly zero: the energy does not depend on when the list was built.

Validity criterion (per structure). With ``x0, h0`` the positions and cell at the last build,
``M = h0^-1 h`` the affine deformation since then and ``u_i = x_i - x0_i M`` the non-affine
displacements, any pair that was beyond ``r_c + skin`` is now at least
``sigma_min(M) (r_c + skin) - 2 max|u|`` apart, and ``sigma_min(M) >= 1 - ||M - I||_F``. The list
is stale once that lower bound reaches ``r_c``. With a fixed cell this is the usual
"an atom moved more than half the skin". The check is a few device reductions, no host sync.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch

from ..forces import Prediction, predict
from ..neighbors import Neighbors, build_neighbors
from ..structure import Structures

log = logging.getLogger(__name__)


class VerletForceField:
    """Energy, forces and (optionally) stress of ``structures`` under ``model``.

    ``skin`` Å; ``stress`` asks for the virial stress at every evaluation (NPT needs it).
    """

    def __init__(self, model, structures: Structures, *, skin: float = 1.0, stress: bool = False,
                 mask_bodies: bool = True, chunk_size: int | str | None = "auto"):
        self.model = model
        self.template = structures
        self.skin = float(skin)
        self.stress = stress
        self.mask_bodies = mask_bodies
        self.chunk_size = chunk_size
        self.neighbors: Neighbors | None = None
        self.rebuilds = 0
        self._x0 = self._h0_inv = None

    @property
    def cutoff(self) -> float:
        return self.model.cutoff

    def rebuild(self, positions: torch.Tensor, cell: torch.Tensor) -> None:
        """Build the list for the current positions (n, 3) Å and cells (B, 3, 3) Å (host sync)."""
        s = replace(self.template, positions=positions.detach(), cell=cell.detach())
        self.neighbors = build_neighbors(s, self.model.cutoff + self.skin, self.model.angular_cutoff + self.skin,
                                         mask_bodies=self.mask_bodies)
        self._x0 = positions.detach().clone()
        self._h0_inv, self._has_cell = _safe_inverse(cell.detach(), self.template.pbc)
        self.rebuilds += 1

    def margin(self, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """(B,) Å on the device: the lower bound on the distance of any unlisted pair, minus the
        cutoff. The list is complete while this is > 0 (module docstring); it equals the skin
        right after a rebuild."""
        batch = self.template.batch
        eye = torch.eye(3, dtype=cell.dtype, device=cell.device)
        m = torch.bmm(self._h0_inv, cell)  # (B, 3, 3) affine deformation since the build
        m = torch.where(self._has_cell[:, None, None], m, eye)
        u = positions - torch.einsum("ni,nij->nj", self._x0, m[batch])
        umax = torch.zeros(len(m), dtype=u.dtype, device=u.device).scatter_reduce(
            0, batch, torch.linalg.vector_norm(u, dim=1), reduce="amax", include_self=True)
        sigma_min = 1.0 - torch.linalg.matrix_norm(m - eye)
        rc = self.model.cutoff
        return sigma_min * (rc + self.skin) - 2.0 * umax - rc

    def evaluate(self, positions: torch.Tensor, cell: torch.Tensor) -> Prediction:
        """Energy (B,) eV, forces (n, 3) eV/Å, stress (B, 3, 3) eV/Å^3 if asked, at these
        positions and cells, with the current list (call :meth:`rebuild` first)."""
        s = replace(self.template, positions=positions, cell=cell)
        return predict(self.model, s, self.neighbors, forces=True, stress=self.stress, chunk_size=self.chunk_size)

    def min_distance(self, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """(B,) closest distance between two atoms within the list, Å (inf if none)."""
        nb = self.neighbors
        batch = self.template.batch
        offset = torch.einsum("nmk,nkl->nml", nb.shift, cell[batch])
        r = torch.linalg.vector_norm(positions[nb.index] - positions[:, None, :] + offset, dim=-1)
        r = torch.where(nb.mask, r, torch.full_like(r, float("inf")))
        per_atom = r.amin(dim=1) if r.shape[1] else torch.full_like(positions[:, 0], float("inf"))
        out = torch.full((len(cell),), float("inf"), dtype=r.dtype, device=r.device)
        return out.scatter_reduce(0, batch, per_atom, reduce="amin", include_self=True)


def _safe_inverse(cell: torch.Tensor, pbc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse cells and (B,) "has a cell"; a structure with no (or a degenerate) cell gets the
    identity, since its cell never changes."""
    periodic = pbc.any(dim=1)
    det = torch.linalg.det(cell)
    ok = periodic & (det.abs() > 1e-12)
    eye = torch.eye(3, dtype=cell.dtype, device=cell.device).expand_as(cell)
    safe = torch.where(ok[:, None, None], cell, eye)
    inv = torch.linalg.inv(safe)
    return torch.where(ok[:, None, None], inv, eye), ok
