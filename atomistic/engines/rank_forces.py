"""One rank's share of a domain-decomposed evaluation: exact forces on its owned atoms.

A rank of a domain decomposition owns some atoms and holds ghost copies of others (periodic
images included) out to a shell of at least ``2 r_c + skin``. Behler-Parrinello energies are
sums of site energies ``e_k`` that see neighbours within r_c. The rank evaluates the site
energies of the set S = its owned atoms + every copy within r_c of an owned atom (each of those
sees its whole neighbourhood, as it lies within 2 r_c of an owned atom) and differentiates their
sum with respect to the owned positions only. Every term of the true dE/dx_i appears exactly
once: a copy k' of atom k at image shift m sees the owned atom i at the relative vector that
``e_k`` sees i's image -m at. So the forces are exact and need no reverse communication.

The rank's share of the energy is the sum of its owned site energies ``E_own``; its share of the
virial is ``W = -sum_c x_c (x) dE_own/dx_c`` over every copy c it holds (eV; origin-free, as each
site energy is translation invariant). The centres are evaluated in blocks, owned ones first,
each with its own backward pass (as :func:`~atomistic.potential.forces.predict` chunks); the
position gradients of the owned blocks give ``W`` at the cost of one small product each.

Nothing here knows the engine that owns the decomposition (:mod:`atomistic.engines.lammps`
hands in LAMMPS's copies). Units: Å, eV, eV/Å.
"""

from __future__ import annotations

import numpy as np
import torch

from atomistic.md.forcefield import VerletForceField
from atomistic.potential.forces import AUTO_CHUNK
from atomistic.potential.models import model_device
from atomistic.potential.neighbors import edge_list
from atomistic.potential.structure import Structures


class RankForces:
    """Exact forces, energy share and virial share of one rank's owned atoms under ``model``
    (on its device), with a Verlet list of ``skin_A`` (Å) over the rank's copies.

    :attr:`halo` sums, over evaluations: owned atoms, ghost copies held, centres evaluated (owned
    + copies within r_c of an owned atom) and list builds; the halo's redundant work is
    ``centres / owned - 1``.
    """

    def __init__(self, model, skin_A: float):
        self.model = model
        self.skin_A = float(skin_A)
        self.device = model_device(model)
        self.dtype = getattr(model, "dtype", torch.float64)
        self._list: VerletForceField | None = None
        self._tags = self._order = self._nlocal = None
        self.halo = {"evaluations": 0, "owned": 0, "ghosts": 0, "centres": 0, "list_builds": 0}

    def evaluate(self, x: np.ndarray, nlocal: int, tags: np.ndarray, species: np.ndarray,
                 body: np.ndarray | None) -> tuple[float, np.ndarray, np.ndarray]:
        """The rank's owned energy (eV), its owned atoms' forces (nlocal, 3) eV/Å and its share of
        the virial (3, 3) eV, from its copies: positions ``x`` (n, 3) Å, owned ones first, their
        ids ``tags`` (a change means the engine re-created its ghosts), ``species`` (indices into
        the model's) and body labels (or None)."""
        nall = len(x)
        dev, dtype = self.device, self.dtype
        if nall == 0:  # a sub-domain with no atoms (a cluster or slab on many ranks)
            return 0.0, np.zeros((0, 3)), np.zeros((3, 3))
        cell = torch.zeros(1, 3, 3, dtype=dtype, device=dev)
        pos = torch.as_tensor(x, dtype=dtype, device=dev)
        if self._needs_list(tags, nlocal, pos, cell):
            self._build_list(pos, cell, nlocal, tags, species, body)
        pos = pos[self._order]  # owned atoms, then the ghosts that can be centres, then the outer ghosts
        table, overflow = self._list.compact(pos, cell)
        if bool(overflow):
            self._list.rebuild(pos, cell)
            table, _ = self._list.compact(pos, cell)
        ghosts = torch.nonzero(((table.index < nlocal) & table.mask).any(1)[nlocal:]).squeeze(1) + nlocal
        for key, value in (("evaluations", 1), ("owned", nlocal), ("ghosts", nall - nlocal),
                           ("centres", nlocal + len(ghosts))):
            self.halo[key] += value
        p = pos.detach().requires_grad_(True)
        centred = pos - pos[:nlocal].mean(0) if nlocal else pos  # W is origin-free; this keeps it exact
        g_pos = torch.zeros_like(pos)
        energy = torch.zeros((), dtype=dtype, device=dev)
        virial = torch.zeros(3, 3, dtype=dtype, device=dev)
        chunk = AUTO_CHUNK.get(dev.type) or nall  # blocks of centres, as predict(): caches stay warm
        owned_blocks = [torch.arange(s, min(s + chunk, nlocal), device=dev) for s in range(0, nlocal, chunk)]
        ghost_blocks = [ghosts[s:s + chunk] for s in range(0, len(ghosts), chunk)]
        for k, part in enumerate(owned_blocks + ghost_blocks):
            e = self.model.atomic_energies(p, cell[0], self._list.template.species, table, part)
            (g,) = torch.autograd.grad(e.sum(), p)
            g_pos += g
            if k < len(owned_blocks):  # a block of owned site energies: its share of the virial
                energy += e.detach().sum()
                virial -= centred.T @ g
        virial = 0.5 * (virial + virial.T)
        return float(energy), (-g_pos[:nlocal]).cpu().numpy(), virial.cpu().numpy()

    def _needs_list(self, tags: np.ndarray, nlocal: int, pos: torch.Tensor, cell: torch.Tensor) -> bool:
        """A new Verlet list when the engine re-created its ghosts (other copies or order, or other
        owned atoms) or a copy moved more than half the skin since the last build."""
        if (self._list is None or nlocal != self._nlocal or self._tags is None
                or not np.array_equal(tags, self._tags)):
            return True
        return bool(self._list.margin(pos[self._order], cell).min() <= 0)

    def _build_list(self, pos: torch.Tensor, cell: torch.Tensor, nlocal: int, tags, species, body) -> None:
        """The Verlet list over the rank's copies, its rows only for the possible centres: the
        owned atoms and the ghosts within r_c + skin of one (the outer ghosts are neighbours only;
        on small domains they are most of the copies). ``self._order`` puts the rows first."""
        dev, nall = pos.device, len(pos)
        no_pbc = torch.zeros(1, 3, dtype=torch.bool, device=dev)
        species = torch.as_tensor(species, dtype=torch.long, device=dev)
        labels = None if body is None else torch.as_tensor(body, device=dev)
        batch = torch.zeros(nall, dtype=torch.long, device=dev)
        s = Structures(positions=pos, cell=cell, pbc=no_pbc, species=species, batch=batch, n_atoms=(nall,),
                       body=labels)
        i, j, _, _ = edge_list(s, float(self.model.cutoff) + self.skin_A)
        near = torch.zeros(nall, dtype=torch.bool, device=dev)
        near[j[i < nlocal]] = True
        near[:nlocal] = False
        ghosts = torch.nonzero(near).squeeze(1)
        outer = torch.nonzero(~near[nlocal:]).squeeze(1) + nlocal
        o = self._order = torch.cat([torch.arange(nlocal, device=dev), ghosts, outer])
        s = Structures(positions=pos[o], cell=cell, pbc=no_pbc, species=species[o], batch=batch, n_atoms=(nall,),
                       body=None if labels is None else labels[o])
        self._list = VerletForceField(self.model, s, skin=self.skin_A, rows=nlocal + len(ghosts))
        self._list.rebuild(pos[o], cell)
        self._tags, self._nlocal = tags.copy(), nlocal
        self.halo["list_builds"] += 1
