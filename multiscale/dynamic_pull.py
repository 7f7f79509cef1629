"""What happens at the boundaries and interfaces of a ``coupled_dynamics`` run, over time.

Per thermo line, :func:`columns`: the reaction of every displacement boundary (eV/Å, x y z: the
force that holds or moves it, as in the ``coupled`` kind's ``load.csv``) and the mean normal
opening of every interface (Å; over the atoms' sites across it where it runs through the core,
else over the continuum's quadrature points). After a run that moves a boundary of a body with an
interface, :func:`debonding`: the peak force at each end along the pull and when, the energy the
interface took up against ``W_sep`` times its area, when it separated; and :func:`debonding_plot`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

AXES = "xyz"
#: the interface counts as parted once it holds this share of W_sep times its area (UBER: an
#: opening of 4.7 decay lengths, where its traction is 11 % of the peak)
SEPARATED = 0.95


def columns(dynamics, boundaries: tuple[str, ...], interfaces: tuple[str, ...]) -> dict[str, float]:
    """The reactions (eV/Å) of ``boundaries`` and the mean openings (Å) of ``interfaces`` at the
    current state of ``dynamics`` (a :class:`~coupling.dynamics.CoupledDynamics`), on every rank."""
    out = {}
    for name in boundaries:
        force = dynamics.boundary_force(name)
        out.update({f"reaction_{name}_{a}_eV_A": float(force[c]) for c, a in enumerate(AXES)})
    for name in interfaces:
        opening = dynamics.problem.interface_opening_A(name)
        out[f"opening_{name}_A"] = float((opening["atoms"] or opening["continuum"])["mean"])
    return out


def _interface_energy(rows: list[dict], name: str) -> np.ndarray:
    """The interface's energy (eV) at every row: its atoms' share and the continuum's."""
    return np.array([r.get(f"interface_atoms:{name}_eV", 0.0) + r.get(f"interface:{name}_eV", 0.0) for r in rows])


def debonding(rows: list[dict], case, interfaces: dict) -> dict | None:
    """The pull's summary, or None without a velocity load or an interface: along the largest
    component of the first ``[[dynamics.velocity]]``, the force on the moved boundary and on every
    other displacement boundary (eV/Å, positive in tension) with their peaks up to the separation
    and their times (fs); the interface's energy (eV) against ``W_sep`` times its area (on a box
    split at x and pulled along x), the time it parted (its energy at :data:`SEPARATED` of that)
    and the law's peak force (its peak traction times the area, eV/Å) for comparison."""
    from continuum.units import GPa

    if not case.dynamics.velocity or not interfaces or not rows:
        return None
    load = case.dynamics.velocity[0]
    axis = int(np.argmax(np.abs(load.velocity_A_ps)))
    sign = float(np.sign(load.velocity_A_ps[axis]))
    a = AXES[axis]
    t = np.array([r["time_fs"] for r in rows])
    name = next(iter(interfaces))
    law = interfaces[name].law
    energy = _interface_energy(rows, name)
    opening = np.array([r[f"opening_{name}_A"] for r in rows])
    lengths = case.mesh.lengths_A
    boxed = law is not None and lengths is not None and case.mesh.split_x_A is not None and axis == 0
    area = float(lengths[1] * lengths[2]) if boxed else None
    full = float(law.work_of_separation_eV_A2 * area) if boxed else None
    separated = np.nonzero(energy >= SEPARATED * full)[0] if boxed else []
    until = separated[0] + 1 if len(separated) else len(t)  # the peaks before the parts ring freely
    ends = {}
    for b in case.boundary:
        if b.type != "displacement":
            continue
        # the moved boundary pulls along +sign; the others hold the body from the opposite side
        along = sign if b.name == load.boundary else -sign
        force = along * np.array([r[f"reaction_{b.name}_{a}_eV_A"] for r in rows])
        k = int(np.argmax(force[:until]))
        ends[b.name] = {"force_eV_A": force, "peak_eV_A": float(force[k]), "peak_at_fs": float(t[k])}
    out = {"interface": name, "boundary": load.boundary, "axis": a, "time_fs": t, "ends": ends,
           "opening_A": opening, "interface_energy_eV": energy, "final_opening_A": float(opening[-1]),
           "final_interface_energy_eV": float(energy[-1]), "boundary_work_eV": float(rows[-1]["boundary_work_eV"])}
    if not boxed:
        return out
    delta = np.linspace(0.0, max(float(opening.max()), 8 * getattr(law, "length_A", 0.5)), 400)
    sigma = law.evaluate(delta, np.zeros_like(delta))[1]  # eV/Å^3
    out.update({"area_A2": area, "W_sep_times_area_eV": full, "law_peak_force_eV_A": float(area * sigma.max()),
                "law_peak_traction_GPa": float(sigma.max() / GPa), "law_opening_A": delta,
                "law_force_eV_A": area * sigma,
                "separated_at_fs": float(t[separated[0]]) if len(separated) else None,
                "peak_traction_GPa": {k: v["peak_eV_A"] / area / GPa for k, v in ends.items()}})
    return out


