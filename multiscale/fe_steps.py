"""The load-step loop of the kinds with a finite-element body (``continuum``, ``coupled``) and its
outputs: field files, ``load.csv``, ``report.json`` and ``load.png``.

After every converged load step the run commits a checkpoint (:mod:`multiscale.fe_checkpoint`),
then rewrites ``load.csv`` (the rows so far) and ``report.json`` (``"finished": false`` until the
end) atomically, so a run killed at any step leaves its load curve so far and ``--resume``
continues it. A resumed run:

- rewrites the field files (``fields/``) and, through ``on_write``, the atoms' trajectory from
  scratch, replaying the states of the written steps kept in the checkpoint: they hold the same
  times and values as those of an uninterrupted run, never a torn step of the killed one;
- continues the load walk with the very load factors of an uninterrupted run (the checkpoint
  keeps the walk's increments) and ends with the same numbers in ``load.csv`` and
  ``report.json`` (``wall_s`` counts every part of the run);
- on a run that had finished, says so and changes nothing (:meth:`Checkpoints.finished_report`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .fe_checkpoint import Checkpoints, layout
from .outputs import Report, write_rows


def _row(step, problem) -> dict:
    """A ``load.csv`` row; under opening control (:class:`~continuum.continuation.OpeningControl`)
    the opening (Å) and the applied load factor in place of the walked fraction."""
    columns = getattr(problem, "columns", None)
    row = {"load_factor": step.load_factor, **(columns() if columns else {}),
           **{f"{k}_eV": v for k, v in step.energies_eV.items()}, "newton_iterations": step.newton_iterations}
    for name, force in step.reactions_eV_A.items():
        row.update({f"reaction_{name}_{c}_eV_A": float(f) for c, f in zip("xyz", force)})
    return row


def load_steps(problem, case, out: Path, pulled: tuple[str, ...], comm, progress: bool, *,
               checkpoints: Checkpoints, report: Report, results: Callable[[list[dict]], dict],
               on_write: Callable[[float], None] | None = None) -> list[dict]:
    """Walk the load steps of ``problem`` (from the checkpoint of ``checkpoints`` when it holds one);
    fields (and ``on_write(load_factor)``) at the start, every ``output.every`` steps and at the end.
    After each step: a checkpoint, ``load.csv`` and ``report.json`` (``report`` with
    ``results(rows)`` and ``"finished": false``). Returns one row per step: load factor, energies
    (eV), Newton iterations, reactions (eV/Å) of the ``pulled`` boundaries."""
    from continuum.output import FieldWriter
    from continuum.stepping import load_steps as walk

    if comm.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(out / "fields", ignore_errors=True)  # rewritten by every run, a resumed one included
    comm.barrier()
    write_also = on_write or (lambda factor: None)
    here = layout(problem)
    meta = checkpoints.meta
    with FieldWriter(problem, out / "fields", case.output.format) as writer:
        if meta is None:
            first, rows, increments = 1, [], None
            for write in (writer.write, write_also):
                write(0.0)
            checkpoints.save(0, problem.state(), written=True, increments=(1.0 / case.solver.steps,) * 2, rows=rows,
                             wall_s=0.0, layout_hash=here)
        else:
            checkpoints.check_layout(problem)
            for _, factor, file in meta["written"]:  # the field files and frames of the steps so far, again
                problem.restore((factor, checkpoints.load_state(file)))
                for write in (writer.write, write_also):
                    write(factor)
            problem.restore((meta["load_factor"], checkpoints.load_state(meta["state"])))
            first, rows, increments = meta["step"] + 1, list(meta["rows"]), tuple(meta["increments"])
            report.started -= meta["wall_s"]
        steps = walk(problem, case.solver.steps, pulled, max_cuts=case.solver.max_cuts, increments=increments)
        if progress and comm.rank == 0:
            from tqdm import tqdm

            steps = tqdm(steps, total=case.solver.steps, initial=first - 1, desc=case.name, unit="step")
        for k, step in enumerate(steps, start=first):
            rows.append(_row(step, problem))
            written = k % case.output.every == 0 or step.load_factor >= 1.0
            if written:
                for write in (writer.write, write_also):
                    write(step.load_factor)
            checkpoints.save(k, problem.state(), written=written, rows=rows, layout_hash=here,
                             increments=(step.nominal_increment, step.next_increment),
                             wall_s=time.perf_counter() - report.started)
            if comm.rank == 0:
                write_rows(out / "load.csv", rows)
            report.write(out, {**results(rows), "finished": False}, on_this_rank=comm.rank == 0)
    return rows


def finish(out: Path, rows: list[dict], pulled: tuple[str, ...], case, comm, checkpoints: Checkpoints,
           report: Report, body: dict, pull_off: dict | None = None) -> dict:
    """The run's final outputs: ``load.csv``, ``load.png`` (with ``pull_off``, :func:`pull_off`'s
    summary, its panels), ``report.json`` (``"finished": true``; ``pull_off`` without its curves);
    then the checkpoint marked finished. Returns the report."""
    if comm.rank == 0:
        write_rows(out / "load.csv", rows)
        if pull_off is not None:
            pull_off_plot(out / "load.png", pull_off, case)
        else:
            load_plot(out / "load.png", rows, pulled, case)
    if pull_off is not None:
        body = {**body, "pull_off": {k: v for k, v in pull_off.items() if not isinstance(v, np.ndarray)}}
    written = report.write(out, {**body, "finished": True}, on_this_rank=comm.rank == 0)
    checkpoints.finish()
    return written


def pull(case) -> tuple[str, int, float] | None:
    """The displacement-controlled boundary that is pulled: (boundary, axis, full displacement Å) of
    the largest ramped displacement component, or None when no boundary is pulled."""
    best = None
    for b in case.boundary:
        if b.type != "displacement" or not b.ramp:
            continue
        for axis, value in enumerate(b.value_A):
            if not isinstance(value, str) and value != 0 and (best is None or abs(value) > abs(best[2])):
                best = (b.name, axis, float(value))
    return best


def load_plot(path: Path, rows: list[dict], pulled: tuple[str, ...], case) -> Path:
    """The reactions (eV/Å) of the ``pulled`` boundaries against the applied displacement of the
    pulled boundary (Å; against the load factor when none is pulled): only the components that are
    not zero throughout (above 1e-6 of the largest), the legend beside the axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atomistic.plots import save_png

    lam = np.array([0.0] + [r["load_factor"] for r in rows])
    curves = {f"{name} {c}": np.array([0.0] + [r[f"reaction_{name}_{c}_eV_A"] for r in rows])
              for name in pulled for c in "xyz" if rows and f"reaction_{name}_{c}_eV_A" in rows[0]}
    largest = max((float(np.abs(v).max()) for v in curves.values()), default=0.0)
    pulled_by = pull(case)
    x, xlabel = lam, "load factor"
    if pulled_by is not None:
        name, axis, value = pulled_by
        x, xlabel = lam * value, f"displacement of {name} along {'xyz'[axis]} (Å)"
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for label, values in curves.items():
        if np.abs(values).max() > 1e-6 * largest:
            ax.plot(x, values, marker=".", label=label)
    ax.axhline(0.0, color="0.7", lw=0.6, zorder=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("reaction force (eV/Å)")
    ax.set_title(case.name)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    return save_png(fig, path)


def pull_off(rows: list[dict], case, interfaces: dict, tensor) -> dict | None:
    """Under opening control with a pulled boundary: the path's numbers (the applied displacement
    ``U`` Å of the pulled boundary, its reaction ``F`` eV/Å along the pull, the mean opening Å at
    every step from 0), the peak, the work of separation ``integral F dU`` (eV, trapezoids along the
    path, snap-back included) against ``W_sep`` times the area; on a box split at x and pulled
    along x, also the series response of two elastic bars (uniaxial stress, Young's modulus along
    x from ``tensor``) with the interface law between them: ``U = delta + L sigma(delta) / E``,
    ``F = A sigma(delta)``. None under load control."""
    from continuum.units import GPa

    pulled_by = pull(case)
    if case.solver.control != "opening" or pulled_by is None or not rows:
        return None
    name, axis, value = pulled_by
    sign = float(np.sign(value))
    U = np.array([0.0] + [r["load_factor"] * value for r in rows])
    F = sign * np.array([0.0] + [r[f"reaction_{name}_{'xyz'[axis]}_eV_A"] for r in rows])
    opening = np.array([0.0] + [r["opening_A"] for r in rows])
    iface = case.solver.control_interface or next(iter(interfaces))
    law = interfaces[iface].law
    peak = int(np.argmax(F))
    out = {"interface": iface, "boundary": name, "U_A": U, "F_eV_A": F, "opening_A": opening,
           "peak_reaction_eV_A": float(F[peak]), "applied_at_peak_A": float(U[peak]),
           "opening_at_peak_A": float(opening[peak]), "final_opening_A": float(opening[-1]),
           "work_of_separation_eV": float(np.sum(0.5 * (F[1:] + F[:-1]) * np.diff(U)))}
    lengths = case.mesh.lengths_A
    if law is None or lengths is None or case.mesh.split_x_A is None or axis != 0:
        return out
    area = float(lengths[1] * lengths[2])
    phi = law.evaluate(np.array([0.0, opening[-1]]), np.zeros(2))[0]
    young = 1.0 / np.linalg.inv(np.asarray(tensor.C))[0, 0] * GPa  # eV/Å^3, uniaxial stress along x
    delta = np.linspace(0.0, opening[-1], 400)
    sigma = law.evaluate(delta, np.zeros_like(delta))[1]
    out.update({"area_A2": area, "W_sep_times_area_eV": float(law.work_of_separation_eV_A2 * area),
                "law_released_to_final_opening_eV": float((phi[1] - phi[0]) * area),
                "young_x_GPa": float(young / GPa), "series_peak_reaction_eV_A": float(area * sigma.max()),
                "series_U_A": delta + lengths[0] * sigma / young, "series_F_eV_A": area * sigma,
                "series_opening_A": delta})
    return out


def pull_off_plot(path: Path, summary: dict, case) -> Path:
    """Pull-off in two panels: the reaction against the applied displacement (Å) and against the
    interface's mean opening (Å), each with the series reference (elastic bars and the interface
    law) where :func:`pull_off` has one; the work of separation against ``W_sep`` times the area."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atomistic.plots import save_png

    s = summary
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.0), sharey=True)
    for ax, x, series, label in ((left, s["U_A"], "series_U_A", f"displacement of {s['boundary']} (Å)"),
                                 (right, s["opening_A"], "series_opening_A", f"mean opening of {s['interface']} (Å)")):
        ax.plot(x, s["F_eV_A"], marker=".", label=case.name)
        if series in s:
            ax.plot(s[series], s["series_F_eV_A"], color="k", ls="--", lw=1,
                    label="series: bars in uniaxial stress + interface law")
        ax.axhline(0.0, color="0.7", lw=0.6, zorder=0)
        ax.set_xlabel(label)
    left.set_ylabel(f"reaction of {s['boundary']} (eV/Å)")
    text = f"work of separation: {s['work_of_separation_eV']:.4g} eV"
    if "W_sep_times_area_eV" in s:
        text += (f"\nW_sep x area: {s['W_sep_times_area_eV']:.4g} eV\nlaw's release to "
                 f"{s['final_opening_A']:.3g} Å: {s['law_released_to_final_opening_eV']:.4g} eV")
    right.text(0.97, 0.97, text, transform=right.transAxes, ha="right", va="top", fontsize=9)
    left.legend(loc="upper left", frameon=False, fontsize=8)
    fig.suptitle(f"{case.name}: pull-off under opening control")
    return save_png(fig, path)
