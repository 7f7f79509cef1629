"""Neighbour lists against ASE's, on triclinic cells with cutoffs beyond half the cell."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list

from atomistic.potential.neighbors import build_neighbors
from atomistic.potential.structure import from_atoms


def _pairs_ours(atoms, cutoff):
    s = from_atoms(atoms, sorted(set(atoms.get_chemical_symbols())))
    n = build_neighbors(s, cutoff)
    i = np.repeat(np.arange(len(atoms)), n.index.shape[1])[n.mask.numpy().ravel()]
    j = n.index.numpy().ravel()[n.mask.numpy().ravel()]
    shift = n.shift.numpy().reshape(-1, 3)[n.mask.numpy().ravel()].astype(int)
    d = atoms.positions[j] - atoms.positions[i] + shift @ atoms.cell.array
    dist = np.linalg.norm(d, axis=1)
    return sorted(zip(i, j, map(tuple, shift))), dist


@pytest.mark.parametrize("cutoff", [2.0, 5.0, 7.5])
def test_same_pairs_as_ase_triclinic(cutoff):
    rng = np.random.default_rng(0)
    cell = np.array([[4.0, 0.0, 0.0], [1.3, 3.7, 0.0], [0.8, -0.9, 4.2]])  # skewed, small
    atoms = Atoms("Cu5", positions=rng.uniform(0, 1, (5, 3)) @ cell, cell=cell, pbc=True)
    ours, dist = _pairs_ours(atoms, cutoff)
    i, j, S = neighbor_list("ijS", atoms, cutoff)
    assert ours == sorted(zip(i, j, map(tuple, S)))
    assert (dist < cutoff).all()


def test_self_images_of_one_atom_cell():
    atoms = bulk("Cu", "fcc", a=3.6)  # one atom, nearest image 2.55 Å
    ours, _ = _pairs_ours(atoms, 5.0)
    assert len(ours) == len(neighbor_list("i", atoms, 5.0)) == 42  # 12 + 6 + 24 shells


def test_angular_neighbours_come_first_in_every_row():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=0)
    s = from_atoms(atoms, ["Cu"])
    n = build_neighbors(s, 5.0, angular_cutoff=3.0)
    vec = s.positions[n.index] - s.positions[:, None] + n.shift @ s.cell[0]
    r = vec.norm(dim=-1).masked_fill(~n.mask, float("inf"))
    assert bool((r[:, n.n_angular:] >= 3.0).all())
    inner = (r < 3.0).sum(1)
    assert int(inner.max()) == n.n_angular
    assert bool(((torch.arange(r.shape[1]) < inner[:, None]) == (r < 3.0)).all())  # a prefix of each row


def test_body_mask_drops_cross_edges_only():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    body = (atoms.positions[:, 2] > 3.5).astype(int)
    s = from_atoms(atoms, ["Cu"], body=body)
    masked = build_neighbors(s, 5.0)
    full = build_neighbors(s, 5.0, mask_bodies=False)
    b = s.body
    assert bool((b[masked.index][masked.mask] == b[:, None].expand_as(masked.index)[masked.mask]).all())
    same = (b[full.index] == b[:, None]) & full.mask
    assert int(masked.mask.sum()) == int(same.sum()) < int(full.mask.sum())
