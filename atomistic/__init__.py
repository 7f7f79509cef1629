"""atomistic: a neural-network potential energy surface (NN-PES) library on PyTorch.

Stands alone (no DOLFINx, no MPI). Units are ASE's: eV, Å, amu; fs for times at the API.

    from atomistic import load_potential, NNPCalculator
    atoms.calc = NNPCalculator(load_potential("cases/models/cu_bp.safetensors"), device="cpu")
"""

__version__ = "0.1.0"

from .calculator import NNPCalculator  # noqa: E402
from .descriptors import DescriptorSettings  # noqa: E402
from .elastic import ElasticConstants, elastic_constants  # noqa: E402
from .ensemble import Ensemble  # noqa: E402
from .io import ModelFileError, load_potential, read_header, save_potential  # noqa: E402
from .models import BPPotential, NetworkSettings  # noqa: E402
from .structure import UnknownSpeciesError  # noqa: E402
from .irc import irc  # noqa: E402
from .optimize import relax  # noqa: E402
from .rates import committee_rates, htst_rate  # noqa: E402
from .saddle import SaddleError, neb, refine_saddle  # noqa: E402
from .timestep import suggest_timestep  # noqa: E402
from .vibrations import normal_modes  # noqa: E402

__all__ = [
    "BPPotential", "DescriptorSettings", "ElasticConstants", "Ensemble", "ModelFileError", "NNPCalculator",
    "NetworkSettings", "SaddleError", "UnknownSpeciesError", "committee_rates", "elastic_constants", "htst_rate", "irc",
    "load_potential", "neb", "normal_modes", "read_header", "refine_saddle", "relax", "save_potential",
    "suggest_timestep",
]
