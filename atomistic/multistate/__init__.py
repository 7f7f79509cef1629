"""Multi-state models (DESIGN §3): diabatic Hamiltonians, adiabatic surfaces and their
non-adiabatic couplings. Work in progress for issue 7: the adiabatic code path and the analytic
reference models are here; the trained model and surface hopping follow."""

from .adiabatic import AdiabaticStates, adiabatic_states, diabatic_gradient
from .models import (TULLY_MASS_AMU, ConicalIntersection, ThreeState, TullyDual, TullyExtended,
                     TullySimple)

__all__ = ["AdiabaticStates", "ConicalIntersection", "TULLY_MASS_AMU", "ThreeState", "TullyDual", "TullyExtended",
           "TullySimple", "adiabatic_states", "diabatic_gradient"]
