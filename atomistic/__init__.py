"""atomistic: a neural-network potential energy surface (NN-PES) library on PyTorch.

Stands alone (no DOLFINx, no MPI). Units are ASE's (:mod:`atomistic.units`): eV, Å, amu; fs for
times at the API.

    from atomistic import load_potential, NNPCalculator
    atoms.calc = NNPCalculator(load_potential("cases/models/cu_emt.safetensors"), device="cpu")

Layout (each a small room with one door):

    potential/    the potential itself: structure (ASE Atoms <-> tensors, fixed_mask), neighbors,
                  descriptors, models, forces (everything derived from the energy by autograd, and
                  evaluate: Atoms in, prediction out), committee, io (model files), analytic
    analysis/     what one does with a potential: optimize, vibrations, saddle, irc, rates, thermo,
                  elastic, properties, timestep
    md/           molecular dynamics on the device (NVE, NVT, NPT), checkpoints, blow-up guards
    training/     data (labelled frames), batches, loss, trainer, committee training, learning curves
    active/       active learning: oracle, append-only store, loop, calibration, assessment
    multistate/   diabatic models, adiabatic states, surface hopping and its initial conditions
    calculator    the ASE calculator (NNPCalculator)
    errors        every error the package raises on purpose
    atomic_files  atomic (write, fsync, rename) text, CSV and extxyz writers
    units, plots, testing (reusable model checks), recipes (named dataset generators)

Words: a *committee* is several models trained alike whose spread estimates the model error
(:class:`Committee`; earlier versions called it an ensemble, and ``Ensemble`` remains an alias);
an *ensemble* is a statistical ensemble of MD, NVE, NVT or NPT (``MDSettings.ensemble``).
"""

from atomistic.analysis.elastic import ElasticConstants, elastic_constants  # noqa: E402
from atomistic.analysis.irc import irc  # noqa: E402
from atomistic.analysis.optimize import relax  # noqa: E402
from atomistic.analysis.rates import committee_rates, htst_rate  # noqa: E402
from atomistic.analysis.saddle import neb, refine_saddle  # noqa: E402
from atomistic.analysis.timestep import suggest_timestep  # noqa: E402
from atomistic.analysis.vibrations import normal_modes  # noqa: E402
from atomistic.calculator import NNPCalculator  # noqa: E402
from atomistic.errors import ModelFileError, SaddleError, UnknownSpeciesError  # noqa: E402
from atomistic.potential.committee import Committee, Ensemble, evaluate_committee  # noqa: E402
from atomistic.potential.descriptors import DescriptorSettings  # noqa: E402
from atomistic.potential.forces import evaluate  # noqa: E402
from atomistic.potential.io import load_potential, read_header, save_potential  # noqa: E402
from atomistic.potential.models import BPPotential, NetworkSettings  # noqa: E402
from atomistic.potential.structure import fixed_mask  # noqa: E402
from atomistic.version import __version__  # noqa: E402,F401

__all__ = [
    "BPPotential", "Committee", "DescriptorSettings", "ElasticConstants", "Ensemble", "ModelFileError",
    "NNPCalculator", "NetworkSettings", "SaddleError", "UnknownSpeciesError", "committee_rates", "elastic_constants",
    "evaluate", "evaluate_committee", "fixed_mask", "htst_rate", "irc", "load_potential", "neb", "normal_modes",
    "read_header", "refine_saddle", "relax", "save_potential", "suggest_timestep",
]
