"""A model bound to a set of structures, with a Verlet neighbour list (cutoff + skin).

The candidate table is built by vesin for ``cutoff + skin`` and reused while it is provably
complete. Every step it is compacted on the device into the table the descriptor sees: only the
pairs now inside the cutoff, angular neighbours first, in fixed widths chosen at the rebuild
with some slack (the skin would otherwise cost 1.7x more radial and 2x more angular work). A row
that outgrows its width raises a device flag, and the driver replays the block with wider
tables. The energy does not depend on when the list was built.

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

from atomistic.potential.forces import Prediction, predict
from atomistic.potential.neighbors import Neighbors, build_neighbors
from atomistic.potential.structure import Structures

log = logging.getLogger(__name__)


class VerletForceField:
    """Energy, forces and (optionally) stress of ``structures`` under ``model``.

    ``skin`` Å; ``stress``: compute the virial stress by default (NPT needs it every step).
    ``rows``: only the first ``rows`` atoms are centres (the tables hold their rows; the others
    are neighbours only, e.g. a domain's outer ghosts); None: every atom.
    ``static``: every rebuild writes into the same tensors (see :meth:`rebuild`), so that a CUDA
    graph captured once reads the current list; :meth:`layout` says when they had to change.
    """

    def __init__(self, model, structures: Structures, *, skin: float = 1.0, stress: bool = False,
                 mask_bodies: bool = True, chunk_size: int | str | None = "auto", rows: int | None = None,
                 static: bool = False):
        self.model = model
        self.rows = rows
        self.static = static
        self.template = structures
        self.skin = float(skin)
        self.stress = stress
        self.mask_bodies = mask_bodies
        self.chunk_size = chunk_size
        self.candidates: Neighbors | None = None
        self.overflow: torch.Tensor | None = None
        self.rebuilds = 0
        self._x0 = self._h0_inv = None

    @property
    def cutoff(self) -> float:
        return self.model.cutoff

    def rebuild(self, positions: torch.Tensor, cell: torch.Tensor) -> None:
        """Build the list for the current positions (n, 3) Å and cells (B, 3, 3) Å (host sync).

        In ``static`` mode the candidate table, the compacted widths and the reference positions
        and cells live in fixed tensors that a rebuild overwrites in place. They change (and with
        them :meth:`layout`) only when the new list needs more columns than they hold: the
        candidate table then gets a quarter more room than it needs, the compacted widths an
        eighth more than their usual slack, and they never shrink. Extra columns are masked
        padding and change no energy.
        """
        s = replace(self.template, positions=positions.detach(), cell=cell.detach())
        nb = build_neighbors(s, self.model.cutoff + self.skin, self.model.angular_cutoff + self.skin,
                             mask_bodies=self.mask_bodies)
        if self.rows is not None:
            nb = Neighbors(nb.index[: self.rows], nb.shift[: self.rows], nb.mask[: self.rows], nb.n_angular, nb.cutoff)
        if self.static:
            nb = self._into_fixed_table(nb)
        self.candidates = nb
        n_ang, n_rad = self._counts(positions.detach(), cell.detach())
        # widths: today's largest rows plus slack for density fluctuations until the next rebuild
        # (the slack of at least 8 columns' worth, so that doubling it widens even empty rows)
        wa, wr = (int(c.max()) + max(2, int(self.slack * max(int(c.max()), 8))) if len(c) else 0
                  for c in (n_ang, n_rad))
        h0_inv, has_cell = _safe_inverse(cell.detach(), self.template.pbc)
        if self.static and self._x0 is not None:
            # widths only grow here, and then with room (each growth costs a new capture)
            if wa > self._width_angular:
                self._width_angular = wa + max(2, wa // 8)
            if wr > self._width_radial:
                self._width_radial = wr + max(2, wr // 8)
            self._x0.copy_(positions.detach())
            self._h0_inv.copy_(h0_inv)
            self._has_cell.copy_(has_cell)
        else:
            self._width_angular, self._width_radial = wa, wr
            self._x0 = positions.detach().clone()
            self._h0_inv, self._has_cell = h0_inv, has_cell
        self.rebuilds += 1

    def _into_fixed_table(self, nb: Neighbors) -> Neighbors:
        """``nb`` copied into the fixed candidate tensors (replaced, with room to grow, when too
        narrow); the columns beyond ``nb``'s are masked padding (an earlier list's entries or the
        atom itself: valid indices, never read as neighbours)."""
        n, w = nb.index.shape
        old = self.candidates
        if old is None or old.index.shape[0] != n or old.index.shape[1] < w:
            cap = w + max(2, w // 4)
            index = torch.arange(n, device=nb.index.device)[:, None].expand(n, cap).clone()
            old = Neighbors(index, nb.shift.new_zeros(n, cap, 3), nb.mask.new_zeros(n, cap), nb.n_angular, nb.cutoff)
        old.index[:, :w].copy_(nb.index)
        old.shift[:, :w].copy_(nb.shift)
        old.mask[:, :w].copy_(nb.mask)
        old.mask[:, w:].zero_()
        return Neighbors(old.index, old.shift, old.mask, nb.n_angular, nb.cutoff)

    def widen(self) -> None:
        """After a table overflow: twice the slack for the next rebuilds and, in ``static`` mode,
        a quarter more columns at once (fixed widths grow at a rebuild only when the rows at
        that moment need more, which they may not)."""
        self.slack *= 2.0
        if self.static and self._x0 is not None:
            self._width_angular += max(2, self._width_angular // 4)
            self._width_radial += max(2, self._width_radial // 4)

    def layout(self) -> tuple:
        """What a captured CUDA graph bakes in: the compacted widths and the addresses of the
        tensors it reads (a graph captured with another layout must not be replayed)."""
        nb = self.candidates
        return (self._width_angular, self._width_radial, nb.index.data_ptr(), nb.shift.data_ptr(),
                nb.mask.data_ptr(), self._x0.data_ptr(), self._h0_inv.data_ptr(), self._has_cell.data_ptr())

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

    #: extra width of the compacted tables, as a fraction of the widest row at the rebuild
    slack = 0.05

    def _distances(self, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        nb = self.candidates
        n = nb.index.shape[0]
        offset = torch.einsum("nmk,nkl->nml", nb.shift, cell[self.template.batch[:n]])
        r = torch.linalg.vector_norm(positions[nb.index] - positions[:n, None, :] + offset, dim=-1)
        return torch.where(nb.mask, r, torch.full_like(r, float("inf")))

    def _classes(self, positions, cell):
        r = self._distances(positions, cell)
        angular = r < self.model.angular_cutoff
        radial = (r < self.model.cutoff) & ~angular
        return angular, radial

    def _counts(self, positions, cell):
        angular, radial = self._classes(positions, cell)
        return angular.sum(1), radial.sum(1)

    def compact(self, positions: torch.Tensor, cell: torch.Tensor) -> tuple[Neighbors, torch.Tensor]:
        """The table of pairs inside the cutoff now, and a device flag: True if a row did not fit
        (then the table is incomplete and the step must be redone with wider tables)."""
        with torch.no_grad():
            angular, radial = self._classes(positions, cell)
        wa, wr = self._width_angular, self._width_radial
        width = wa + wr
        col_a = torch.cumsum(angular, 1) - 1
        col_r = torch.cumsum(radial, 1) - 1
        overflow = (col_a[:, -1:] >= wa).any() | (col_r[:, -1:] >= wr).any() if angular.shape[1] else \
            torch.zeros((), dtype=torch.bool, device=positions.device)
        # target column of every candidate; those that do not belong go to a spill column
        col = torch.where(angular, col_a.clamp(max=wa), torch.where(radial, wa + col_r.clamp(max=wr), width))
        col = torch.where((angular & (col_a >= wa)) | (radial & (col_r >= wr)), width, col)
        nb = self.candidates
        n = nb.index.shape[0]
        index = torch.arange(n, device=positions.device)[:, None].expand(n, width + 1).clone()
        index.scatter_(1, col, nb.index)
        shift = nb.shift.new_zeros(n, width + 1, 3).scatter_(1, col[..., None].expand(-1, -1, 3), nb.shift)
        mask = torch.zeros(n, width + 1, dtype=torch.bool, device=positions.device).scatter_(1, col, angular | radial)
        table = Neighbors(index[:, :width], shift[:, :width], mask[:, :width], wa, self.model.cutoff)
        return table, overflow

    def evaluate(self, positions: torch.Tensor, cell: torch.Tensor, stress: bool | None = None) -> Prediction:
        """Energy (B,) eV, forces (n, 3) eV/Å, stress (B, 3, 3) eV/Å^3 if asked, at these
        positions and cells, with the current list (call :meth:`rebuild` first). The table
        overflow flag of this evaluation is kept in :attr:`overflow` (a device tensor)."""
        table, self.overflow = self.compact(positions.detach(), cell.detach())
        s = replace(self.template, positions=positions, cell=cell)
        stress = self.stress if stress is None else stress
        centres = None if self.rows is None else torch.arange(self.rows, device=positions.device)
        return predict(self.model, s, table, forces=True, stress=stress, chunk_size=self.chunk_size, centres=centres)

    def min_distance(self, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """(B,) closest distance between two atoms within the list, Å (inf if none)."""
        r = self._distances(positions, cell)
        batch = self.template.batch[: r.shape[0]]
        per_atom = r.amin(dim=1) if r.shape[1] else torch.full_like(positions[: r.shape[0], 0], float("inf"))
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
