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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from continuum.errors import ContinuumInputError

RAMPS = ("linear", "c1")
FACES = ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")


def ramp(t: np.ndarray, kind: str) -> np.ndarray:
    """The blending ramp on [0, 1], clipped outside: 0 at t <= 0, 1 at t >= 1."""
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if kind == "linear":
        return t
    if kind == "c1":
        return t * t * (3.0 - 2.0 * t)
    raise ContinuumInputError(f"handshake.ramp = {kind!r}: expected one of {RAMPS}")


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
            raise ContinuumInputError(f"handshake box {list(self.lower_A)} .. {list(self.upper_A)} Å: expected "
                                      "lower < upper on every axis")
        if not self.width_A > 0:
            raise ContinuumInputError(f"handshake.width_A = {self.width_A!r}: expected a positive width in Å")
        if not self.pad_A >= 0:
            raise ContinuumInputError(f"handshake.pad_A = {self.pad_A!r}: expected a width in Å")
        unknown = sorted(set(self.coupled_faces) - set(FACES))
        if unknown or not self.coupled_faces:
            raise ContinuumInputError(f"handshake.coupled_faces = {list(self.coupled_faces)}: expected some of {FACES}")
        if self.ramp not in RAMPS:
            raise ContinuumInputError(f"handshake.ramp = {self.ramp!r}: expected one of {RAMPS}")
        coupled = np.array([sum(f in self.coupled_faces for f in FACES[2 * a: 2 * a + 2]) for a in range(3)])
        if np.any(hi - lo <= coupled * self.width_A):
            raise ContinuumInputError(f"handshake.width_A = {self.width_A} Å: the box {(hi - lo).tolist()} Å leaves no "
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
            raise ContinuumInputError(f"handshake.pad_A = {self.pad_A} Å is thinner than the model's cutoff "
                                      f"{cutoff_A} Å: handshake atoms would miss neighbours")
        sets = self.classify(X)
        if not sets["handshake"].any():
            raise ContinuumInputError("handshake: no atom lies in the handshake region; the atoms and the "
                                      f"handshake box {list(self.lower_A)} .. {list(self.upper_A)} Å do not overlap")
        if not sets["free"].any():
            raise ContinuumInputError("handshake: no free atom in the core; widen the box or narrow the handshake")
        return sets
