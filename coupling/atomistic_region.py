"""The atomistic region of a coupled model: atoms, an NN-PES and blending weights (DESIGN section 5).

An :class:`AtomisticRegion` is the atoms' side of the coupled energy on its own, without a mesh:

    E_A(d) = sum_i beta_i E_i^NN,masked(X + d)  (+ the atoms' part of any cohesive interface)

for displacements ``d`` (n, 3) Å of the atoms from their reference positions ``X``. Every atom
has a region code: 0 free (the core, ``beta = 1``; the unknowns of a coupled problem), 1 handshake
(``0 < beta < 1``) and 2 pad (``beta = 0``: neighbours only). Handshake and pad atoms are slaved
to the continuum by whoever composes the region with one (:class:`~coupling.problem.CoupledProblem`
in statics; coupled dynamics likewise). Only centres with ``beta > 0`` are evaluated.

The region lives where the atoms run (one process, the model's device); it does no MPI. Units:
Å, eV, eV/Å, eV/Å^2, amu.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
import torch
from ase import Atoms

from atomistic.potential.forces import hessian_vector_product, predict
from atomistic.potential.models import model_device
from atomistic.potential.neighbors import build_neighbors
from atomistic.potential.structure import UnknownSpeciesError, from_atoms

from .errors import CouplingInputError
from .handshake import Handshake
from .interface_atoms import AtomisticInterface
from .precondition import exp_preconditioner, spring_matrix

log = logging.getLogger(__name__)

#: the region codes' names, in code order: 0 free, 1 handshake, 2 pad
REGIONS = ("free", "handshake", "pad")
FREE, HANDSHAKE, PAD = 0, 1, 2


class AtomisticRegion:
    """Atoms and their NN-PES, weighted by a :class:`~coupling.handshake.Handshake`.

    ``atoms``: ASE ``Atoms`` at their reference positions (Å, not periodic), optionally with
    ``atoms.arrays["body"]`` (an integer body label per atom); ``model``: the NN-PES, float64
    (Newton and dynamics need tight tolerances). ``mask_bodies``: drop the model's neighbour pairs
    between atoms of different bodies (``E^NN,masked``; adhesion then enters through a cohesive
    law); False lets them interact (to show double counting). Raises :class:`CouplingInputError`
    naming the field when the atoms cannot be used (periodic, an unknown element, atoms beyond the
    handshake's pad, a pad thinner than the model's cutoff, no handshake or free atoms).

    Fields: ``X`` (n, 3) Å reference positions, ``body`` (n,) int labels or None, ``codes``
    (n,) int region codes (0 free, 1 handshake, 2 pad), ``beta`` (n,) blending weights,
    ``symbols`` (n,) element symbols, ``masses`` (n,) amu, ``interfaces`` the atomistic parts
    of cohesive interfaces (:meth:`add_interface`), ``mu`` (eV/Å^2) the preconditioner's
    stiffness once :meth:`preconditioner` has fitted it."""

    def __init__(self, atoms: Atoms, model, handshake: Handshake, *, mask_bodies: bool = True):
        if not isinstance(atoms, Atoms) or len(atoms) == 0:
            raise CouplingInputError("atoms: expected ASE Atoms with at least one atom on the atom rank")
        if atoms.pbc.any():
            raise CouplingInputError(f"atoms.pbc = {atoms.pbc.tolist()}: coupled atoms must not be periodic; the "
                                     "continuum around them is their boundary")
        if getattr(model, "dtype", None) != torch.float64:
            raise CouplingInputError("model: a coupled problem needs a float64 model (Newton to tight tolerances)")
        X = atoms.get_positions()
        body = atoms.arrays.get("body")
        body = None if body is None else np.asarray(body, dtype=np.int64)
        sets = handshake.check(X, model.cutoff)
        if sets["outside"].any():
            i = int(np.flatnonzero(sets["outside"])[0])
            raise CouplingInputError(f"atom {i} at {np.round(X[i], 3).tolist()} Å lies beyond the handshake's pad "
                                     f"({int(sets['outside'].sum())} atoms do); remove the atoms there or widen "
                                     "handshake.pad_A")
        device = model_device(model)
        try:
            self.structures = from_atoms(atoms, model.species, device=device, dtype=torch.float64, body=body)
        except UnknownSpeciesError as exc:
            raise CouplingInputError(f"atoms: {exc}") from None
        self.model, self.handshake, self.mask_bodies = model, handshake, mask_bodies
        self.X = X  # (n, 3) Å
        self.body = body  # (n,) or None
        self.symbols = atoms.get_chemical_symbols()
        self.masses = atoms.get_masses()  # (n,) amu
        self.codes = np.select([sets["free"], sets["handshake"]], [FREE, HANDSHAKE], PAD)  # (n,)
        self.beta = handshake.beta(X)  # (n,)
        self.interfaces: list[AtomisticInterface] = []
        self.mu: float | None = None
        self._beta_t = torch.as_tensor(self.beta, device=device, dtype=torch.float64)
        # only atoms of nonzero weight need their site energies; the pad's are neighbours only
        self._centres = torch.as_tensor(np.flatnonzero(self.beta > 0), device=device)
        self._free_centres = torch.as_tensor(np.flatnonzero(self.codes[self.beta > 0] == FREE), device=device)
        self.free_site_energy_eV = float("nan")
        self._own_forces = None  # (n, 3) eV/Å at the reference, once asked for (own_forces)

    # -- what the atoms are ----------------------------------------------------------------------
    @property
    def n_atoms(self) -> int:
        return len(self.X)

    @property
    def free(self) -> np.ndarray:
        """Indices of the free atoms (code 0), in order: the atoms' unknowns of a coupled problem."""
        return np.flatnonzero(self.codes == FREE)

    def counts(self) -> dict[str, int]:
        """How many atoms are free, in the handshake and in the pad."""
        return {name: int((self.codes == code).sum()) for code, name in enumerate(REGIONS)}

    def add_interface(self, interface: AtomisticInterface) -> None:
        """Add the atoms' part of a cohesive interface (built from the mesh by the composer) to the
        energy, the gradient and the preconditioner."""
        self.interfaces.append(interface)

    # -- the energy --------------------------------------------------------------------------------
    def _structures(self, d: np.ndarray | None):
        if d is None:
            return self.structures
        positions = torch.as_tensor(self.X + d, device=self.structures.positions.device, dtype=torch.float64)
        return replace(self.structures, positions=positions)

    def _neighbors(self, structures):
        return build_neighbors(structures, self.model.cutoff, self.model.angular_cutoff, mask_bodies=self.mask_bodies)

    def evaluate(self, d: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
        """Energy parts (eV) and the gradient (n, 3) eV/Å of the region's energy at displacements
        ``d`` (n, 3) Å: ``atoms`` (sum_i beta_i E_i) and ``interface_atoms:<name>`` per interface."""
        s = self._structures(d)
        p = predict(self.model, s, self._neighbors(s), weights=self._beta_t, centres=self._centres)
        grad = -p.forces.detach().cpu().numpy()
        energy = {"atoms": float(p.energy.sum())}
        #: the free atoms' site energies summed (eV; part of ``atoms``): the core's potential energy
        self.free_site_energy_eV = float(p.energies[self._free_centres].sum())
        for iface in self.interfaces:
            e, g = iface.energy_gradient(d)
            energy[f"interface_atoms:{iface.name}"] = e
            grad += g
        return energy, grad

    def blending_gradient(self) -> np.ndarray:
        """The gradient (n, 3) eV/Å, at the reference positions, of ``sum_i (beta_i - 1) E_i`` over
        the sites the blending weighs down (``beta_i < 1``): how much the blending changes each
        atom's force, the *ghost force*. On a free atom every site within a cutoff lies in the
        core or the handshake when the handshake is at least a cutoff wide (:meth:`Handshake.check
        <coupling.handshake.Handshake.check>` insists), so there it is exactly the coupled
        gradient minus the gradient of the atoms' own energy ``sum_i E_i``: whatever physical
        force a defect, a surface or a strain puts on the atom is not in it. Zero on free atoms
        more than a cutoff from the handshake."""
        s = self.structures
        centres = torch.as_tensor(np.flatnonzero(self.beta < 1.0), device=s.positions.device)
        if len(centres) == 0:
            return np.zeros_like(self.X)
        weights = self._beta_t - 1.0
        p = predict(self.model, s, self._neighbors(s), weights=weights, centres=centres)
        return -p.forces.detach().cpu().numpy()

    def own_forces(self) -> np.ndarray:
        """Forces (n, 3) eV/Å at the reference positions from the atoms' own energy ``sum_i E_i``
        (unweighted), summed over the sites whose neighbourhoods the pad completes (depth above
        ``cutoff - pad``). Exact, as a force of the whole crystal, on atoms deeper than
        ``2 cutoff - pad``; zero on a perfect lattice there, up to free surfaces. A copy: change it
        freely."""
        if self._own_forces is None:  # the reference does not move: evaluated once
            s = self.structures
            depth = self.handshake.depth(self.X)
            complete = np.flatnonzero(depth > self.model.cutoff - self.handshake.pad_A)
            p = predict(self.model, s, self._neighbors(s),
                        centres=torch.as_tensor(complete, device=s.positions.device))
            self._own_forces = p.forces.detach().cpu().numpy()
        return self._own_forces.copy()

    def energy_and_gradient(self, d: np.ndarray) -> tuple[float, np.ndarray]:
        """The region's energy (eV) and its gradient (n, 3) eV/Å at displacements ``d`` (n, 3) Å:
        the sum of the parts of :meth:`evaluate`."""
        parts, grad = self.evaluate(d)
        return sum(parts.values()), grad

    def hessian_vector_product(self, d: np.ndarray | None, v: np.ndarray) -> np.ndarray:
        """``H v`` (n, 3) eV/Å^2 times v's unit, H the Hessian of the masked, unweighted energy
        ``sum_i E_i`` of all the region's atoms at displacements ``d`` (n, 3) Å (None: the
        reference): the stiffness of the atoms on their own, as for a time step or a preconditioner."""
        s = self._structures(d)
        hv = hessian_vector_product(self.model, s, self._neighbors(s), torch.as_tensor(v, device=s.positions.device))
        return hv.detach().cpu().numpy()

    def preconditioner(self) -> sp.csr_matrix:
        """A sparse stand-in (3n, 3n) eV/Å^2 for the Hessian of the region's energy at the
        reference: the exponential preconditioner (:mod:`coupling.precondition`) with pairs
        weighted by beta and ``mu`` fitted to the model (a Rayleigh quotient on a smooth
        displacement; stored in :attr:`mu`), the interfaces' stiffness at zero opening, and a
        spring of ``1e-3 mu`` holding each free atom to its site. Symmetric and positive
        semi-definite; definite on the free atoms (so a floating body stays definite), while pairs
        of pad atoms (beta = 0) carry nothing: slaved atoms are stiffened through the continuum."""
        X, body = self.X, self.body if self.mask_bodies else None
        unit = exp_preconditioner(X, body, np.ones(len(X)), 1.0)
        lo, hi = X.min(axis=0), X.max(axis=0)
        smooth = np.prod(np.sin(np.pi * (X - lo) / np.maximum(hi - lo, 1e-9)), axis=1)
        v = np.repeat(smooth[:, None], 3, axis=1)
        curvature = float((self.hessian_vector_product(None, v) * v).sum())
        mu = curvature / float(v.ravel() @ (unit @ v.ravel()))
        if not mu > 0:
            log.warning("the atoms' curvature along a smooth displacement is %.3g eV/Å^2; preconditioning with mu = 1",
                        curvature)
            mu = 1.0
        self.mu = mu
        P = exp_preconditioner(X, body, self.beta, mu)
        for iface in self.interfaces:
            i, j, k = iface.stiffness_pairs()
            P = P + spring_matrix(len(X), i, j, k)
        free = np.repeat(self.codes == FREE, 3).astype(float)
        return (P + sp.diags(1e-3 * mu * free)).tocsr()

    # -- snapshots -------------------------------------------------------------------------------
    def atoms(self, d: np.ndarray, forces: np.ndarray | None = None) -> Atoms:
        """The atoms at displacements ``d`` (n, 3) Å from their reference positions, with arrays
        ``beta``, ``region`` (the codes), ``forces`` (eV/Å, if given) and ``body`` (if labelled)."""
        atoms = Atoms(self.symbols, positions=self.X + d)
        atoms.arrays["beta"] = self.beta.copy()
        atoms.arrays["region"] = self.codes.copy()
        if forces is not None:
            atoms.arrays["forces"] = np.asarray(forces, dtype=float).reshape(-1, 3)
        if self.body is not None:
            atoms.arrays["body"] = self.body.copy()
        return atoms