def report(summary: dict | None) -> dict | None:
    """The summary's scalars (the time series stay in thermo.csv)."""
    if summary is None:
        return None
    skip = ("time_fs", "opening_A", "interface_energy_eV", "law_opening_A", "law_force_eV_A")
    out = {k: v for k, v in summary.items() if k not in skip}
    out["ends"] = {k: {kk: vv for kk, vv in v.items() if kk != "force_eV_A"} for k, v in summary["ends"].items()}
    return out


def debonding_plot(path: Path, s: dict, name: str) -> Path:
    """Four panels: the forces at the ends against time (with the law's peak force), the mean
    opening against time, the interface's energy against time (with ``W_sep`` times the area), and
    the force at each end against the opening beside the static law (area times traction)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atomistic.plots import save_png

    fig, ((forces, opening), (energy, law)) = plt.subplots(2, 2, figsize=(10.5, 7.0))
    t = s["time_fs"] * 1e-3
    for end, v in s["ends"].items():
        label = f"{end} ({'moved' if end == s['boundary'] else 'held'})"
        forces.plot(t, v["force_eV_A"], label=label)
        law.plot(s["opening_A"], v["force_eV_A"], lw=1, label=label)
    if "law_peak_force_eV_A" in s:
        forces.axhline(s["law_peak_force_eV_A"], color="k", ls="--", lw=1, label="law's peak x area")
        law.plot(s["law_opening_A"], s["law_force_eV_A"], color="k", ls="--", lw=1, label="static law x area")
    forces.set_ylabel(f"force along {s['axis']} (eV/Å, + in tension)")
    opening.plot(t, s["opening_A"], color="tab:green")
    opening.set_ylabel(f"mean opening of {s['interface']} (Å)")
    energy.plot(t, s["interface_energy_eV"], color="tab:red", label="interface energy")
    if "W_sep_times_area_eV" in s:
        energy.axhline(s["W_sep_times_area_eV"], color="k", ls="--", lw=1, label="W_sep x area")
    if s.get("separated_at_fs") is not None:
        for ax in (forces, opening, energy):
            ax.axvline(s["separated_at_fs"] * 1e-3, color="0.6", lw=0.8, ls=":")
    energy.set_ylabel("energy (eV)")
    for ax in (forces, opening, energy):
        ax.set_xlabel("time (ps)")
    law.set_xlabel(f"mean opening of {s['interface']} (Å)")
    law.set_ylabel("force (eV/Å)")
    for ax in (forces, energy, law):
        ax.legend(frameon=False, fontsize=8)
    fig.suptitle(f"{name}: dynamic debonding ({s['boundary']} moved along {s['axis']})")
    fig.tight_layout()
    return save_png(fig, path)
