"""Wave transmission through the handshake (the test and the table of ``docs/verification.md``,
"Waves through the handshake").

A Cu bar along x, ``width_cells`` unit cells square with free lateral surfaces, its middle
atomistic (a core of free atoms, a C1 handshake of 5 or 10 Å and a pad on each side), the
Cauchy-Born continuum beyond, one hexahedral element per unit cell (``h = a0``), both far ends
held; the atoms at the free-standing wire's rest positions. At rest, a longitudinal pulse (with
its Poisson contraction: Love's rod) is launched at the middle of the core, running towards +x
at the bar speed ``c0 = sqrt(E_x / rho)``:

- a *packet*: ``u = A exp(-s^2 / 2 sigma^2) cos(2 pi s / lambda)``, ``sigma = lambda / 2``
  (spectral width about 1/pi of its wavenumber), for ``lambda / h`` = 4, 6, 10, 20;
- a *broadband* pulse: the Gaussian alone with ``sigma = a0 / 2``: its spectrum still holds 29 %
  of its peak amplitude at ``lambda = 2 a0``, two lattice constants, which the mesh (two
  elements) cannot carry.

**What is reflected is measured as a difference, not as what is left.** The same pulse runs in a
fully atomistic wire of the same section (relaxed, periodic along the bar, long enough that
nothing comes round in time; our MD engine, the same time step), its sites matched one to one to
the coupled core's free atoms. Until the packet reaches the handshake the two runs are the same
motion; afterwards their difference in the core is what the handshake sent back, and nothing
else: the wire's own slow lateral modes, which the initial state excites in both, cancel. The
reflected energy is twice the kinetic energy of the difference (in a travelling wave of the
harmonic crystal the kinetic and the potential energy are equal on average),
``sum_i m_i |v_i - v_i^ref|^2`` over the free atoms (outside the stadium's layers when there is
one: it also damps the wire's own modes there, which the reference keeps), over the incident
energy ``sum_i m_i |v_i(0)|^2``. It is averaged over a window that opens when the incident
packet's tail (3 sigma behind its centre, plus a margin of a handshake and a cutoff) has left
the core at the packet's group velocity (Love's rod: ``c_g = c0 (1 - 3 nu^2 pi^2 r^2 /
lambda^2)``, ``r^2`` the polar radius of gyration of the section), so that the reflection is
complete, and closes when the reflection's front (3 sigma ahead) could reach the core's left
edge (its stadium layer) at ``c0``, so that none of it has left. The range over the window is
reported too: a flat plateau says the window is right.

``E_core``, twice the free atoms' own kinetic energy, is reported beside it: in a thick bar it
would be the reflection; in these wires it also holds what the wire leaves behind.

``python -m tests.wave_cases [plot.png] [labels...]`` prints the table (``ALL``, or the pulses
labelled; tens of minutes) and draws it (the rows beside it as JSON); the CI test runs one packet
and the broadband pulse through the stadium.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import units

from tests.coupling_cases import (
    CUTOFF_A,
    bar_atoms,
    bar_domain,
    bar_geometry,
    cu_crystal,
    held_ends,
    lattice_keys,
    relaxed_wire,
    wire_atoms,
)

TIMESTEP_FS = 10.0  # a sixteenth of the shortest period the mesh carries (2 h / c_L, about 160 fs)
SAMPLE_FS = 100.0  # time between samples
HANDSHAKE_A = CUTOFF_A


@dataclass(frozen=True)
class Wave:
    """A pulse: ``wavelength_cells`` (None: broadband) and its Gaussian's ``sigma_cells``, both in
    lattice constants (= elements); ``stadium_A`` (0: no absorbing layer) and its time (fs); the
    bar's section ``width_cells`` (unit cells square) and its handshake (Å); the ghost-force
    correction, and the atoms at the wire's rest positions (``relaxed``) or at the bulk lattice."""

    wavelength_cells: float | None
    sigma_cells: float
    stadium_A: float = 0.0
    stadium_time_fs: float = 25.0
    width_cells: int = 3
    handshake_A: float = HANDSHAKE_A
    ghost_force_correction: bool = True
    relaxed: bool = True
    timestep_fs: float = TIMESTEP_FS

    @property
    def sample_every(self) -> int:
        """Steps between samples."""
        return max(1, int(round(SAMPLE_FS / self.timestep_fs)))

    @property
    def label(self) -> str:
        parts = [f"packet lambda = {self.wavelength_cells:g} h" if self.wavelength_cells else
                 f"broadband, sigma = {self.sigma_cells:g} a0",
                 f"{self.width_cells} x {self.width_cells} a0", f"handshake {self.handshake_A:g} Å"]
        if self.stadium_A:
            parts.append(f"stadium {self.stadium_A:g} Å / {self.stadium_time_fs:g} fs")
        if not self.ghost_force_correction:
            parts.append("uncorrected")
        if not self.relaxed:
            parts.append("at the bulk lattice")
        if self.timestep_fs != TIMESTEP_FS:
            parts.append(f"{self.timestep_fs:g} fs steps")
        return ", ".join(parts)


