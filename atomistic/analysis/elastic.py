"""Elastic constants of a periodic crystal from the energy model, by automatic differentiation.

Brugger (thermodynamic) constants: with W(e) = (U(e) - U(0)) / V0 the strain energy density of
the reference cell (volume V0, Å^3) as a function of the Lagrangian strain in Voigt engineering
form e = (E11, E22, E33, 2 E23, 2 E13, 2 E12),

    C_IJ  = d^2 W / de_I de_J            second order, GPa
    C_IJK = d^3 W / de_I de_J de_K       third order, GPa

at e = 0, Voigt order xx, yy, zz, yz, xz, xy. The derivatives themselves come from
:func:`atomistic.potential.forces.strain_derivatives`; this module turns them into numbers in GPa.

Clamped-ion constants keep the atoms at the homogeneously deformed positions. Relaxed-ion C_IJ
let the atoms of the basis relax at each strain (second order in the strain, exact at e = 0):
the Schur complement ``C - L^T Phi^+ L / V0`` with L = d^2U/dX de and Phi = d^2U/dX dX, the
three rigid translations projected out. For a Bravais lattice (one atom per primitive cell) the
correction vanishes. Third-order constants are always clamped-ion.

The reference should be a stress-free, relaxed structure: the residual stress is reported
(:attr:`ElasticConstants.stress_GPa`) and a warning is logged when the atoms are not at rest.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from atomistic.potential.forces import model_inputs, strain_derivatives
from atomistic.potential.models import model_device
from atomistic.units import eV_per_A3_to_GPa

log = logging.getLogger(__name__)

#: largest force (eV/Å) at which the reference still counts as relaxed for the ion correction
RELAXED_FMAX = 1e-3

#: eigenvalues of the position Hessian below this fraction of the largest are treated as zero
PINV_RTOL = 1e-8

#: relative spread of cubic-equivalent entries above which :meth:`ElasticConstants.cubic` warns
CUBIC_RTOL = 1e-3

# cubic-equivalent Voigt index groups (0-based: 0..2 normal, 3 yz, 4 xz, 5 xy)
_CUBIC2 = {"C11": [(0, 0), (1, 1), (2, 2)], "C12": [(0, 1), (0, 2), (1, 2)], "C44": [(3, 3), (4, 4), (5, 5)]}
_CUBIC3 = {
    "C111": [(0, 0, 0), (1, 1, 1), (2, 2, 2)],
    "C112": [(0, 0, 1), (0, 0, 2), (1, 1, 0), (1, 1, 2), (2, 2, 0), (2, 2, 1)],
    "C123": [(0, 1, 2)],
    "C144": [(0, 3, 3), (1, 4, 4), (2, 5, 5)],
    "C155": [(0, 4, 4), (0, 5, 5), (1, 3, 3), (1, 5, 5), (2, 3, 3), (2, 4, 4)],
    "C456": [(3, 4, 5)],
}


@dataclass(frozen=True)
class ElasticConstants:
    """Elastic constants of one crystal, Voigt order xx, yy, zz, yz, xz, xy.

    C             (6, 6) GPa, second-order Brugger constants (relaxed-ion if ``relaxed_ions``)
    C3            (6, 6, 6) GPa, third-order Brugger constants, clamped-ion; None if not asked for
    stress_GPa    (6,) GPa, residual stress of the reference (ASE sign: positive is tensile);
                  well away from zero means the cell was not relaxed and C is not at equilibrium
    volume_A3     reference volume V0, Å^3
    relaxed_ions  whether C includes the internal relaxation of the atoms
    """

    C: np.ndarray
    C3: np.ndarray | None
    stress_GPa: np.ndarray
    volume_A3: float
    relaxed_ions: bool

    def cubic(self) -> dict[str, float]:
        """C11, C12, C44 (and with C3: C111, C112, C123, C144, C155, C456), GPa, each the mean of
        its cubic-equivalent entries. Meaningful for a cubic crystal in its cube axes; a warning
        is logged where equivalent entries differ by more than :data:`CUBIC_RTOL` of the largest."""
        out = _averaged(self.C, _CUBIC2, "C")
        if self.C3 is not None:
            out.update(_averaged(self.C3, _CUBIC3, "C3"))
        return out


def _averaged(tensor: np.ndarray, groups: dict[str, list[tuple[int, ...]]], name: str) -> dict[str, float]:
    scale = float(np.abs(tensor).max()) or 1.0
    out = {}
    for key, entries in groups.items():
        values = np.array([tensor[idx] for idx in entries])
        if values.max() - values.min() > CUBIC_RTOL * scale:
            log.warning("%s is not cubic: %s entries range from %.6g to %.6g GPa", name, key, values.min(),
                        values.max())
        out[key] = float(values.mean())
    # entries that cubic symmetry sets to zero
    zero = np.ones(tensor.shape, dtype=bool)
    for entries in groups.values():
        for idx in entries:
            for perm in set(itertools.permutations(idx)):
                zero[perm] = False
    if zero.any() and np.abs(tensor[zero]).max() > CUBIC_RTOL * scale:
        log.warning("%s is not cubic: an entry that cubic symmetry sets to zero is %.6g GPa",
                    name, float(np.abs(tensor[zero]).max()))
    return out


def _check_periodic(atoms: Atoms) -> None:
    if not isinstance(atoms, Atoms):
        raise ValueError(f"atoms must be an ase.Atoms, got {type(atoms).__name__}")
    if not atoms.pbc.all() or atoms.cell.rank != 3:
        raise ValueError("elastic constants need a crystal periodic in all three directions with a full cell "
                         f"(got pbc={atoms.pbc.tolist()}, cell rank {atoms.cell.rank})")
    if len(atoms) == 0:
        raise ValueError("elastic constants need at least one atom")


def relaxed_ion_correction(mixed: np.ndarray, position_hessian: np.ndarray) -> np.ndarray:
    """``L^T Phi^+ L`` (6, 6) eV from ``mixed`` = L^T (6, 3n) eV/Å and ``position_hessian`` Phi
    (3n, 3n) eV/Å^2: the energy lowered by relaxing the atoms, per unit strain squared.

    The rigid translations (null space of Phi) are projected out; other eigenvalues below
    :data:`PINV_RTOL` of the largest count as zero. A negative one (an unstable basis) is logged.
    """
    n = position_hessian.shape[0]
    t = np.zeros((n, 3))
    for a in range(3):
        t[a::3, a] = 1.0
    t /= np.linalg.norm(t, axis=0)
    project = np.eye(n) - t @ t.T
    lam, vec = np.linalg.eigh(project @ position_hessian @ project)
    top = float(np.abs(lam).max()) if n else 0.0
    keep = np.abs(lam) > PINV_RTOL * top
    # the three translations are exact zeros of the projected Hessian
    if keep.sum() > n - 3:
        keep[np.argsort(np.abs(lam))[:3]] = False
    if (lam[keep] < 0).any():
        log.warning("the position Hessian has %d negative eigenvalue(s) (lowest %.3g eV/Å^2): the basis is "
                    "unstable and relaxed-ion constants are not meaningful", int((lam[keep] < 0).sum()),
                    float(lam[keep].min()))
    lp = vec[:, keep].T @ (project @ mixed.T)  # (k, 6)
    corr = lp.T @ (lp / lam[keep][:, None])
    return 0.5 * (corr + corr.T)


def elastic_constants(model, atoms: Atoms, *, third_order: bool = False, relax_ions: bool = True,
                      device=None) -> ElasticConstants:
    """Elastic constants (GPa) of the periodic crystal ``atoms`` under ``model`` at its present
    cell and positions (relax both first; see the module docstring).

    ``model``: a :class:`~atomistic.potential.models.BPPotential` or a
    :class:`~atomistic.potential.committee.Committee` (committee mean energy). ``third_order``:
    also the clamped-ion C3. ``relax_ions``: include the internal relaxation in C (zero for a
    Bravais lattice). ``device``: defaults to the model's.
    """
    _check_periodic(atoms)
    if model.dtype != torch.float64:
        log.warning("model dtype is %s: elastic constants (third order above all) need float64", model.dtype)
    device = model_device(model, device)
    s, nbrs = model_inputs(model, atoms, device=device)
    d = strain_derivatives(model, s, nbrs, 3 if third_order else 2, internal=relax_ions)
    v0 = float(s.volume[0])
    to_gpa = eV_per_A3_to_GPa / v0

    c = d["hessian"].cpu().numpy().astype(np.float64)
    if relax_ions:
        mixed = d["mixed"].cpu().numpy().astype(np.float64)
        phi = d["position_hessian"].cpu().numpy().astype(np.float64)
        # dU/dX = -F at e = 0: the Schur complement assumes the atoms are at rest
        fmax = float(d["forces"].norm(dim=1).max())
        if fmax > RELAXED_FMAX:
            log.warning("largest force %.3g eV/Å > %.3g: relax the atoms before asking for relaxed-ion "
                        "elastic constants", fmax, RELAXED_FMAX)
        c = c - relaxed_ion_correction(mixed, phi)
    stress = d["gradient"].cpu().numpy().astype(np.float64) * to_gpa
    c3 = None if d["third"] is None else d["third"].cpu().numpy().astype(np.float64) * to_gpa
    return ElasticConstants(C=c * to_gpa, C3=c3, stress_GPa=stress, volume_A3=v0, relaxed_ions=relax_ions)
