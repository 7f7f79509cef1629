"""Multi-state models (DESIGN §3): diabatic Hamiltonians, adiabatic surfaces and their
non-adiabatic couplings, and surface hopping. Work in progress for issue 7: the adiabatic code
path, the analytic reference models and batched FSSH are here; the trained model follows."""

from .adiabatic import AdiabaticStates, adiabatic_states, diabatic_gradient
from .fssh import AU_MOMENTUM, FSSHSettings, HopCounts, SurfaceHopping
from .models import (TULLY_MASS_AMU, ConicalIntersection, ThreeState, TullyDual, TullyExtended,
                     TullySimple)

__all__ = ["AU_MOMENTUM", "AdiabaticStates", "ConicalIntersection", "FSSHSettings", "HopCounts", "SurfaceHopping",
           "TULLY_MASS_AMU", "ThreeState", "TullyDual", "TullyExtended", "TullySimple", "adiabatic_states",
           "diabatic_gradient"]