def packet(wavelength_cells: float, **kw) -> Wave:
    return Wave(wavelength_cells, wavelength_cells / 2, **kw)


def broadband(**kw) -> Wave:
    return Wave(None, 0.5, **kw)


def setting(model, wave: Wave) -> dict:
    """The bar, the speed, the window and the pulse's amplitude for ``wave``."""
    from coupling.dynamics import crystal_density_amu_A3
    from coupling.dynamics_settings import lateral_ratios, wave_speed_A_fs

    material, a0 = cu_crystal(model)
    lateral = lateral_ratios(material.tensor.C)
    nu, r2 = -lateral[1], (wave.width_cells * a0) ** 2 / 6.0  # Poisson's ratio; polar radius of gyration
    density = crystal_density_amu_A3(63.546, "fcc", a0)
    c0 = wave_speed_A_fs(material.tensor.C, density, wave="bar")  # Å/fs
    sigma = wave.sigma_cells * a0
    if wave.wavelength_cells is None:
        ratio = 0.6  # group velocity of the slowest components that carry energy (lambda ~ 2 a0, the lattice's)
    else:
        ratio = max(1.0 - 3 * nu**2 * np.pi**2 * r2 / (wave.wavelength_cells * a0) ** 2, 0.5)
    tail = 3 * sigma + wave.handshake_A + CUTOFF_A  # until the tail has crossed the handshake and a cutoff
    # the window opens at (L/2 + tail) / (ratio c0) and closes at (3L/2 - tail - stadium) / c0
    core_A = 1.15 * (tail * (1 / ratio + 1) + wave.stadium_A) / (1.5 - 0.5 / ratio)
    core_cells = int(np.ceil(core_A / a0))
    geometry = bar_geometry(a0, handshake_A=wave.handshake_A, width_cells=wave.width_cells, core_cells=core_cells,
                            continuum_cells=int(np.ceil(0.75 * core_cells)) + 4)
    hs = geometry.handshake
    free_lo, free_hi = hs.lower_A[0] + hs.width_A, hs.upper_A[0] - hs.width_A
    core = free_hi - free_lo
    return {"material": material, "a0": a0, "density": density, "c0": c0, "sigma": sigma, "ratio": ratio,
            "geometry": geometry, "free": (free_lo, free_hi), "core": core, "tail": tail,
            "window": ((core / 2 + tail) / (ratio * c0), (1.5 * core - tail - wave.stadium_A) / c0),
            "amplitude": 0.01 * (wave.wavelength_cells or 1.0) * a0 / (2 * np.pi),  # a strain of about 1 %
            "wavelength": None if wave.wavelength_cells is None else wave.wavelength_cells * a0,
            "lateral": lateral}


