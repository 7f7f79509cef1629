"""coupling: the energy-partitioned handshake between atomistic and continuum regions (DESIGN section 5).

``handshake`` (regions, blending weights, :func:`fill_region`), ``atomistic_region`` (the atoms'
side: :class:`AtomisticRegion`, its energy, gradient and preconditioner, no mesh), ``transfer``
(atoms <-> finite elements, N and N^T, in parallel), ``interface_atoms`` (a cohesive interface's
part under the atoms), ``precondition`` (the exponential preconditioner), ``problem``
(:class:`CoupledProblem`: a continuum problem and a region, one energy, Newton), ``dynamics``
(:class:`CoupledDynamics`: the same energy and the lumped kinetic energy, B A O A B), its
``dynamics_settings`` (:class:`Thermostat`, :class:`Stadium`, :class:`VelocityLoad`,
:class:`Pulse`), ``materials``
(the continuum material from the NN-PES) and ``cohesive_law`` (the interface law from the
NN-PES), ``errors`` (:class:`CouplingInputError`).

The names below are imported when first used: ``import coupling`` loads neither torch nor
DOLFINx (``CoupledProblem`` needs both; ``AtomisticRegion`` and the laws need torch only).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CouplingInputError": "errors",
    "Handshake": "handshake",
    "fill_region": "handshake",
    "AtomisticRegion": "atomistic_region",
    "CoupledProblem": "problem",
    "CoupledDynamics": "dynamics",
    "crystal_density_amu_A3": "dynamics",
    "Thermostat": "dynamics_settings",
    "Stadium": "dynamics_settings",
    "VelocityLoad": "dynamics_settings",
    "Pulse": "dynamics_settings",
    "CrystalMaterial": "materials",
    "crystal_material": "materials",
    "SeparationCurve": "cohesive_law",
    "separation_curve": "cohesive_law",
    "half_crystals": "cohesive_law",
    "interface_plane": "cohesive_law",
    "model_interface_law": "cohesive_law",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
