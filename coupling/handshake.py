"""Where the atoms are free, blended or slaved: the handshake geometry and the blending weight.

The atomistic region ``A`` is a box in the reference configuration (Å). Its faces that meet the
continuum are *coupled*; a face on a free surface of the body is not (atoms stay free up to it).
``depth(X)`` is the distance from the nearest coupled face into ``A`` (negative outside). With
a handshake width ``w`` and a pad width ``p``:

- core, ``depth >= w``: free atoms, ``beta = 1``;
- handshake, ``0 < depth < w``: atoms slaved to the continuum, ``beta = ramp(depth / w)``;
- pad, ``-p < depth <= 0``: atoms slaved to the continuum with ``beta = 0``, there only to give
  the handshake atoms full neighbourhoods (so ``p`` must be at least the model's cutoff);
- beyond the pad: no atoms; the continuum alone, ``1 - beta = 1``.

``beta`` weighs the atoms' site energies and ``1 - beta`` the continuum's energy density
(DESIGN section 5). Ramps: ``"linear"`` (``t``) or ``"c1"`` (``3 t^2 - 2 t^3``, continuous slope).
:func:`fill_region` puts a crystal's atoms where a handshake wants them (core, handshake and pad).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from .errors import CouplingInputError

log = logging.getLogger(__name__)

RAMPS = ("linear", "c1")
FACES = ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")


def ramp(t: np.ndarray, kind: str) -> np.ndarray:
    """The blending ramp on [0, 1], clipped outside: 0 at t <= 0, 1 at t >= 1."""
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if kind == "linear":
        return t
    if kind == "c1":
        return t * t * (3.0 - 2.0 * t)
    raise CouplingInputError(f"handshake.ramp = {kind!r}: expected one of {RAMPS}")


@dataclass(frozen=True)
class Handshake:
    """The atomistic box ``[lower_A, upper_A]``, its ``coupled_faces``, the handshake ``width_A``,
    the ``pad_A`` beyond it and the ``ramp``."""

    lower_A: tuple[float, float, float]
    upper_A: tuple[float, float, float]
    width_A: float
    pad_A: float
    coupled_faces: tuple[str, ...] = FACES
    ramp: str = "c1"

    def __post_init__(self):
        lo, hi = np.asarray(self.lower_A, float), np.asarray(self.upper_A, float)
        if lo.shape != (3,) or hi.shape != (3,) or np.any(hi <= lo):
            raise CouplingInputError(f"handshake box {list(self.lower_A)} .. {list(self.upper_A)} Å: expected "
                                      "lower < upper on every axis")
        if not self.width_A > 0:
            raise CouplingInputError(f"handshake.width_A = {self.width_A!r}: expected a positive width in Å")
        if not self.pad_A >= 0:
            raise CouplingInputError(f"handshake.pad_A = {self.pad_A!r}: expected a width in Å")
        unknown = sorted(set(self.coupled_faces) - set(FACES))
        if unknown or not self.coupled_faces:
            raise CouplingInputError(f"handshake.coupled_faces = {list(self.coupled_faces)}: expected some of {FACES}")
        if self.ramp not in RAMPS:
            raise CouplingInputError(f"handshake.ramp = {self.ramp!r}: expected one of {RAMPS}")
        coupled = np.array([sum(f in self.coupled_faces for f in FACES[2 * a: 2 * a + 2]) for a in range(3)])
        if np.any(hi - lo <= coupled * self.width_A):
            raise CouplingInputError(f"handshake.width_A = {self.width_A} Å: the box {(hi - lo).tolist()} Å leaves no "
                                      "free core (it must be wider than one handshake per coupled face)")

    def depth(self, X: np.ndarray) -> np.ndarray:
        """Distance (Å) from the nearest coupled face into the box; negative outside it.

        Outside, minus the largest distance past a coupled face (so the pad is the box grown by
        ``pad_A``); ``-inf`` beyond an uncoupled face (outside the body, not in the pad)."""
        X = np.asarray(X, dtype=float)
        lo, hi = np.asarray(self.lower_A, float), np.asarray(self.upper_A, float)
        inside = np.full(len(X), np.inf)
        outside = np.zeros(len(X))
        beyond_free_surface = np.zeros(len(X), dtype=bool)
        for axis in range(3):
            for side, face in ((0, FACES[2 * axis]), (1, FACES[2 * axis + 1])):
                d = X[:, axis] - lo[axis] if side == 0 else hi[axis] - X[:, axis]  # > 0 inside this face
                if face in self.coupled_faces:
                    inside = np.minimum(inside, d)
                    outside = np.maximum(outside, -d)
                else:
                    beyond_free_surface |= d < 0
        in_box = np.all((X >= lo) & (X <= hi), axis=1)
        return np.where(beyond_free_surface, -np.inf, np.where(in_box, inside, -outside))

    def beta(self, X: np.ndarray) -> np.ndarray:
        """The blending weight of points ``X`` (n, 3) Å: 1 in the core, the ramp across the handshake, 0 beyond."""
        return ramp(self.depth(X) / self.width_A, self.ramp)

    def classify(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Boolean masks ``free``, ``handshake``, ``pad`` and ``outside`` (no atom should be there)."""
        d = self.depth(X)
        return {"free": d >= self.width_A, "handshake": (d > 0) & (d < self.width_A),
                "pad": (d <= 0) & (d > -self.pad_A), "outside": d <= -self.pad_A}

    def check(self, X: np.ndarray, cutoff_A: float) -> dict[str, np.ndarray]:
        """:meth:`classify` after the checks a coupled problem needs before any solve."""
        if self.pad_A < cutoff_A:
            raise CouplingInputError(f"handshake.pad_A = {self.pad_A} Å is thinner than the model's cutoff "
                                      f"{cutoff_A} Å: handshake atoms would miss neighbours")
        if self.width_A < cutoff_A:
            raise CouplingInputError(f"handshake.width_A = {self.width_A} Å is narrower than the model's cutoff "
                                      f"{cutoff_A} Å on the coupled faces {list(self.coupled_faces)}: free atoms "
                                      "would see the pad's atoms (weight 0, incomplete neighbourhoods) and the "
                                      "ghost forces could not be told from physics; widen it to at least the cutoff")
        sets = self.classify(X)
        if not sets["handshake"].any():
            raise CouplingInputError("handshake: no atom lies in the handshake region; the atoms and the "
                                      f"handshake box {list(self.lower_A)} .. {list(self.upper_A)} Å do not overlap")
        if not sets["free"].any():
            raise CouplingInputError("handshake: no free atom in the core; widen the box or narrow the handshake")
        return sets


