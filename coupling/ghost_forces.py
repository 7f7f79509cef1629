"""The ghost-force correction of a blended coupling, computed so that it never cancels physics.

Blending the atoms' site energies with weights ``beta`` changes the forces where ``beta`` varies:
even a perfect, unstrained crystal is no longer at rest there. These *ghost forces* belong to the
blending, not to the material, so the correction subtracts them as a dead load (a linear term of
the one coupled energy, so every force stays its exact gradient; the blended ghost-force
correction of Van Koten & Luskin and of the quasicontinuum method). What it must never subtract
is a force the atoms feel for a physical reason: a void, a vacancy cluster, a surface step or a
dislocation core in the reference configuration has forces of its own, and a correction taken
from the coupled forces of that configuration would hold the defect unrelaxed.

So the correction is computed on a **defect-free reference**, the perfect crystal over the same
region (``reference``, matched to the user's atoms by position; by default the user's atoms
themselves, which is right when they are perfect near the handshake, and :func:`check_reference`
warns when they are not), and split by kind of unknown (``c = T^T g``, ``g`` per atom):

- on a **slaved atom** (handshake, pad; it reaches the nodes through ``N^T``): the reference's
  coupled gradient;
- on a **free atom within a cutoff of the handshake**: the blending's own part
  ``d/dx_k sum_i (beta_i - 1) E_i`` on the user's atoms (:meth:`AtomisticRegion.blending_gradient
  <coupling.atomistic_region.AtomisticRegion.blending_gradient>`; exact, as the handshake is at
  least a cutoff wide), plus the reference's own force there (what a free surface of the region
  puts on it, which the continuum beyond cannot balance). So the corrected coupled force on a
  free atom at the reference is its own force less the perfect crystal's: a defect's forces
  survive whole;
- on a free atom deeper in: nothing (the blending does not reach it; surfaces and defects there
  keep all their forces);
- an atom the reference lacks (an interstitial, a displaced core atom) gets the blending's part
  only if free, its own coupled gradient if slaved.

Units: Å, eV/Å.
"""

from __future__ import annotations

import logging

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

from .atomistic_region import FREE, AtomisticRegion
from .errors import CouplingInputError

log = logging.getLogger(__name__)

#: a user's atom matches the reference's atom nearest to it when closer than this (Å): a lattice
#: site's atom, moved less than this by the relaxation of a defect in the core, is still its site's
MATCH_A = 0.5
#: reference forces (eV/Å) near the handshake above this are reported as a modelling error
REFERENCE_FORCE_WARNING_EV_A = 1e-2


def reference_region(region: AtomisticRegion, reference: Atoms) -> AtomisticRegion:
    """The defect-free ``reference`` atoms as a region of the same model and handshake. Body
    labels, where the user's atoms have them and the reference has none, are those of the nearest
    user's atom."""
    if not isinstance(reference, Atoms) or len(reference) == 0:
        raise CouplingInputError("ghost_force_reference: expected ASE Atoms (the defect-free crystal of the region)")
    reference = reference.copy()
    if region.body is not None and "body" not in reference.arrays:
        reference.arrays["body"] = region.body[cKDTree(region.X).query(reference.positions)[1]]
    return AtomisticRegion(reference, region.model, region.handshake, mask_bodies=region.mask_bodies)


def _match(region: AtomisticRegion, other: AtomisticRegion) -> np.ndarray:
    """For each atom of ``region`` the index of the atom of ``other`` at the same reference
    position (within :data:`MATCH_A`), or -1."""
    distance, index = cKDTree(other.X).query(region.X, distance_upper_bound=MATCH_A)
    return np.where(np.isfinite(distance), index, -1)


