"""The oracle: the reference method that labels configurations (energy eV, forces eV/Å, stress
eV/Å^3 for periodic cells), behind one interface whatever the calculator.

Any ASE calculator can be an oracle. Two are named, so that case files can ask for them without
code: ``"emt"`` (ASE's EMT, for metals) and ``"gfn2-xtb"`` / ``"gfn1-xtb"`` (tblite, installed
with the ``oracles`` extra; energies and forces of small molecules in milliseconds).

Every way a label can go wrong ends in one exception, :class:`OracleFailure`, whose ``kind``
says which: ``"calculation_failed"`` (the calculator gave up, e.g. an SCF that did not converge),
``"exception"`` (anything else it raised), ``"non_finite"`` (NaN or inf in the results),
``"timeout"`` and ``"worker_died"``. With ``timeout_s`` the calculator runs in a worker process
that is killed when a label takes too long (a hung quantum code cannot hang the loop); the next
label starts a fresh worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import CalculationFailed

from atomistic.errors import OracleFailure
from atomistic.training.data import label_with

log = logging.getLogger(__name__)

NAMED_ORACLES = ("emt", "gfn2-xtb", "gfn1-xtb")


@dataclass(frozen=True)
class OracleSpec:
    """A named oracle (see :data:`NAMED_ORACLES`). The xTB settings: ``charge`` (e),
    ``multiplicity`` (2S+1), ``electronic_temperature_K``, ``max_scf_iterations`` and
    ``accuracy`` (tblite's; smaller is tighter). ``timeout_s``: label in a worker process that
    is stopped after this long (None: in this process, no time limit). Calling the spec builds
    the calculator, so it can be sent to a worker process."""

    name: str = "emt"
    charge: int = 0
    multiplicity: int = 1
    electronic_temperature_K: float = 300.0
    max_scf_iterations: int = 250
    accuracy: float = 1.0
    timeout_s: float | None = None

    def __post_init__(self):
        if self.name not in NAMED_ORACLES:
            raise ValueError(f"oracle.name must be one of {NAMED_ORACLES}, got {self.name!r}")
        if self.multiplicity < 1:
            raise ValueError(f"oracle.multiplicity must be >= 1, got {self.multiplicity}")
        if not self.electronic_temperature_K > 0:
            raise ValueError(f"oracle.electronic_temperature_K must be positive, got {self.electronic_temperature_K}")
        if self.max_scf_iterations < 1:
            raise ValueError(f"oracle.max_scf_iterations must be >= 1, got {self.max_scf_iterations}")
        if not self.accuracy > 0:
            raise ValueError(f"oracle.accuracy must be positive, got {self.accuracy}")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"oracle.timeout_s must be positive (or left out), got {self.timeout_s}")
        if self.name != "emt":
            require_tblite()

    def __call__(self):
        if self.name == "emt":
            from ase.calculators.emt import EMT

            return EMT()
        from tblite.ase import TBLite

        return TBLite(method="GFN2-xTB" if self.name == "gfn2-xtb" else "GFN1-xTB", charge=self.charge,
                      multiplicity=self.multiplicity, electronic_temperature=self.electronic_temperature_K,
                      max_iterations=self.max_scf_iterations, accuracy=self.accuracy, verbosity=0)


def require_tblite() -> None:
    try:
        import tblite.ase  # noqa: F401
    except ImportError:
        raise ValueError("the xTB oracles need tblite: pip install 'multiscale[oracles]' (or pip install tblite)") \
            from None


def _classify(exc: BaseException) -> tuple[str, str]:
    kind = "calculation_failed" if isinstance(exc, CalculationFailed) else "exception"
    return kind, f"{type(exc).__name__}: {exc}"


def _serve(factory: Callable, labeller: Callable, conn) -> None:
    """Worker process: build the calculator once, then label what arrives until told to stop."""
    try:
        calc = factory()
    except Exception as exc:  # reported on the first request
        calc, error = None, _classify(exc)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        atoms, stress = message
        if calc is None:
            conn.send(("error", *error))
            continue
        try:
            conn.send(("ok", labeller(atoms, calc, stress)))
        except Exception as exc:  # any failure of the calculator is reported, never raised here
            conn.send(("error", *_classify(exc)))


class Oracle:
    """Labels configurations with a reference method.

    Give ``calculator`` (an ASE calculator, used in this process) or ``factory`` (a picklable
    callable returning one, e.g. an :class:`OracleSpec`). ``timeout_s`` needs a factory: labels
    then run in a worker process that is killed after that many seconds. ``stress``: also label
    the stress of 3-D periodic cells. ``labeller(atoms, calculator, stress) -> Atoms`` attaches
    the results (default: energy, forces, stress; a multi-state oracle uses
    :func:`atomistic.multistate.casscf.label_states`). ``calls``, ``failures`` and ``seconds``
    count the work done.
    """

    def __init__(self, calculator=None, *, factory: Callable | None = None, timeout_s: float | None = None,
                 stress: bool = False, name: str | None = None, labeller: Callable = label_with):
        if (calculator is None) == (factory is None):
            raise ValueError("give exactly one of calculator or factory")
        if timeout_s is not None and factory is None:
            raise ValueError("timeout_s needs a factory (the calculator runs in a worker process that can be killed)")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.factory, self.timeout_s, self.stress, self.labeller = factory, timeout_s, stress, labeller
        self.name = name or getattr(factory, "name", None) or type(calculator or factory).__name__
        self._calc = calculator
        self._worker = self._conn = None
        self.calls = self.failures = 0
        self.seconds = 0.0

    def __call__(self, atoms: Atoms) -> Atoms:
        """A copy of ``atoms`` with the oracle's energy and forces (and stress); raises
        :class:`OracleFailure` when no trustworthy label came back."""
        self.calls += 1
        t0 = time.perf_counter()
        try:
            labelled = self._worker_call(atoms) if self.timeout_s else self._local_call(atoms)
            results = labelled.calc.results
            energy, forces, stress = results["energy"], np.asarray(results["forces"]), results.get("stress")
            if not (np.isfinite(energy) and np.isfinite(forces).all()
                    and (stress is None or np.isfinite(stress).all())):
                raise OracleFailure("non_finite", "the oracle returned NaN or inf")
            if forces.shape != (len(atoms), 3):
                raise OracleFailure("exception", f"forces of shape {forces.shape} for {len(atoms)} atoms")
        except OracleFailure:
            self.failures += 1
            raise
        finally:
            self.seconds += time.perf_counter() - t0
        return labelled

    def _local_call(self, atoms):
        if self._calc is None:
            self._calc = self.factory()
        try:
            return self.labeller(atoms, self._calc, self.stress)
        except Exception as exc:
            raise OracleFailure(*_classify(exc)) from exc

    def _worker_call(self, atoms):
        if self._worker is None or not self._worker.is_alive():
            ctx = multiprocessing.get_context("spawn")  # no fork of a process with torch threads
            self._conn, child = ctx.Pipe()
            self._worker = ctx.Process(target=_serve, args=(self.factory, self.labeller, child), daemon=True,
                                       name=f"oracle-{self.name}")
            self._worker.start()
            child.close()
        stripped = atoms.copy()
        stripped.calc = None
        try:
            self._conn.send((stripped, self.stress))
            if not self._conn.poll(self.timeout_s):
                self._kill()
                raise OracleFailure("timeout", f"no label after {self.timeout_s:g} s; the worker was stopped")
            reply = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
            self._kill()
            raise OracleFailure("worker_died", f"the oracle's worker process ended ({type(exc).__name__})") from None
        if reply[0] == "error":
            raise OracleFailure(reply[1], reply[2])
        return reply[1]

    def _kill(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker.join(timeout=10)
        self._worker = None
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def close(self) -> None:
        """Stop the worker process, if any."""
        if self._worker is not None and self._worker.is_alive():
            try:
                self._conn.send(None)
                self._worker.join(timeout=5)
            except (BrokenPipeError, OSError):
                pass
        self._kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
