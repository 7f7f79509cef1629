"""The errors that mean "bad input": the CLI reports them in one line and exits with code 2."""

from atomistic.data import DatasetError
from atomistic.io import ModelFileError
from atomistic.saddle import SaddleError
from atomistic.structure import UnknownSpeciesError
from atomistic.training.trainer import CheckpointMismatch

from continuum.errors import ContinuumInputError

from .schema import CaseError

INPUT_ERRORS = (CaseError, DatasetError, ModelFileError, UnknownSpeciesError, CheckpointMismatch, SaddleError,
                ContinuumInputError)