def ghost_gradient(region: AtomisticRegion, reference: AtomisticRegion | None = None,
                   own: np.ndarray | None = None) -> np.ndarray:
    """The correction per atom (n, 3) eV/Å, whose ``T^T`` is the dead load (see the module's
    docstring). ``reference``: the defect-free crystal as a region (None: ``region`` itself);
    ``own``: the region's coupled gradient (n, 3) at its reference, when the caller has it."""
    if own is None:
        own = region.evaluate(np.zeros_like(region.X))[1]
    reference = reference or region
    g_ref = own if reference is region else reference.evaluate(np.zeros_like(reference.X))[1]
    blend_ref = reference.blending_gradient()
    match = np.arange(region.n_atoms) if reference is region else _match(region, reference)
    found = match >= 0
    slaved = region.codes != FREE
    reach = region.handshake.depth(region.X) < region.handshake.width_A + region.model.cutoff
    g = region.blending_gradient() if reference is not region else blend_ref.copy()
    # free atoms within reach: the blending's part from the atoms themselves, plus the reference's own
    # forces there (its free surfaces, which the continuum beyond does not carry); written as the
    # reference's coupled gradient plus the difference of the blending's parts, which is exactly
    # zero where the atoms are the reference; deeper: nothing
    free = ~slaved & reach & found
    g[free] = g_ref[match[free]] + (g[free] - blend_ref[match[free]])
    g[~slaved & ~reach] = 0.0
    stray = ~slaved & reach & ~found
    if stray.any():  # keeps the blending's part: its own forces, a free surface's included, survive
        i = int(np.flatnonzero(stray)[0])
        log.warning("ghost_force_reference: %d free atoms within a cutoff of the handshake (atom %d at %s Å first) "
                    "are more than %g Å from every atom of the reference; their correction is the blending's part "
                    "alone", int(stray.sum()), i, np.round(region.X[i], 3).tolist(), MATCH_A)
    # slaved atoms: the reference's coupled gradient; one it lacks, its own
    g[slaved & found] = g_ref[match[slaved & found]]
    missing = slaved & ~found
    if missing.any():
        g[missing] = own[missing]
        i = int(np.flatnonzero(missing)[0])
        log.warning("ghost_force_reference: %d handshake or pad atoms (atom %d at %s Å first) have no atom of the "
                    "reference at their position; their correction comes from the atoms themselves",
                    int(missing.sum()), i, np.round(region.X[i], 3).tolist())
    unused = np.setdiff1d(np.flatnonzero(reference.codes != FREE), match[found])
    if len(unused):
        log.warning("ghost_force_reference: %d of its handshake or pad atoms are missing from the atoms (a defect "
                    "in the handshake); the continuum there feels the blending of a crystal the atoms are not",
                    len(unused))
    return g


def check_reference(region: AtomisticRegion, reference: AtomisticRegion | None = None,
                    tolerance_eV_A: float = REFERENCE_FORCE_WARNING_EV_A) -> dict | None:
    """Warn when the user's reference configuration is not at rest where the blending acts: the
    handshake and the free atoms within a cutoff of it. A defect, an unrelaxed structure or a
    strain there is a modelling error (the continuum beyond cannot carry it, and the slaved atoms
    cannot relax). Measured: the atoms' own forces (:meth:`AtomisticRegion.own_forces`), minus
    those of the matched atoms of the defect-free ``reference`` when there is one (then the pad's
    truncation and the free surfaces cancel and every handshake atom is checked); without one,
    on the atoms deeper than ``2 cutoff - pad`` and more than two cutoffs from a free surface.
    Returns the largest force and where, when above ``tolerance_eV_A`` (eV/Å), else None. The
    free surfaces are :func:`check_surfaces`' to check."""
    cutoff, hs = region.model.cutoff, region.handshake
    depth = hs.depth(region.X)
    forces = region.own_forces()
    near = (depth > 0) & (depth <= hs.width_A + cutoff)
    if reference is not None:
        match = _match(region, reference)
        ref_forces = reference.own_forces()
        near &= match >= 0
        forces[near] -= ref_forces[match[near]]
    else:
        near &= depth > 2 * cutoff - hs.pad_A
        near &= _surface_distance(region) > 2 * cutoff
    if not near.any():
        return None
    size = np.linalg.norm(forces, axis=1) * near
    i = int(np.argmax(size))
    if size[i] <= tolerance_eV_A:
        return None
    found = {"atom": i, "position_A": np.round(region.X[i], 3).tolist(), "force_eV_A": float(size[i]),
             "depth_A": float(depth[i]), "count": int((size > tolerance_eV_A).sum())}
    log.warning("the reference configuration is not at rest near the handshake: %d atoms there feel more than "
                "%.2g eV/Å (largest %.3g eV/Å on atom %d at %s Å, %.2f Å inside the coupled face). A defect, an "
                "unrelaxed structure or a strain within a cutoff of the handshake is a modelling error: move it "
                "deeper into the core (widen the atomistic box), relax the reference%s", found["count"],
                tolerance_eV_A, found["force_eV_A"], i, found["position_A"], found["depth_A"],
                "" if reference is not None else ", or pass the defect-free crystal as ghost_force_reference")
    return found


