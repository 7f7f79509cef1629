"""A trainable multi-state model: a symmetric diabatic matrix from Behler–Parrinello features.

    H_kk(R) = sum_i [ e0_k(Z_i) + s_kk NN_{Z_i}(G_i)_kk ]      (atom-decomposed diagonal)
    H_kl(R) = sum_i s_kl NN_{Z_i}(G_i)_kl,   k < l             (learned couplings)

one network per element with n(n+1)/2 outputs. Everything adiabatic follows from ``H`` by
:func:`~atomistic.multistate.adiabatic.adiabatic_states`. The training loss compares only
phase-free quantities: adiabatic energies, Hellmann–Feynman forces and, where the data have them,
the coupling numerators ``g_kl = c_k^T dH c_l`` up to their sign (``min(|g - g_ref|, |g + g_ref|)``),
so no eigenvector sign is ever fixed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from ase import Atoms
from torch import nn

from atomistic.multistate.adiabatic import adiabatic_states
from atomistic.potential.descriptors import BehlerParrinello, DescriptorSettings
from atomistic.potential.models import NetworkSettings, element_network, pair_vectors
from atomistic.potential.neighbors import Neighbors, build_neighbors
from atomistic.potential.structure import from_atoms

log = logging.getLogger(__name__)


class DiabaticPotential(nn.Module):
    """``n_states`` diabatic states of molecules or materials made of ``species`` (module docstring)."""

    def __init__(self, species: list[str], n_states: int, descriptor: DescriptorSettings | None = None,
                 network: NetworkSettings | None = None):
        super().__init__()
        if n_states < 2:
            raise ValueError(f"a multi-state model needs n_states >= 2, got {n_states}")
        self.species, self.n_states = list(species), n_states
        self.descriptor_settings = descriptor or DescriptorSettings()
        self.network_settings = network or NetworkSettings()
        self.descriptor = BehlerParrinello(self.descriptor_settings, len(species))
        n_in = self.descriptor.n_features
        self.rows, self.cols = torch.triu_indices(n_states, n_states).unbind(0)
        n_out = len(self.rows)
        nets = []
        for _ in species:
            net = element_network(n_in, self.network_settings)
            last = net[-1]
            net[-1] = nn.Linear(last.in_features, n_out)
            nets.append(net)
        self.networks = nn.ModuleList(nets)
        self.e0 = nn.Parameter(torch.zeros(len(species), n_states, dtype=torch.float64))
        self.register_buffer("feature_mean", torch.zeros(len(species), n_in, dtype=torch.float64))
        self.register_buffer("feature_std", torch.ones(len(species), n_in, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(n_out, dtype=torch.float64))
        self.to(torch.float64)

    @property
    def cutoff(self) -> float:
        return self.descriptor_settings.cutoff

    def features(self, structures, neighbors) -> torch.Tensor:
        cell = structures.cell[0] if structures.n_structures == 1 else structures.cell[structures.batch]
        vectors = pair_vectors(structures.positions, structures.positions, cell, neighbors.index, neighbors.shift)
        return self.descriptor(vectors, neighbors.mask, structures.species[neighbors.index], neighbors.n_angular)

    def matrix(self, structures, neighbors) -> torch.Tensor:
        """H (n_structures, n, n) eV."""
        g = self.features(structures, neighbors)
        sp = structures.species
        x = (g - self.feature_mean[sp]) / self.feature_std[sp]
        out = x.new_zeros(len(x), len(self.rows))
        for k, net in enumerate(self.networks):
            idx = torch.nonzero(sp == k).squeeze(-1)
            out = out.index_put((idx,), net(x[idx]))
        out = out * self.scale
        diag = self.rows == self.cols
        out = out + torch.where(diag, 1.0, 0.0).to(out.dtype) * self.e0[sp][:, self.rows]
        per = out.new_zeros(structures.n_structures, len(self.rows)).index_add(0, structures.batch, out)
        n = self.n_states
        flat = self.rows * n + self.cols, self.cols * n + self.rows  # upper and lower triangle, row-major
        h = per.new_zeros(structures.n_structures, n * n).index_copy(1, flat[1], per).index_copy(1, flat[0], per)
        return h.reshape(-1, n, n)

    def prepare(self, atoms: Atoms, data: MultiStateData) -> BoundDiabatic:
        """Set the feature standardisation and energy offsets from ``data`` (:func:`initialise`)
        and bind to ``atoms``: the model as training uses it."""
        initialise(self, atoms, data)
        return self.bind(atoms)

    def bind(self, atoms: Atoms) -> BoundDiabatic:
        """This model for geometries of ``atoms`` (same atoms, any positions): the
        ``diabatic(positions)`` interface of the multi-state tools."""
        return BoundDiabatic(self, atoms)


class BoundDiabatic(nn.Module):
    """A :class:`DiabaticPotential` for one kind of structure (the atoms and cell of ``atoms``):
    ``diabatic(positions (B, N, 3) Å) -> (B, n, n) eV``.

    A molecule (no periodic direction) uses a table of all pairs, built once per batch size:
    pairs beyond the cutoffs weigh zero, so the energy is the same as with a neighbour list, and a
    batch of thousands of geometries costs no Python work per geometry. Periodic structures get a
    neighbour list for every call."""

    def __init__(self, model: DiabaticPotential, atoms: Atoms):
        super().__init__()
        self.model = model
        self.template = atoms.copy()
        self.n_states = model.n_states
        self._cache: dict = {}

    def _layout(self, b: int, device, dtype):
        key = (b, device, dtype)
        if key not in self._cache:
            s = from_atoms(self.template, self.model.species, device=device, dtype=dtype)
            n = len(self.template)
            batch = torch.arange(b, device=device).repeat_interleave(n)
            s = replace(s, species=s.species.repeat(b), batch=batch, n_atoms=(n,) * b,
                        cell=s.cell.expand(b, 3, 3).contiguous(), pbc=s.pbc.expand(b, 3).contiguous(),
                        body=None if s.body is None else s.body.repeat(b))
            table = None
            if not self.template.pbc.any():
                if n > 1:
                    other = torch.stack([torch.cat([torch.arange(i, device=device),
                                                    torch.arange(i + 1, n, device=device)]) for i in range(n)])
                else:
                    other = torch.zeros(1, 0, dtype=torch.long, device=device)
                index = (other[None] + n * torch.arange(b, device=device)[:, None, None]).reshape(b * n, n - 1)
                table = Neighbors(index, torch.zeros(*index.shape, 3, dtype=dtype, device=device),
                                  torch.ones_like(index, dtype=torch.bool), n - 1, self.model.cutoff)
            self._cache = {key: (s, table)}
        return self._cache[key]

    def diabatic(self, positions: torch.Tensor) -> torch.Tensor:
        s, table = self._layout(len(positions), positions.device, positions.dtype)
        s = replace(s, positions=positions.reshape(-1, 3))
        if table is None:
            table = build_neighbors(replace(s, positions=s.positions.detach()), self.model.cutoff,
                                    self.model.descriptor_settings.angular_cutoff)
        return self.model.matrix(s, table)


@dataclass
class MultiStateData:
    """Labelled geometries of one kind of structure: positions (F, N, 3) Å, energies (F, n) eV,
    forces (F, n, N, 3) eV/Å, and optionally coupling numerators g (F, n, n, N, 3) eV/Å
    (``c_k^T dH c_l``, any sign) or None."""

    positions: torch.Tensor
    energies: torch.Tensor
    forces: torch.Tensor
    couplings: torch.Tensor | None = None

    @classmethod
    def from_frames(cls, frames: Sequence[Atoms]) -> MultiStateData:
        """From frames labelled by :func:`~atomistic.multistate.casscf.label_states` (same atoms
        in every frame); couplings where every frame has them."""
        if not frames or any("state_energies" not in f.info or "state_forces" not in f.arrays for f in frames):
            raise ValueError("every frame needs info['state_energies'] and arrays['state_forces'] (label_states)")
        n, count = len(frames[0].info["state_energies"]), len(frames[0])
        if any(len(f) != count or len(f.info["state_energies"]) != n for f in frames):
            raise ValueError("all frames must have the same atoms and number of states")
        pos = torch.as_tensor(np.stack([f.positions for f in frames]), dtype=torch.float64)
        energies = torch.as_tensor(np.stack([f.info["state_energies"] for f in frames]), dtype=torch.float64)
        forces = torch.as_tensor(np.stack([f.arrays["state_forces"].reshape(count, n, 3).transpose(1, 0, 2)
                                           for f in frames]), dtype=torch.float64)
        couplings = None
        if all("coupling_numerators" in f.arrays for f in frames):
            rows, cols = np.triu_indices(n, 1)
            g = np.zeros((len(frames), n, n, count, 3))
            for i, f in enumerate(frames):
                pairs = f.arrays["coupling_numerators"].reshape(count, len(rows), 3).transpose(1, 0, 2)
                g[i, rows, cols], g[i, cols, rows] = pairs, -pairs
            couplings = torch.as_tensor(g, dtype=torch.float64)
        return cls(pos, energies, forces, couplings)


def initialise(model: DiabaticPotential, atoms: Atoms, data: MultiStateData) -> None:
    """Standardise the features on the data, set ``e0`` so that each state's mean energy is met,
    and the output scale from the energies' spread."""
    with torch.no_grad():
        s = from_atoms([atoms] * len(data.positions), model.species)
        s = replace(s, positions=data.positions.reshape(-1, 3).to(torch.float64))
        g = model.features(s, build_neighbors(s, model.cutoff, model.descriptor_settings.angular_cutoff))
        for k in range(len(model.species)):
            gk = g[s.species == k]
            if len(gk):
                model.feature_mean[k] = gk.mean(0)
                model.feature_std[k] = gk.std(0).clamp_min(1e-2) if len(gk) > 1 else 1.0
        counts = torch.bincount(s.species[: len(atoms)], minlength=len(model.species)).to(torch.float64)
        mean_e = data.energies.mean(0)  # (n,)
        model.e0.copy_((mean_e / counts.sum())[None, :].expand_as(model.e0) * (counts > 0)[:, None])
        model.scale.fill_(float(data.energies.std().clamp_min(1e-3)) / max(len(atoms), 1))


