"""Run a ``coupled`` case: the material's atoms inside its continuum, load-stepped to equilibrium.

Serial or under ``mpiexec -n N multiscale run case.toml``: the atoms (and the model) live on
rank 0, the mesh on all ranks. Outputs: field files (VTX or XDMF; displacement, stress, energy
density; nodes inside the atomistic core are inactive and stay at zero), ``atoms.extxyz`` (the
atoms at every written step: positions, forces, beta, region, body), ``load.csv`` (load factor,
energies by part in eV, reactions in eV/Å, Newton iterations), ``load.png`` and ``report.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from continuum.backend import load_dolfinx

from .continuum_job import (_boundary_conditions, _interface_law, _material, _model_law, _raw_mesh, _write_outputs,
                             load_steps)
from .coupled_config import CoupledCase

log = logging.getLogger(__name__)


def crystal_atoms(case: CoupledCase, a0: float, body_tags: dict[str, int]):
    """The material's crystal (orientation of the case, lattice constant ``a0`` Å) filling the
    atomistic box and its pad, inside the mesh box; a quarter of a cubic cell off the origin so
    that no plane of atoms lies on the mesh's faces or on a split at a whole number of half cells.
    Body labels from the side of ``mesh.split_x_A``."""
    from ase.build import bulk

    from continuum.materials import orientation_matrix
    from coupling.handshake import Handshake

    m, region = case.material, case.atoms
    handshake = Handshake(region.lower_A, region.upper_A, region.handshake_A, region.pad_A,
                          tuple(region.coupled_faces), region.ramp)
    rotation = orientation_matrix(m.orientation_x, m.orientation_y)  # rows: body axes in crystal coordinates
    lo = np.maximum(np.asarray(region.lower_A) - region.pad_A, 0.0)
    hi = np.minimum(np.asarray(region.upper_A) + region.pad_A, case.mesh.lengths_A)
    centre, radius = 0.5 * (lo + hi), 0.5 * np.linalg.norm(hi - lo) + a0
    n = int(np.ceil(2 * radius / a0)) + 1
    crystal = bulk(m.symbol, m.lattice, a=a0, cubic=True).repeat((n, n, n))
    positions = crystal.positions - n * a0 / 2 + a0 / 4  # crystal frame, a lattice site a0/4 off the centre
    positions = positions @ rotation.T + centre
    keep = np.all((positions > 1e-6) & (positions < np.asarray(case.mesh.lengths_A) - 1e-6), axis=1)
    keep &= ~handshake.classify(positions)["outside"]
    atoms = crystal[keep]
    atoms.positions = positions[keep]
    atoms.pbc = False
    atoms.cell = np.zeros((3, 3))
    if case.mesh.split_x_A is not None:
        atoms.arrays["body"] = np.where(atoms.positions[:, 0] < case.mesh.split_x_A, body_tags["body1"],
                                        body_tags["body2"])
    return atoms, handshake


def run_coupled(case: CoupledCase, base: Path, out: Path, *, progress: bool = True) -> dict:
    load_dolfinx()
    from mpi4py import MPI

    from .continuum_job import abort_other_ranks

    comm = MPI.COMM_WORLD
    with abort_other_ranks(comm):
        return _run(case, base, out, comm, progress)


def _run(case: CoupledCase, base: Path, out: Path, comm, progress: bool) -> dict:
    from ase.io import write

    from continuum.domain import Domain
    from continuum.solver import SolverSettings
    from coupling.problem import CoupledProblem

    material, a0, tensor, model = _material(case, base, comm)
    model_law = _model_law(case, model, a0, comm)
    domain = Domain.create(_raw_mesh(case, base) if comm.rank == 0 else None, comm)
    atoms, handshake = crystal_atoms(case, a0, dict(domain.bodies)) if comm.rank == 0 else (None, None)
    handshake = comm.bcast(handshake, root=0)
    interfaces = {name: _interface_law(case, base, model_law) for name in domain.interfaces} if case.interface else {}
    problem = CoupledProblem(domain, {name: material for name in domain.bodies}, atoms, model, handshake,
                             bcs=_boundary_conditions(case), interfaces=interfaces, degree=case.solver.degree,
                             solver=SolverSettings(linear_solver=case.solver.linear_solver, atol=1e-6,
                                                   max_cuts=case.solver.max_cuts),
                             mask_bodies=case.atoms.mask_bodies,
                             ghost_force_correction=case.atoms.ghost_force_correction)
    regions = problem.regions()
    log.info("%s: %d atoms (%s), %d DOFs", case.name, sum(regions.values()), regions,
             problem.V.dofmap.index_map.size_global * 3)
    pulled = tuple(b.name for b in case.boundary if b.type == "displacement")
    trajectory = out / "atoms.extxyz"
    if comm.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        trajectory.unlink(missing_ok=True)

    def write_atoms(load_factor: float) -> None:
        snapshot = problem.atoms()
        if snapshot is not None:
            snapshot.info["load_factor"] = load_factor
            write(trajectory, snapshot, format="extxyz", append=True)

    rows = load_steps(problem, case, out, pulled, comm, progress, on_write=write_atoms)
    report = {"name": case.name, "ranks": comm.size, "lattice_constant_A": a0, "atoms": regions,
              "C_GPa": np.round(tensor.C, 4).tolist(), "dofs": problem.V.dofmap.index_map.size_global * 3,
              "interface_law": None if model_law is None else {"W_sep_eV_A2": model_law.W_sep_eV_A2,
                                                               "length_A": model_law.length_A},
              "steps": len(rows), "final_energies_eV": rows[-1] if rows else {},
              "timings_s": {k: round(v, 4) for k, v in problem.timings.items()}}
    if comm.rank == 0:
        _write_outputs(out, rows, report, pulled, case)
    return report
