"""Everything derived from the one scalar energy, by automatic differentiation, in one place.

forces  F = -dE/dR                                     eV/Å
stress  sigma = (1/V) dE/d eps, R -> R (I + eps), cell -> cell (I + eps)   eV/Å^3 (ASE sign)
Hessian d^2E/dR dR, dense or as Hessian-vector products                    eV/Å^2
strain derivatives d^nE/de^n (n <= 3), e the Lagrangian strain in Voigt form   eV

A model is anything with ``atomic_energies(positions, cell_per_atom, species, neighbors,
centres) -> (n_centres,)`` (see :class:`atomistic.potential.models.BPPotential`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from ase import Atoms

from atomistic.potential.models import model_device
from atomistic.potential.neighbors import Neighbors, build_neighbors
from atomistic.potential.structure import Structures, from_atoms


class EnergyModel(Protocol):
    def atomic_energies(self, positions, cell_per_atom, species, neighbors, centres=slice(None)): ...


@dataclass
class Prediction:
    """energy (n_structures,) eV; energies (n_atoms,) eV; forces (n_atoms, 3) eV/Å;
    stress (n_structures, 3, 3) eV/Å^3 or None."""

    energy: torch.Tensor
    energies: torch.Tensor
    forces: torch.Tensor | None = None
    stress: torch.Tensor | None = None


def _strained(structures: Structures, strain: torch.Tensor, positions: torch.Tensor):
    """Apply the symmetric small strain ``strain`` (n_structures, 3, 3) to positions and cells."""
    eps = 0.5 * (strain + strain.transpose(1, 2))
    positions = positions + torch.einsum("ni,nij->nj", positions, eps[structures.batch])
    cell = structures.cell + torch.bmm(structures.cell, eps)
    return positions, cell


def _cell_per_atom(structures: Structures, cell: torch.Tensor) -> torch.Tensor:
    return cell[0] if structures.n_structures == 1 else cell[structures.batch]


#: centre atoms per block in chunked evaluation: small blocks stay in a CPU's caches (2x faster
#: at 16k atoms on 2 cores); on a GPU blocks only bound the memory (about 10 kB per atom)
AUTO_CHUNK = {"cpu": 2048, "cuda": 65536}


def predict(model: EnergyModel, structures: Structures, neighbors: Neighbors, *, forces: bool = True,
            stress: bool = False, create_graph: bool = False, chunk_size: int | str | None = "auto",
            weights: torch.Tensor | None = None, centres: torch.Tensor | None = None) -> Prediction:
    """Energy and, by autograd, forces and stress of every structure.

    ``weights`` (n_atoms,), dimensionless: the energy becomes the weighted sum of site energies
    ``sum_i w_i E_i`` (a blended region's share, DESIGN section 5), and forces and stress are its
    exact derivatives; ``energies`` stays the unweighted site energies.
    ``centres`` (an index tensor): only these atoms' site energies are evaluated and summed (the
    others are neighbours only, as atoms of zero weight would be, at no cost); ``energies`` then
    holds the centres' site energies, in that order.

    ``create_graph`` keeps the graph for training on forces/stress (double backward).
    ``chunk_size`` evaluates centre atoms in blocks, each followed by its own backward pass, so
    memory stays bounded and CPU caches stay warm; "auto" picks :data:`AUTO_CHUNK` by device,
    None evaluates everything at once. Chunking never applies with ``create_graph``.
    """
    if chunk_size == "auto":
        chunk_size = None if create_graph else AUTO_CHUNK.get(structures.positions.device.type)
    if chunk_size is not None and create_graph:
        raise ValueError("chunk_size cannot be combined with create_graph")
    n = len(structures.positions)
    forces, stress = bool(forces), bool(stress)
    pos0 = structures.positions.detach().requires_grad_(forces)
    strain = torch.zeros_like(structures.cell).requires_grad_(stress)
    inputs = [t for t, need in ((pos0, forces), (strain, stress)) if need]

    # strained positions and per-atom cells once; every chunk shares them (and their graph)
    pos, cell = _strained(structures, strain, pos0) if stress else (pos0, structures.cell)
    cell = _cell_per_atom(structures, cell)

    if weights is not None and weights.shape != (n,):
        raise ValueError(f"weights: expected shape ({n},), got {tuple(weights.shape)}")
    every = slice(None) if centres is None else centres
    n_centres = n if centres is None else len(centres)

    def total(e: torch.Tensor, part=slice(None)) -> torch.Tensor:
        return e.sum() if weights is None else (e * weights[part]).sum()

    if chunk_size is None or chunk_size >= n_centres:
        e_atom = model.atomic_energies(pos, cell, structures.species, neighbors, every)
        grads = torch.autograd.grad(total(e_atom, every), inputs, create_graph=create_graph) if inputs else []
    else:
        parts = []
        grads = [torch.zeros_like(t) for t in inputs]
        for start in range(0, n_centres, chunk_size):
            part = slice(start, min(start + chunk_size, n_centres))
            if centres is not None:
                part = centres[part]
            e = model.atomic_energies(pos, cell, structures.species, neighbors, part)
            if inputs:
                # the shared strain graph must survive every chunk's backward pass
                for acc, g in zip(grads, torch.autograd.grad(total(e, part), inputs, retain_graph=stress)):
                    acc += g
            parts.append(e.detach())
            del e  # free this chunk's graph before the next one is built
        e_atom = torch.cat(parts)
    energy = torch.zeros(structures.n_structures, dtype=e_atom.dtype, device=e_atom.device)
    energy = energy.index_add(0, structures.batch[every], e_atom if weights is None else e_atom * weights[every])
    out = Prediction(energy=energy, energies=e_atom)
    grads = list(grads)
    if forces:
        out.forces = -grads.pop(0)
    if stress:
        volume = structures.volume[:, None, None]
        safe = torch.where(volume > 0, volume, torch.ones_like(volume))  # finite gradients everywhere
        out.stress = torch.where(volume > 0, grads.pop(0) / safe, torch.nan)  # NaN: no cell, no stress
    if not create_graph:
        out.energy, out.energies = out.energy.detach(), out.energies.detach()
    return out


def model_inputs(model, atoms: Atoms | Sequence[Atoms], *, device: str | torch.device | None = None,
                 dtype: torch.dtype | None = None, mask_bodies: bool = True) -> tuple[Structures, Neighbors]:
    """``atoms`` (one ASE ``Atoms`` or a list) packed for ``model`` and their neighbour table.

    ``device``: defaults to the model's; ``dtype``: to ``model.dtype``. ``mask_bodies``: drop the
    edges between different bodies (see :func:`~atomistic.potential.neighbors.build_neighbors`).
    """
    s = from_atoms(atoms, model.species, device=model_device(model, device), dtype=dtype or model.dtype)
    return s, build_neighbors(s, model.cutoff, model.angular_cutoff, mask_bodies=mask_bodies)


def evaluate(model: EnergyModel, atoms: Atoms | Sequence[Atoms], *, device: str | torch.device | None = None,
             dtype: torch.dtype | None = None, forces: bool = True, stress: bool = False,
             chunk_size: int | str | None = "auto", mask_bodies: bool = True) -> Prediction:
    """:func:`predict` on ASE ``atoms`` (one or a list): pack them, build the neighbour table, predict.

    ``device`` defaults to the model's and ``dtype`` to ``model.dtype``; the other arguments are
    :func:`predict`'s and :func:`model_inputs`'. A committee passed here is one energy model (its
    mean); :func:`~atomistic.potential.committee.evaluate_committee` gives every member and their spread.
    """
    structures, neighbors = model_inputs(model, atoms, device=device, dtype=dtype, mask_bodies=mask_bodies)
    return predict(model, structures, neighbors, forces=forces, stress=stress, chunk_size=chunk_size)


def _gradient(model: EnergyModel, structures: Structures, neighbors: Neighbors):
    pos = structures.positions.detach().requires_grad_(True)
    e = model.atomic_energies(pos, _cell_per_atom(structures, structures.cell), structures.species, neighbors)
    (g,) = torch.autograd.grad(e.sum(), pos, create_graph=True)
    return pos, g


def hessian_vector_product(model: EnergyModel, structures: Structures, neighbors: Neighbors,
                           vectors: torch.Tensor) -> torch.Tensor:
    """H @ v for v (n_atoms, 3) or a batch (k, n_atoms, 3); eV/Å^2 times v's unit."""
    pos, g = _gradient(model, structures, neighbors)
    if vectors.dim() == 2:
        (hv,) = torch.autograd.grad(g, pos, vectors)
        return hv
    return torch.stack([torch.autograd.grad(g, pos, v, retain_graph=True)[0] for v in vectors])


