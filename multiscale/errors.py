"""The errors that mean "bad input": the CLI reports them in one line and exits with code 2.

Anything else is a failure of the run (exit 1) or a bug (a traceback): a ``ValueError`` raised
deep inside a library is not, by itself, a bad case file.
"""

from atomistic.errors import (
    CheckpointMismatch,
    DatasetError,
    EngineUnavailable,
    InputMismatch,
    ModelFileError,
    SaddleError,
    UnknownSpeciesError,
)
from continuum.errors import ContinuumInputError

from .schema import CaseError

INPUT_ERRORS: tuple[type[Exception], ...] = (CaseError, DatasetError, ModelFileError, UnknownSpeciesError,
                                              CheckpointMismatch, SaddleError, InputMismatch, ContinuumInputError,
                                              EngineUnavailable)
try:  # the coupling's own input errors (atom side, handshake geometry)
    from coupling.errors import CouplingInputError

    INPUT_ERRORS += (CouplingInputError,)
except ImportError:  # pragma: no cover - older trees
    pass