def lattice_period_A(lattice: str, a0_A: float, direction) -> float | None:
    """The shortest lattice translation (Å) along the crystal ``direction`` (integers) of a cubic
    ``lattice`` ("sc", "fcc", "diamond", "bcc"); None for other lattices."""
    v = np.asarray(direction, dtype=float)
    if not np.allclose(v, np.round(v)) or not v.any():
        return None
    v = np.round(v).astype(int)
    v = v // np.gcd.reduce(np.abs(v[v != 0]))
    if lattice == "sc":
        steps = 1.0
    elif lattice in ("fcc", "diamond"):  # translations a0/2 (h, k, l) with h + k + l even
        steps = 0.5 if v.sum() % 2 == 0 else 1.0
    elif lattice == "bcc":  # a0/2 (h, k, l) with h, k, l all odd or all even
        steps = 0.5 if np.all(v % 2 == 1) else 1.0
    else:
        return None
    return steps * a0_A * float(np.linalg.norm(v))


def _check_whole_periods(lattice: str, a0_A: float, orientation, lengths: np.ndarray) -> None:
    """Warn when the body is not a whole number of lattice periods along one of its axes: its
    free surfaces then cut the crystal through partial cells, and the atoms next to them sit at
    other distances from the surface (and from the mesh's faces) than elsewhere."""
    x, y = (np.asarray(v, dtype=float) for v in orientation)
    for axis, direction in zip("xyz", (x, y, np.cross(x, y))):
        period = lattice_period_A(lattice, a0_A, direction)
        length = float(lengths["xyz".index(axis)])
        if period is None:
            continue
        periods = length / period
        if abs(periods - round(periods)) > 1e-3:
            log.warning("the body is %.4g Å along %s, %.3f lattice periods of %.4f Å (the crystal's [%s] at a0 = "
                        "%.4f Å): not a whole number, so its faces cut the crystal through partial cells; %.4f or "
                        "%.4f Å would not", length, axis, periods, period, " ".join(str(int(c)) for c in direction),
                        a0_A, np.floor(periods) * period, np.ceil(periods) * period)


#: the cell tags of the two bodies of :func:`continuum.geometry.box` cut once
BOX_BODY_TAGS = {"body1": 1, "body2": 2}


