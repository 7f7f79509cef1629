"""Multi-state models (DESIGN §3): diabatic Hamiltonians, adiabatic surfaces and their
non-adiabatic couplings, trained diabatic models, SA-CASSCF reference data (``casscf``, needs
PySCF) and batched surface hopping. Guide and verification numbers: docs/multistate.md."""

from atomistic.multistate.adiabatic import AdiabaticStates, adiabatic_states, diabatic_gradient
from atomistic.multistate.calculator import MultiStateCalculator
from atomistic.multistate.coordinate_model import CoordinateDiabatic
from atomistic.multistate.fssh import AU_MOMENTUM, FSSHSettings, HopCounts, SurfaceHopping
from atomistic.multistate.initial import particle_initial_conditions, thermal_initial_conditions
from atomistic.multistate.models import (
                                         TULLY_MASS_AMU,
                                         ConicalIntersection,
                                         DiatomicCrossing,
                                         ThreeState,
                                         TullyDual,
                                         TullyExtended,
                                         TullySimple,
)
from atomistic.multistate.network import (
                                         BoundDiabatic,
                                         DiabaticPotential,
                                         MultiStateData,
                                         fit_multistate,
                                         multistate_loss,
                                         sample,
)

__all__ = ["AU_MOMENTUM", "AdiabaticStates", "BoundDiabatic", "ConicalIntersection", "CoordinateDiabatic",
           "DiabaticPotential", "DiatomicCrossing", "FSSHSettings", "HopCounts", "MultiStateCalculator",
           "MultiStateData", "SurfaceHopping", "TULLY_MASS_AMU", "ThreeState", "TullyDual", "TullyExtended",
           "TullySimple", "adiabatic_states", "diabatic_gradient", "fit_multistate", "multistate_loss",
           "particle_initial_conditions", "sample", "thermal_initial_conditions"]
