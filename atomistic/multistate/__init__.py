"""Multi-state models (DESIGN §3): diabatic Hamiltonians, adiabatic surfaces and their
non-adiabatic couplings, and surface hopping. Work in progress for issue 7: the adiabatic code
path, the analytic reference models, a trainable diabatic model and batched FSSH are here."""

from .adiabatic import AdiabaticStates, adiabatic_states, diabatic_gradient
from .calculator import MultiStateCalculator
from .coordinate_model import CoordinateDiabatic
from .fssh import AU_MOMENTUM, FSSHSettings, HopCounts, SurfaceHopping
from .models import (TULLY_MASS_AMU, ConicalIntersection, DiatomicCrossing, ThreeState, TullyDual,
                     TullyExtended, TullySimple)
from .network import BoundDiabatic, DiabaticPotential, MultiStateData, fit_multistate, multistate_loss, sample

__all__ = ["AU_MOMENTUM", "AdiabaticStates", "BoundDiabatic", "ConicalIntersection", "CoordinateDiabatic", "DiabaticPotential",
           "DiatomicCrossing", "FSSHSettings", "HopCounts", "MultiStateCalculator", "MultiStateData", "SurfaceHopping", "TULLY_MASS_AMU",
           "ThreeState", "TullyDual", "TullyExtended", "TullySimple", "adiabatic_states", "diabatic_gradient",
           "fit_multistate", "multistate_loss", "sample"]