def fill_region(symbol: str, lattice: str, a0_A: float, orientation, handshake: Handshake,
                body_lengths_A: tuple[float, float, float], *, split_x_A: float | None = None,
                body_tags: dict[str, int] | None = None, site_A: tuple[float, float, float] | None = None) -> Atoms:
    """The atoms of a crystal where ``handshake`` wants them: core, handshake and pad, inside the body.

    ``symbol``, ``lattice`` (an ASE cubic lattice, e.g. ``"fcc"``) and ``a0_A`` (the lattice
    constant, Å) give the crystal; ``orientation`` = (x_axis, y_axis): the body's x and y axes as
    crystal directions (e.g. ``((1, 1, 0), (-1, 1, 0))``, z = x cross y). The body is the box
    ``[0, body_lengths_A]`` (Å) that the mesh fills.

    Where the lattice sites sit: ``site_A`` (Å, body axes), if given, is a lattice site. By default
    a lattice site lies a quarter of a cubic cell off the middle ``c`` of the atomistic box grown by
    its pad and clipped to the body: at ``c + s (a0_A / 4) (1, 1, 1)`` in crystal axes, with ``s``
    +1 or -1 as the crystal built around the box spans an even or an odd number of cells (the two
    choices give the same planes of atoms, shifted within the planes). With the crystal's cube axes
    along the body's, and ``c`` a whole number of half cells from the body's faces (as in the
    shipped cases), every plane of atoms then lies a quarter cell from the body's faces, from the
    faces of elements one or half a cell wide, and from any plane a whole number of half cells from
    ``c``, such as an interface through it: no atom sits on a face of the mesh, where the cell (and
    so the body) it belongs to would be ambiguous, and an interface runs halfway between two planes
    of atoms. ``site_A = (a0_A / 4,) * 3`` puts the lattice a quarter cell in from the body's
    corner, whatever the box.

    Which atoms are kept: those strictly inside the body (1e-6 Å in) and not beyond the pad
    (:meth:`Handshake.classify` ``"outside"``). Only the box's ``coupled_faces`` meet the continuum:
    across each of them lie the handshake and then the pad of slaved atoms. A face left out of
    ``coupled_faces`` is a free surface of the body: the atoms run up to the body's own face there
    (let the box reach past it, e.g. from -1 Å to the width + 1 Å, so no handshake is wanted there).

    Body labels: with ``split_x_A`` (the plane x = split_x_A of a body cut in two, Å), every atom
    gets ``atoms.arrays["body"]``, the cell tag of its side: ``body_tags["body1"]`` below the plane,
    ``body_tags["body2"]`` above (default :data:`BOX_BODY_TAGS`, those of
    :func:`continuum.geometry.box`; pass ``dict(domain.bodies)``). A coupled problem checks every
    label against the body of the cell the atom lies in, and masks the model's neighbour pairs
    between bodies (their adhesion is the interface's cohesive law). Without ``split_x_A``, no labels.

    Returns ASE ``Atoms``, not periodic, with no cell, positions in Å in the body's axes."""
    from ase.build import bulk

    from continuum.materials import orientation_matrix

    if not a0_A > 0:
        raise CouplingInputError(f"a0_A = {a0_A!r}: expected a positive lattice constant in Å")
    lengths = np.asarray(body_lengths_A, dtype=float)
    if lengths.shape != (3,) or not np.all(lengths > 0):
        raise CouplingInputError(f"body_lengths_A = {list(body_lengths_A)}: expected three positive lengths in Å")
    rotation = orientation_matrix(*orientation)  # rows: body axes in crystal coordinates
    lo = np.maximum(np.asarray(handshake.lower_A) - handshake.pad_A, 0.0)
    hi = np.minimum(np.asarray(handshake.upper_A) + handshake.pad_A, lengths)
    centre, radius = 0.5 * (lo + hi), 0.5 * np.linalg.norm(hi - lo) + a0_A
    n = int(np.ceil(2 * radius / a0_A)) + 1
    unit = bulk(symbol, lattice, a=a0_A, cubic=True)
    if site_A is None:
        crystal = unit.repeat((n, n, n))
        positions = crystal.positions - n * a0_A / 2 + a0_A / 4  # crystal frame, a lattice site a0/4 off the centre
        positions = positions @ rotation.T + centre
    else:  # cells k (integers, crystal frame) around the box's middle; sites at basis + k a0 from site_A
        n += 1
        crystal = unit.repeat((n, n, n))
        site = np.asarray(site_A, dtype=float)
        first = np.round((centre - site) @ rotation / a0_A - n / 2)
        k = np.stack(np.meshgrid(*(first[axis] + np.arange(n) for axis in range(3)), indexing="ij"), axis=-1)
        positions = (unit.positions[None] + (k.reshape(-1, 3) @ unit.cell.array)[:, None]).reshape(-1, 3)
        positions = positions @ rotation.T + site
    _check_whole_periods(lattice, a0_A, orientation, lengths)
    keep = np.all((positions > 1e-6) & (positions < lengths - 1e-6), axis=1)
    keep &= ~handshake.classify(positions)["outside"]
    atoms = crystal[keep]
    atoms.positions = positions[keep]
    atoms.pbc = False
    atoms.cell = np.zeros((3, 3))
    if split_x_A is not None:
        tags = BOX_BODY_TAGS if body_tags is None else body_tags
        missing = sorted({"body1", "body2"} - set(tags))
        if missing:
            raise CouplingInputError(f"body_tags = {dict(tags)}: no tag for {missing} (the two sides of split_x_A)")
        atoms.arrays["body"] = np.where(atoms.positions[:, 0] < split_x_A, tags["body1"], tags["body2"])
    return atoms
