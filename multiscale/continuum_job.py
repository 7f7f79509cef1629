"""Run a ``continuum`` case: material from the NN-PES, mesh, load steps, fields and a load curve.

Runs serially or under ``mpiexec -n N multiscale run case.toml``. The model is evaluated on rank 0
and the constants broadcast; the mesh is built on rank 0 and distributed. Outputs: field files
(VTX or XDMF), ``load.csv`` (load factor, energies in eV, reaction forces in eV/Å of every
displaced boundary), ``load.png`` and ``report.json``. An unexpected error on one rank aborts all.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from continuum.backend import load_dolfinx

from .continuum_config import ContinuumCase

log = logging.getLogger(__name__)


def _material(case, base: Path, comm):
    """The continuum material (computed on rank 0 from the model, the numbers broadcast): material,
    lattice constant (Å), tensor, and the model (on rank 0; None elsewhere)."""
    from continuum.materials import CauchyBorn, ElasticTensor, LinearElastic

    numbers, model = None, None
    if comm.rank == 0:
        from atomistic import load_potential

        from .materials import crystal_material

        m = case.material
        model = load_potential(base / case.potential.path, device=case.potential.device)
        built = crystal_material(model, symbol=m.symbol, lattice=m.lattice, a_guess_A=m.a_guess_A,
                                 orientation=(m.orientation_x, m.orientation_y), law=m.law, name=m.symbol)
        t = built.material.tensor
        numbers = (t.C, t.C3, built.lattice_constant_A)
    C, C3, a0 = comm.bcast(numbers, root=0)
    tensor = ElasticTensor(C, C3, name=case.material.symbol)
    material = CauchyBorn(tensor) if case.material.law == "cauchy-born" else LinearElastic(tensor)
    return material, a0, tensor, model


def _model_law(case, model, a0: float, comm):
    """The UBER fit of the model's rigid separation across the plane normal to the body's x axis
    (computed on rank 0, broadcast); None unless ``interface.law = "model"``."""
    if case.interface is None or case.interface.law != "model":
        return None
    from continuum.errors import ContinuumInputError

    result = None
    if comm.rank == 0:
        from coupling.cohesive_law import separation_curve

        x = np.abs(np.asarray(case.material.orientation_x, dtype=float))
        digits = np.round(np.sort(x / x[x > 0].min())[::-1]).astype(int)
        plane = "".join(map(str, digits))
        if plane not in ("100", "110", "111") or not np.allclose(np.sort(x / x[x > 0].min())[::-1], digits):
            result = f"interface.law = \"model\": the body's x axis {list(case.material.orientation_x)} must be a " \
                     "<100>, <110> or <111> direction (the plane the model's half-crystals separate across)"
        else:
            result = separation_curve(model, case.material.symbol, a0, plane=plane).uber()
            log.info("interface law from the model: (%s) W_sep = %.4f eV/Å^2, l = %.4f Å", plane,
                     result.W_sep_eV_A2, result.length_A)
    result = comm.bcast(result, root=0)
    if isinstance(result, str):
        raise ContinuumInputError(result)
    return result


def _raw_mesh(case: ContinuumCase, base: Path):
    from continuum.geometry import box, from_gmsh, split_interfaces

    m = case.mesh
    if m.file is not None:
        return split_interfaces(from_gmsh(base / m.file), list(m.interfaces))
    cuts = (("x", m.split_x_A, "interface"),) if m.split_x_A is not None else ()
    return box(m.lengths_A, m.divisions, cell_type=m.cell_type, cuts=cuts)


def _boundary_conditions(case: ContinuumCase):
    from continuum.boundary import Displacement, Pressure, Symmetry, Traction

    out = []
    for b in case.boundary:
        if b.type == "displacement":
            out.append(Displacement(b.name, tuple(None if v == "free" else float(v) for v in b.value_A), b.ramp))
        elif b.type == "symmetry":
            out.append(Symmetry(b.name))
        elif b.type == "traction":
            out.append(Traction(b.name, tuple(b.value_GPa), b.ramp))
        else:
            out.append(Pressure(b.name, b.value_GPa[0], b.ramp))
    return tuple(out)


def _interface_law(case, base: Path, model_law=None):
    from continuum.cohesive import UBER, TabulatedLaw
    from continuum.errors import ContinuumInputError
    from continuum.interface import InterfaceLaw
    from continuum.units import J_per_m2

    i = case.interface
    law = model_law
    if i.law == "uber":
        law = UBER(i.W_sep_J_m2 * J_per_m2, i.length_A, i.tangential_length_A)
    elif i.law == "table":
        path = base / i.table
        try:
            table = np.loadtxt(path, delimiter=",", ndmin=2, comments="#")
        except (OSError, ValueError) as exc:
            raise ContinuumInputError(f"interface.table = {i.table!r}: cannot read two numeric columns ({exc})") from None
        if table.shape[1] != 2:
            raise ContinuumInputError(f"interface.table = {i.table!r}: expected 2 columns (opening_A, energy_J_m2), "
                                      f"got {table.shape[1]}")
        law = TabulatedLaw(tuple(table[:, 0]), tuple(table[:, 1] * J_per_m2))
    return InterfaceLaw(law, contact_penalty=i.contact_penalty)


@contextmanager
def abort_other_ranks(comm):
    """An unexpected error on one rank ends every rank (MPI Abort) instead of leaving them hanging;
    input errors, raised on every rank alike, pass through."""
    try:
        yield
    except Exception as exc:
        from continuum.errors import ContinuumInputError

        if comm.size > 1 and not isinstance(exc, ContinuumInputError):
            log.error("rank %d: %s: %s; aborting all ranks", comm.rank, type(exc).__name__, exc)
            sys.stderr.flush()
            comm.Abort(1)
        raise


def run_continuum(case: ContinuumCase, base: Path, out: Path, *, resume: bool = False, progress: bool = True) -> dict:
    load_dolfinx()
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    with abort_other_ranks(comm):
        return _run(case, base, out, comm, progress)


def _run(case: ContinuumCase, base: Path, out: Path, comm, progress: bool) -> dict:
    from continuum.domain import Domain
    from continuum.problem import StaticProblem
    from continuum.solver import SolverSettings

    material, a0, tensor, model = _material(case, base, comm)
    model_law = _model_law(case, model, a0, comm)
    domain = Domain.create(_raw_mesh(case, base) if comm.rank == 0 else None, comm)
    interfaces = {name: _interface_law(case, base, model_law) for name in domain.interfaces} if case.interface else {}
    bcs = _boundary_conditions(case)
    problem = StaticProblem(domain, {name: material for name in domain.bodies}, bcs=bcs, interfaces=interfaces,
                            degree=case.solver.degree,
                            solver=SolverSettings(linear_solver=case.solver.linear_solver, max_cuts=case.solver.max_cuts))
    pulled = tuple(b.name for b in case.boundary if b.type == "displacement")
    rows = load_steps(problem, case, out, pulled, comm, progress)
    report = {"name": case.name, "ranks": comm.size, "lattice_constant_A": a0,
              "C_GPa": np.round(tensor.C, 4).tolist(), "law": case.material.law,
              "dofs": problem.V.dofmap.index_map.size_global * 3, "steps": len(rows),
              "final_energies_eV": rows[-1] if rows else {}}
    if comm.rank == 0:
        _write_outputs(out, rows, report, pulled, case)
    return report


def load_steps(problem, case, out: Path, pulled: tuple[str, ...], comm, progress: bool, on_write=None) -> list[dict]:
    """Walk the load steps of ``problem``; fields (and ``on_write(load_factor)``) at the start, every
    ``output.every`` steps and at the end. Returns one row per step: load factor, energies (eV),
    Newton iterations, reactions (eV/Å) of the ``pulled`` boundaries."""
    from continuum.output import FieldWriter

    if comm.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    comm.barrier()
    rows = []
    with FieldWriter(problem, out / "fields", case.output.format) as writer:
        for write in (writer.write, on_write or (lambda factor: None)):
            write(0.0)
        steps = problem.irun(case.solver.steps, reactions=pulled)
        if progress and comm.rank == 0:
            from tqdm import tqdm

            steps = tqdm(steps, total=case.solver.steps, desc=case.name, unit="step")
        for k, step in enumerate(steps, start=1):
            row = {"load_factor": step.load_factor, **{f"{k_}_eV": v for k_, v in step.energies_eV.items()},
                   "newton_iterations": step.newton_iterations}
            for name, force in step.reactions_eV_A.items():
                row.update({f"reaction_{name}_{c}_eV_A": float(f) for c, f in zip("xyz", force)})
            rows.append(row)
            if k % case.output.every == 0 or step.load_factor >= 1.0:
                for write in (writer.write, on_write or (lambda factor: None)):
                    write(step.load_factor)
    return rows


def _write_outputs(out: Path, rows: list[dict], report: dict, pulled: tuple[str, ...], case) -> None:
    from atomistic.atomic_files import write_text
    from atomistic.plots import save_png

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with (out / "load.csv.tmp").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "load.csv.tmp").replace(out / "load.csv")
    write_text(out / "report.json", json.dumps(report, indent=2))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    lam = [0.0] + [r["load_factor"] for r in rows]
    for name in pulled:
        for c in "xyz":
            key = f"reaction_{name}_{c}_eV_A"
            if any(abs(r[key]) > 0 for r in rows):
                ax.plot(lam, [0.0] + [r[key] for r in rows], marker=".", label=f"{name} {c}")
    ax.set_xlabel("load factor")
    ax.set_ylabel("reaction force (eV/Å)")
    ax.set_title(case.name)
    ax.legend()
    save_png(fig, out / "load.png")
