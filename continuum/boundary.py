"""Boundary conditions, as data. Each names a boundary of the mesh; values are at load factor 1.

Displacement-controlled loading ramps ``Displacement.value_A`` with the load factor; tractions
and pressures (dead loads in the reference configuration) ramp likewise unless ``ramp=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ContinuumInputError


def _vector(field: str, value, allow_none: bool) -> tuple:
    value = tuple(value)
    if len(value) != 3:
        raise ContinuumInputError(f"{field} = {list(value)}: expected three components")
    for v in value:
        if v is None and allow_none:
            continue
        if not isinstance(v, (int, float)) or not np.isfinite(v):
            raise ContinuumInputError(f"{field} = {list(value)}: expected finite numbers"
                                      + (" or none for a free component" if allow_none else ""))
    return value


@dataclass(frozen=True)
class Displacement:
    """Prescribed displacement (Å) of ``boundary``; ``None`` leaves a component free."""

    boundary: str
    value_A: tuple[float | None, float | None, float | None]
    ramp: bool = True

    def __post_init__(self):
        object.__setattr__(self, "value_A", _vector(f"displacement on {self.boundary!r}", self.value_A, True))


@dataclass(frozen=True)
class Symmetry:
    """Zero normal displacement on a plane boundary normal to x, y or z."""

    boundary: str


@dataclass(frozen=True)
class Traction:
    """Traction (GPa) on ``boundary``, per reference area."""

    boundary: str
    traction_GPa: tuple[float, float, float]
    ramp: bool = True

    def __post_init__(self):
        object.__setattr__(self, "traction_GPa", _vector(f"traction on {self.boundary!r}", self.traction_GPa, False))


@dataclass(frozen=True)
class Pressure:
    """Pressure (GPa, positive pushes inward) on ``boundary``, along the reference normal."""

    boundary: str
    pressure_GPa: float
    ramp: bool = True


BoundaryCondition = Displacement | Symmetry | Traction | Pressure