def _pulse(st: dict, centre_A: float, width_A: float):
    from coupling.dynamics import Pulse

    return Pulse(0, centre_A, st["sigma"], st["amplitude"], st["wavelength"], lateral=st["lateral"],
                 lateral_centre_A=(0.0, width_A / 2, width_A / 2))


def coupled_run(model, wave: Wave, st: dict, *, comm=None) -> dict:
    """Launch ``wave`` in the coupled bar; the free atoms' sites (Å, lattice), masses and velocities
    (Å per ASE time unit) every ``SAMPLE_FS`` up to the window's end."""
    from mpi4py import MPI

    from coupling.dynamics import CoupledDynamics, Stadium
    from coupling.problem import CoupledProblem

    geometry = st["geometry"]
    # the wire's own rest state, so that the reference configuration is at rest (or the lattice)
    atoms = wire_atoms(geometry, model) if wave.relaxed else bar_atoms(geometry)
    problem = CoupledProblem(bar_domain(comm or MPI.COMM_SELF, geometry), {"body1": st["material"]},
                             atoms, model, geometry.handshake, bcs=held_ends(),
                             ghost_force_correction=wave.ghost_force_correction)
    # Newton's linear solves to 1e-6 (its own tolerance, 1e-6 eV/Å, unchanged): at the default 1e-8
    # GMRES on the finite-difference Jacobian stalls on the 750 Å wire of lambda = 20 h
    problem.snes.getKSP().setTolerances(rtol=1e-6)
    problem.solve(1)
    region = problem.region
    sites = region.X[region.free]
    moved = problem.atoms().positions[region.free] - sites
    middle = np.abs(sites[:, 0] - 0.5 * sum(st["free"])) < st["core"] / 4
    prestrain = np.polyfit(sites[middle, 0], moved[middle, 0], 1)[0]
    stadium = Stadium(wave.stadium_A, wave.stadium_time_fs) if wave.stadium_A else None
    dynamics = CoupledDynamics(problem, st["density"], wave.timestep_fs, stadium=stadium, check_stability=False)
    dynamics.launch(_pulse(st, 0.5 * sum(st["free"]), geometry.width), st["c0"])
    steps = int(np.ceil(1.05 * st["window"][1] / wave.timestep_fs))
    t0 = time.perf_counter()
    samples = [dynamics.v.array_r[problem.n_fe:].reshape(-1, 3).copy()]
    while dynamics.steps_done < steps:
        dynamics.run(wave.sample_every)
        samples.append(dynamics.v.array_r[problem.n_fe:].reshape(-1, 3).copy())
    return {"sites": sites, "prestrain": prestrain, "masses": region.masses[region.free],
            "velocities": np.array(samples), "atoms": problem.regions(), "steps": steps,
            "absorbed_eV": dynamics.energies()["bath"], "seconds": time.perf_counter() - t0}