def hessian(model: EnergyModel, structures: Structures, neighbors: Neighbors) -> torch.Tensor:
    """Dense Hessian d^2E/dx dx, (3 n_atoms, 3 n_atoms) eV/Å^2, by double backward.

    Built from 3 n_atoms Hessian-vector products: for small and medium systems. Symmetric to
    round-off; symmetrised exactly on return.
    """
    pos, g = _gradient(model, structures, neighbors)
    flat = g.reshape(-1)
    rows = [torch.autograd.grad(flat[k], pos, retain_graph=True)[0].reshape(-1) for k in range(flat.numel())]
    h = torch.stack(rows)
    return 0.5 * (h + h.T)


#: Voigt pairs (xx, yy, zz, yz, xz, xy) of the engineering strain vector
_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def strain_derivatives(model: EnergyModel, structures: Structures, neighbors: Neighbors, order: int, *,
                       internal: bool = True) -> dict[str, torch.Tensor | None]:
    """Derivatives of the energy of one periodic structure with respect to homogeneous strain.

    The strain is the Lagrangian strain E in Voigt engineering form e = (E11, E22, E33, 2 E23,
    2 E13, 2 E12) (dimensionless); it deforms the structure by the symmetric right stretch
    F = sqrt(I + 2E) (series I + E - E^2/2 + E^3/2, exact to third order at E = 0):
    positions X -> X F^T, cell -> cell F^T. The neighbour table built at the reference stays valid.
    Everything is evaluated at e = 0, in the model's dtype (use float64 for order 3):

    energy    ()          eV
    gradient  (6,)        dU/de, eV (= volume x stress in Voigt order, ASE sign)
    hessian   (6, 6)      d^2U/de de, eV
    third     (6, 6, 6)   d^3U/de de de, eV, for order 3, else None
    forces    (n, 3)      -dU/dX, eV/Å (``internal``), else None
    mixed     (6, 3 n)    d^2U/de dX, eV/Å, X the reference positions (``internal``), else None
    position_hessian (3 n, 3 n)  d^2U/dX dX, eV/Å^2, as :func:`hessian` (``internal``), else None

    ``mixed`` and ``position_hessian`` give the internal (relaxed-ion) correction of the
    elastic constants. ``order`` is 2 or 3.
    """
    if order not in (2, 3):
        raise ValueError(f"order must be 2 or 3, got {order}")
    if structures.n_structures != 1:
        raise ValueError(f"strain derivatives take one structure, got {structures.n_structures}")
    dtype, device = structures.positions.dtype, structures.positions.device
    e = torch.zeros(6, dtype=dtype, device=device, requires_grad=True)
    pos = structures.positions.detach().requires_grad_(internal)
    strain = torch.zeros(3, 3, dtype=dtype, device=device)
    for k, (i, j) in enumerate(_VOIGT):
        factor = 1.0 if i == j else 0.5  # engineering shear: E_ij = E_ji = e_k / 2
        unit = torch.zeros(3, 3, dtype=dtype, device=device)
        unit[i, j] = unit[j, i] = factor
        strain = strain + e[k] * unit
    sq = strain @ strain
    stretch = torch.eye(3, dtype=dtype, device=device) + strain - 0.5 * sq + 0.5 * sq @ strain
    x = pos @ stretch.T
    cell = structures.cell[0] @ stretch.T
    energy = model.atomic_energies(x, cell, structures.species, neighbors).sum()
    inputs = [e, pos] if internal else [e]
    first = torch.autograd.grad(energy, inputs, create_graph=True)
    grad = first[0]
    rows, mixed = [], []
    for k in range(6):
        d = torch.autograd.grad(grad[k], inputs, retain_graph=True, create_graph=order == 3)
        rows.append(d[0])
        if internal:
            mixed.append(d[1].reshape(-1).detach())
    hess = torch.stack(rows)
    third = None
    if order == 3:
        third = torch.zeros(6, 6, 6, dtype=dtype, device=device)
        for k in range(6):
            for m in range(k, 6):
                (t,) = torch.autograd.grad(hess[k, m], e, retain_graph=True)
                third[k, m] = third[m, k] = t
        # exact index symmetry (the orderings of the three indices agree to round-off)
        third = (third + third.permute(1, 2, 0) + third.permute(2, 0, 1)
                 + third.permute(0, 2, 1) + third.permute(2, 1, 0) + third.permute(1, 0, 2)) / 6
    hess = hess.detach()
    return {
        "energy": energy.detach(),
        "gradient": grad.detach(),
        "hessian": 0.5 * (hess + hess.T),
        "third": third,
        "forces": -first[1].detach() if internal else None,
        "mixed": torch.stack(mixed) if internal else None,
        "position_hessian": hessian(model, structures, neighbors) if internal else None,
    }