def check_surfaces(region: AtomisticRegion, tolerance_eV_A: float = REFERENCE_FORCE_WARNING_EV_A) -> dict | None:
    """Warn when a free surface of the body crosses the handshake unrelaxed: free atoms within two
    cutoffs of an uncoupled face of the atoms' box, deeper than ``2 cutoff - pad`` and within a
    cutoff of the handshake, whose own forces (:meth:`AtomisticRegion.own_forces`, eV/Å) exceed
    ``tolerance_eV_A``. The ghost-force correction
    keeps those forces as a dead load on a surface the continuum beyond does not have, and in a
    thin body that is a prestrain of the whole core, not a local relaxation: a Cu bar of the
    shipped model, 5 unit cells (18 Å) across, built at the bulk lattice and held at both ends,
    came to rest with its core stretched by 1.2 % (3 unit cells: 2.5 %); at its free-standing rest
    positions (relaxed periodic along the bar at the bulk lattice's length), by less than 1e-5.
    Returns the largest such force and where, or None."""
    cutoff, hs = region.model.cutoff, region.handshake
    depth = hs.depth(region.X)
    band = (depth > 2 * cutoff - hs.pad_A) & (depth <= hs.width_A + cutoff)
    band &= _surface_distance(region) <= 2 * cutoff
    if not band.any():
        return None
    size = np.linalg.norm(region.own_forces(), axis=1) * band
    i = int(np.argmax(size))
    if size[i] <= tolerance_eV_A:
        return None
    found = {"atom": i, "position_A": np.round(region.X[i], 3).tolist(), "force_eV_A": float(size[i]),
             "count": int((size > tolerance_eV_A).sum())}
    log.warning("a free surface crosses the handshake unrelaxed: %d atoms near it feel more than %.2g eV/Å (largest "
                "%.3g eV/Å on atom %d at %s Å). The ghost-force correction keeps these forces as a dead load, which "
                "in a thin body (a wire or a film a few nm across) prestrains the whole core: a Cu bar 18 Å across "
                "at the bulk lattice came to rest stretched by 1.2 %%. Give the atoms at the body's free-standing "
                "rest positions (relaxed periodic along the coupled axes, at the bulk lattice's period)",
                found["count"], tolerance_eV_A, found["force_eV_A"], i, found["position_A"])
    return found


def _surface_distance(region: AtomisticRegion) -> np.ndarray:
    """Distance (Å) of each atom from the nearest uncoupled face of the handshake's box (inf if
    every face is coupled): there the atoms meet a free surface of the body."""
    hs = region.handshake
    lo, hi = np.asarray(hs.lower_A, float), np.asarray(hs.upper_A, float)
    distance = np.full(region.n_atoms, np.inf)
    for axis, (low, high) in enumerate(zip(("xmin", "ymin", "zmin"), ("xmax", "ymax", "zmax"))):
        if low not in hs.coupled_faces:
            distance = np.minimum(distance, np.abs(region.X[:, axis] - lo[axis]))
        if high not in hs.coupled_faces:
            distance = np.minimum(distance, np.abs(hi[axis] - region.X[:, axis]))
    return distance