def atomistic_run(model, wave: Wave, st: dict, sites: np.ndarray, prestrain: float, samples: int) -> dict:
    """The same pulse in a fully atomistic wire of the same section (our MD engine, NVE, the same
    time step), stretched as the coupled core is at rest (``prestrain``: 1e-6 with the atoms at
    the wire's rest positions, 2 to 4 % at the bulk lattice): the velocities (Å per ASE time unit)
    of the atoms at ``sites`` (the coupled core's reference positions, Å, each within an eighth of
    a cell of its lattice site) at the coupled run's samples."""
    from atomistic.md import MDSettings, MolecularDynamics

    a0, centre = st["a0"], 0.5 * sum(st["free"])
    # long enough that the packet's front (up to 1.3 c0) cannot come round into the core in time
    reach = 1.3 * st["c0"] * st["window"][1] + st["tail"] + st["core"] / 2
    cells = 2 * int(np.ceil((reach + st["core"] / 2) / (2 * a0)))
    wire, lattice = relaxed_wire(model, a0, wave.width_cells, cells, prestrain)
    shift = (np.round(centre / a0) - cells // 2) * a0  # the wire's sites on the coupled bar's lattice
    lattice[:, 0] += shift
    wire.positions[:, 0] += shift * (1.0 + prestrain)
    wire.cell[0, 0] = cells * a0 * (1.0 + prestrain)
    stretched = lattice.copy()
    stretched[:, 0] *= 1.0 + prestrain
    material = lattice + (wire.positions - stretched if wave.relaxed else 0.0)  # the coupled run's X
    u, v = _pulse(st, centre, wave.width_cells * a0).fields(material, st["c0"])
    wire.set_positions(wire.get_positions() + u)
    wire.set_velocities(v / units.fs)
    key = {k: i for i, k in enumerate(lattice_keys(lattice, a0))}
    index = np.array([key[k] for k in lattice_keys(sites, a0)])
    every = wave.sample_every
    settings = MDSettings(ensemble="nve", steps=0, timestep_fs=wave.timestep_fs, log_every=0, trajectory_every=0,
                          checkpoint_every=0, check_every=every)
    md = MolecularDynamics(model, wire, settings, device="cpu")
    masses = md.system.masses
    velocities = {0: (md.state.momenta / masses).numpy()[index]}
    t0 = time.perf_counter()
    for state in md.irun((samples - 1) * every):
        if state.step % every == 0:
            velocities[state.step] = (state.momenta / masses).numpy()[index]
    return {"velocities": np.array([velocities[k * every] for k in range(samples)]), "wire_atoms": len(wire),
            "seconds": time.perf_counter() - t0}


def reflection(model, wave: Wave, *, comm=None, log=print) -> dict:
    """Launch ``wave`` in the coupled bar and in the atomistic wire; the energy the handshake sends
    back into the core over the incident (see the module's documentation)."""
    st = setting(model, wave)
    coupled = coupled_run(model, wave, st, comm=comm)
    reference = atomistic_run(model, wave, st, coupled["sites"], coupled["prestrain"], len(coupled["velocities"]))
    # outside the stadium's layers, which also damp the wire's own modes (not a reflection)
    x = coupled["sites"][:, 0]
    kept = (x - st["free"][0] >= wave.stadium_A) & (st["free"][1] - x >= wave.stadium_A)
    m = coupled["masses"][None, kept, None]
    v, v_ref = coupled["velocities"][:, kept], reference["velocities"][:, kept]
    incident = float((m[0] * v[0] ** 2).sum())
    reflected = (m * (v - v_ref) ** 2).sum(axis=(1, 2)) / incident
    core_energy = (m * v**2).sum(axis=(1, 2)) / incident
    times = np.arange(len(v)) * wave.sample_every * wave.timestep_fs
    opens, closes = st["window"]
    inside = (times >= opens) & (times <= closes)
    out = {"wave": wave.label, "lambda_over_h": wave.wavelength_cells, "width_cells": wave.width_cells,
           "handshake_A": wave.handshake_A, "stadium": bool(wave.stadium_A), "atoms": coupled["atoms"],
           "prestrain": coupled["prestrain"], "wire_atoms": reference["wire_atoms"], "core_A": st["core"],
           "speed_A_fs": st["c0"], "group_ratio": st["ratio"], "window_fs": (opens, closes),
           "reflected": float(reflected[inside].mean()),
           "reflected_range": (float(reflected[inside].min()), float(reflected[inside].max())),
           "core_energy_in_window": float(core_energy[inside].mean()), "absorbed": coupled["absorbed_eV"] / incident,
           "incident_eV": incident, "steps": coupled["steps"], "seconds": (coupled["seconds"], reference["seconds"]),
           "times_fs": times, "reflected_t": reflected, "core_energy_t": core_energy}
    low, high = out["reflected_range"]
    log(f"{out['wave']}: reflected {out['reflected']:.3g} (window {opens:.0f}-{closes:.0f} fs: {low:.3g} .. "
        f"{high:.3g}); E_core {out['core_energy_in_window']:.3g}; absorbed {out['absorbed']:.3g}; "
        f"{coupled['atoms']}, wire {reference['wire_atoms']} atoms; {coupled['steps']} steps in "
        f"{coupled['seconds']:.0f} s + {reference['seconds']:.0f} s")
    return out


#: the table of docs/verification.md
ALL = (packet(4), packet(6), packet(10), packet(20), packet(6, handshake_A=10.0), packet(10, handshake_A=10.0),
       packet(20, handshake_A=10.0), broadband(),
       broadband(stadium_A=5.0, stadium_time_fs=50.0), broadband(handshake_A=10.0),
       broadband(handshake_A=10.0, stadium_A=10.0, stadium_time_fs=50.0), packet(10, width_cells=2))


def main(argv: list[str]) -> None:
    from atomistic import load_potential
    from tests.conftest import SHIPPED_MODEL

    model = load_potential(SHIPPED_MODEL)
    plot_path = argv[1] if len(argv) > 1 and argv[1].endswith(".png") else None
    labels = argv[2 if plot_path else 1:]
    rows = [reflection(model, w) for w in ALL if not labels or w.label in labels]
    print("\n| pulse | atoms (free / handshake / pad) | wire atoms | core (Å) | reflected (window range) | "
          "E_core | taken out by the stadium | seconds (coupled + wire) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        a, (low, high), (coupled_s, wire_s) = r["atoms"], r["reflected_range"], r["seconds"]
        print(f"| {r['wave']} | {a['free']} / {a['handshake']} / {a['pad']} | {r['wire_atoms']} | {r['core_A']:.0f} | "
              f"{r['reflected']:.2e} ({low:.1e} .. {high:.1e}) | {r['core_energy_in_window']:.3f} | "
              f"{r['absorbed']:.3f} | {coupled_s:.0f} + {wire_s:.0f} |")
    if plot_path:
        plot(rows, plot_path)
        scalars = [{k: v for k, v in r.items() if not isinstance(v, np.ndarray)} for r in rows]
        text = json.dumps(scalars, indent=1, default=lambda o: o.item())
        Path(plot_path).with_suffix(".json").write_text(text + "\n")


def plot(rows: list[dict], path: str) -> None:
    """The reflected energy against time for every pulse, and against lambda / h."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (history, curve) = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in rows:
        line, = history.semilogy(r["times_fs"], np.maximum(r["reflected_t"], 1e-7), label=r["wave"], lw=1)
        history.axvspan(*r["window_fs"], color=line.get_color(), alpha=0.08)
    history.set_xlabel("time (fs)")
    history.set_ylabel("reflected / incident energy in the core")
    history.legend(fontsize=7, frameon=False, loc="lower right")
    curves: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["lambda_over_h"] and not r["stadium"]:
            curves.setdefault((r["width_cells"], r["handshake_A"]), []).append(r)
    for (width, handshake), group in sorted(curves.items()):
        group.sort(key=lambda r: r["lambda_over_h"])
        curve.loglog([r["lambda_over_h"] for r in group], [r["reflected"] for r in group], "o-",
                     label=f"packets, wire {width} x {width} a0, handshake {handshake:g} Å")
    for r in rows:
        if not r["lambda_over_h"] or r["stadium"]:
            curve.loglog([r["lambda_over_h"] or 2.0], [r["reflected"]], "s" if r["stadium"] else "^", label=r["wave"])
    curve.axhline(1e-2, color="k", lw=0.8, ls="--", label="1 %")
    curve.set_xlabel("lambda / h (broadband: plotted at its shortest wavelength, 2 h)")
    curve.set_ylabel("reflected / incident energy")
    curve.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main(sys.argv)