def multistate_loss(model: BoundDiabatic, positions, energies, forces, couplings=None, *,
                    weights=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """Phase-free loss on a batch: w_E mean (E - E_ref)^2 + w_F mean |F - F_ref|^2
    + w_C mean min_sign |g - sign g_ref|^2 (eV^2, (eV/Å)^2)."""
    st = adiabatic_states(model, positions, create_graph=True)
    total = (weights[0] * ((st.energies - energies) ** 2).mean()
             + weights[1] * ((st.forces - forces) ** 2).sum(-1).mean())
    if couplings is not None and weights[2] > 0:
        n = st.energies.shape[1]
        rows, cols = torch.triu_indices(n, n, offset=1)
        gap = (st.energies[:, cols] - st.energies[:, rows])[..., None, None]
        g = st.couplings[:, rows, cols] * gap  # back to the numerator c_k^T dH c_l
        ref = couplings[:, rows, cols]
        plus = ((g - ref) ** 2).sum((-1, -2))
        minus = ((g + ref) ** 2).sum((-1, -2))
        total = total + weights[2] * torch.minimum(plus, minus).mean() / positions.shape[1]
    return total


def fit_multistate(model, atoms: Atoms | None, data: MultiStateData, *, epochs: int = 300,
                   batch_size: int = 32, lr: float = 3e-3, weights=(1.0, 1.0, 1.0), seed: int = 0) -> list[float]:
    """Train ``model`` (a :class:`DiabaticPotential` for structures like ``atoms``, or a
    :class:`~atomistic.multistate.coordinate_model.CoordinateDiabatic`, which needs no atoms) on
    ``data`` with the phase-free :func:`multistate_loss` (Adam, cosine-decayed learning rate);
    returns the loss per epoch."""
    torch.manual_seed(seed)
    bound = model.prepare(atoms, data)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs, eta_min=lr * 0.01)
    rng = np.random.default_rng(seed)
    history = []
    n = len(data.positions)
    for _ in range(epochs):
        order = torch.as_tensor(rng.permutation(n))
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = multistate_loss(bound, data.positions[idx], data.energies[idx], data.forces[idx],
                                   None if data.couplings is None else data.couplings[idx], weights=weights)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        history.append(total / n)
        if not math.isfinite(history[-1]):
            raise FloatingPointError("multi-state training diverged (non-finite loss)")
    return history


def sample(model, positions: Sequence[np.ndarray] | torch.Tensor) -> MultiStateData:
    """Labels of any multi-state model (e.g. an analytic one) at ``positions`` (F, N, 3) Å: the
    data a trained model learns from. Coupling numerators carry whatever sign the eigensolver chose."""
    pos = torch.as_tensor(np.asarray(positions), dtype=torch.float64)
    st = adiabatic_states(model, pos)
    gap = (st.energies[:, None, :] - st.energies[:, :, None])[..., None, None]
    return MultiStateData(positions=pos, energies=st.energies, forces=st.forces, couplings=st.couplings * gap)
