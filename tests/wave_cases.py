"""Wave transmission through the handshake (the test and the table of ``docs/verification.md``,
"Coupled dynamics: waves through the handshake").

A Cu bar along x, ``width`` unit cells square with free lateral surfaces, its middle atomistic
(a core of free atoms, a 5 Å C1 handshake and a pad on each side), Cauchy-Born continuum beyond,
one hexahedral element per unit cell (``h = a0``), both far ends held. At rest in its reference
state, a longitudinal pulse is launched at the middle of the core, running towards +x at the
bar speed ``c0 = sqrt(E_x / rho)``:

- a *packet*: ``u = A exp(-s^2 / 2 sigma^2) cos(2 pi s / lambda)``, ``sigma = lambda / 2``
  (spectral width about 1/pi of its wavenumber), for ``lambda / h`` = 4, 6, 10, 20;
- a *broadband* pulse: the Gaussian alone with ``sigma = a0 / 2``: its spectrum still holds 29 %
  of its peak amplitude at ``lambda = 2 a0``, two lattice constants, which the mesh (two
  elements) cannot carry.

The core's energy ``E_core(t)`` is twice the free atoms' kinetic energy: in a wave in the
harmonic crystal the kinetic and the potential energy are equal on average (over the window
below). The potential energy of the free atoms alone is no measure of it: their site energies
are not at a minimum at rest (the other half of the bonds to the handshake's atoms is in those
atoms' site energies), so the long waves that the continuum carries past the core's edge move
it linearly. The packet leaves the core through the right handshake; what the handshake
reflects runs back through the core and leaves through the left one. Between the two,
``E_core`` holds the reflected energy alone: the window opens when the incident packet's tail
(3 sigma behind its centre, plus a margin of a cutoff and a handshake) has left at the packet's
group velocity (Love's rod: ``c_g = c0 (1 - 3 nu^2 pi^2 r^2 / lambda^2)``, ``r^2`` the polar
radius of gyration of the section) and closes when the reflection's front (3 sigma ahead) could
reach the left edge at ``c0``. The core is long enough for the window to be open, the continuum
long enough that nothing comes back from the far ends before it closes. The reflection
coefficient is the mean of ``E_core`` over the window divided by ``E_core(0)`` (the range over
the window is reported too: a flat plateau says the window is right).

``python -m tests.wave_cases`` prints the full table (minutes); the CI test runs one packet.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
from ase import units

from tests.coupling_cases import CUTOFF_A, bar_atoms, bar_domain, bar_geometry, cu_crystal, held_ends

#: the margin (Å) beyond the packet's 3 sigma: the cutoff through which the free atoms still feel
#: the handshake's atoms
MARGIN_A = CUTOFF_A + 2.0
#: the bar's section (unit cells)
WIDTH_CELLS = 3
TIMESTEP_FS = 5.0
HANDSHAKE_A = CUTOFF_A


@dataclass(frozen=True)
class Wave:
    """A pulse: ``wavelength_cells`` (None: broadband) and its Gaussian's ``sigma_cells``, both in
    lattice constants (= elements); ``stadium_A`` (0: no absorbing layer) and its time (fs)."""

    wavelength_cells: float | None
    sigma_cells: float
    stadium_A: float = 0.0
    stadium_time_fs: float = 25.0

    @property
    def label(self) -> str:
        kind = f"packet lambda = {self.wavelength_cells:g} h" if self.wavelength_cells else \
            f"broadband, sigma = {self.sigma_cells:g} a0"
        return kind + (f", stadium {self.stadium_A:g} Å / {self.stadium_time_fs:g} fs" if self.stadium_A else "")


def packet(wavelength_cells: float, **kw) -> Wave:
    return Wave(wavelength_cells, wavelength_cells / 2, **kw)


def broadband(**kw) -> Wave:
    return Wave(None, 0.5, **kw)


def bar_constants(material, a0: float, width_cells: int | None = None) -> dict:
    """The bar speed c0 (Å/fs per (amu/Å^3)^-1/2 given the density later), Poisson's ratio and the
    polar radius of gyration (Å^2) of the section."""
    S = np.linalg.inv(material.tensor.C)
    width = (width_cells or WIDTH_CELLS) * a0
    return {"E_GPa": 1.0 / S[0, 0], "nu": -S[0, 1] / S[0, 0], "r2_A2": width**2 / 6.0}


def setting(model, wave: Wave) -> dict:
    """The bar, the speed, the window and the pulse's amplitude for ``wave``."""
    from coupling.dynamics import crystal_density_amu_A3
    from coupling.dynamics_settings import lateral_ratios, wave_speed_A_fs

    material, a0 = cu_crystal(model)
    bar = bar_constants(material, a0)
    density = crystal_density_amu_A3(63.546, "fcc", a0)
    c0 = wave_speed_A_fs(material.tensor.C, density, wave="bar")  # Å/fs
    sigma = wave.sigma_cells * a0
    if wave.wavelength_cells is None:
        ratio = 0.6  # group velocity of the slowest components that carry energy (lambda ~ 2 a0, the lattice's)
    else:
        lam = wave.wavelength_cells * a0
        ratio = max(1.0 - 3 * bar["nu"] ** 2 * np.pi**2 * bar["r2_A2"] / lam**2, 0.5)
    tail = 3 * sigma + MARGIN_A
    # the window opens at (L/2 + tail) / (ratio c0) and closes at (3L/2 - tail) / c0
    core_A = 1.15 * tail * (1 / ratio + 1) / (1.5 - 0.5 / ratio)
    core_cells = int(np.ceil(core_A / a0))
    geometry = bar_geometry(a0, handshake_A=HANDSHAKE_A, width_cells=WIDTH_CELLS, core_cells=core_cells,
                            continuum_cells=int(np.ceil(0.75 * core_cells)) + 4)
    hs = geometry.handshake
    free_lo, free_hi = hs.lower_A[0] + hs.width_A, hs.upper_A[0] - hs.width_A
    core = free_hi - free_lo
    return {"material": material, "a0": a0, "density": density, "c0": c0, "sigma": sigma, "ratio": ratio,
            "geometry": geometry, "free": (free_lo, free_hi), "core": core,
            "window": ((core / 2 + tail) / (ratio * c0), (1.5 * core - tail) / c0),
            "amplitude": 0.01 * (wave.wavelength_cells or 1.0) * a0 / (2 * np.pi),  # a strain of about 1 %
            "wavelength": None if wave.wavelength_cells is None else wave.wavelength_cells * a0,
            "lateral": lateral_ratios(material.tensor.C)}


def reflection(model, wave: Wave, *, comm=None, log=print) -> dict:
    """Launch ``wave`` in the bar and measure the energy in the core in the window."""
    from mpi4py import MPI

    from coupling.dynamics import CoupledDynamics, Pulse, Stadium
    from coupling.problem import CoupledProblem

    comm = comm or MPI.COMM_WORLD
    st = setting(model, wave)
    material, density, c0, sigma = st["material"], st["density"], st["c0"], st["sigma"]
    geometry, (free_lo, free_hi), core = st["geometry"], st["free"], st["core"]
    hs, (opens, closes) = geometry.handshake, st["window"]
    problem = CoupledProblem(bar_domain(comm, geometry), {"body1": material}, bar_atoms(geometry), model, hs,
                             bcs=held_ends())
    problem.solve(1)
    stadium = Stadium(wave.stadium_A, wave.stadium_time_fs) if wave.stadium_A else None
    dynamics = CoupledDynamics(problem, density, TIMESTEP_FS, stadium=stadium, check_stability=False)
    centre = 0.5 * (free_lo + free_hi)
    dynamics.launch(Pulse(0, centre, sigma, st["amplitude"], st["wavelength"], lateral=st["lateral"],
                          lateral_centre_A=(0.0, geometry.width / 2, geometry.width / 2)), c0)

    region = problem.region
    in_core = np.repeat(region.X[region.free][:, 0] <= free_hi, 3)
    mass = dynamics.mass.array_r[problem.n_fe:]

    def core_energy() -> float:  # twice the free atoms' kinetic energy (see the module's documentation)
        v = dynamics.v.array_r[problem.n_fe:]
        return float(np.dot(mass[in_core], v[in_core] ** 2))

    e0 = core_energy()
    times, energies = [0.0], [e0]
    steps = int(np.ceil(1.05 * closes / TIMESTEP_FS))
    t0 = time.perf_counter()
    while dynamics.steps_done < steps:
        dynamics.run(10)
        times.append(dynamics.time_fs)
        energies.append(core_energy())
    times, energies = np.array(times), np.array(energies) / e0
    inside = (times >= opens) & (times <= closes)
    out = {"wave": wave.label, "lambda_over_h": wave.wavelength_cells, "atoms": problem.regions(),
           "core_A": core, "speed_A_fs": c0, "group_ratio": st["ratio"], "window_fs": (opens, closes),
           "reflected": float(energies[inside].mean()), "reflected_range": (float(energies[inside].min()),
                                                                             float(energies[inside].max())),
           "absorbed": dynamics.energies()["bath"] / e0, "incident_eV": e0, "steps": steps,
           "seconds": time.perf_counter() - t0, "times_fs": times, "core_energy": energies}
    log(f"{out['wave']}: reflected {out['reflected']:.3g} (window {opens:.0f}-{closes:.0f} fs: "
        f"{out['reflected_range'][0]:.3g} .. {out['reflected_range'][1]:.3g}), {problem.regions()}, "
        f"{steps} steps in {out['seconds']:.0f} s")
    return out


def atomistic_reference(model, wave: Wave, *, log=print) -> dict:
    """The same pulse in a fully atomistic wire of the same section (ASE's VelocityVerlet on our
    calculator; relaxed; periodic along the bar, three cores long, so nothing reflects in time):
    the energy in the same stretch of wire over the same window. What the wire itself leaves
    behind there (lateral modes that the initial state excites and that travel slowly) is not the
    handshake's doing; the handshake's reflection is the coupled run's excess over this."""
    from ase.build import bulk
    from ase.md.verlet import VelocityVerlet
    from ase.optimize import FIRE

    from atomistic.calculator import NNPCalculator
    from coupling.dynamics import Pulse

    st = setting(model, wave)
    a0, core, (opens, closes) = st["a0"], st["core"], st["window"]
    atoms = bulk("Cu", "fcc", a=a0, cubic=True).repeat((int(np.ceil(3 * core / a0)), WIDTH_CELLS, WIDTH_CELLS))
    atoms.translate((0.0, a0 / 4, a0 / 4))
    atoms.set_pbc((True, False, False))
    atoms.calc = NNPCalculator(model)
    FIRE(atoms, logfile=None).run(fmax=2e-3, steps=3000)
    X = atoms.get_positions()
    pulse = Pulse(0, core / 2, st["sigma"], st["amplitude"], st["wavelength"], lateral=st["lateral"],
                  lateral_centre_A=(0.0, X[:, 1].mean(), X[:, 2].mean()))
    u, v = pulse.fields(X, st["c0"])
    atoms.set_positions(X + u)
    atoms.set_velocities(v / units.fs)
    inside, m = (X[:, 0] >= 0) & (X[:, 0] <= core), atoms.get_masses()

    def energy() -> float:
        return float((m[inside] * (atoms.get_velocities()[inside] ** 2).sum(1)).sum())

    e0, t, samples = energy(), 0.0, []
    dynamics = VelocityVerlet(atoms, TIMESTEP_FS * units.fs)
    t0 = time.perf_counter()
    while t < closes:
        dynamics.run(10)
        t += 10 * TIMESTEP_FS
        if t >= opens:
            samples.append(energy() / e0)
    out = {"wave": wave.label, "left_behind": float(np.mean(samples)), "atoms": len(atoms),
           "seconds": time.perf_counter() - t0}
    log(f"{wave.label}, fully atomistic wire of {len(atoms)} atoms: {out['left_behind']:.3g} left behind")
    return out


ALL = (packet(4), packet(6), packet(10), packet(20), packet(10, stadium_A=5.0), broadband(),
       broadband(stadium_A=5.0))


def main(argv: list[str]) -> None:
    from atomistic import load_potential
    from tests.conftest import SHIPPED_MODEL

    model = load_potential(SHIPPED_MODEL)
    waves = [w for w in ALL if len(argv) < 3 or w.label in argv[2:]]
    rows = [{**reflection(model, w), **atomistic_reference(model, w)} for w in waves]
    print("\n| pulse | atoms (free / handshake / pad) | core (Å) | coupled: in the core (window range) | fully "
          "atomistic: left behind | reflected by the handshake | taken out by the stadium |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        a = r["atoms"]
        print(f"| {r['wave']} | {a['free']} / {a['handshake']} / {a['pad']} | {r['core_A']:.0f} | "
              f"{r['reflected']:.2e} ({r['reflected_range'][0]:.1e} .. {r['reflected_range'][1]:.1e}) | "
              f"{r['left_behind']:.2e} | {r['reflected'] - r['left_behind']:.1e} | {r['absorbed']:.3f} |")
    if len(argv) > 1:
        plot(rows, argv[1])


def plot(rows: list[dict], path: str) -> None:
    """The core's energy against time for every pulse, and the reflected energy against lambda / h."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (history, curve) = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in rows:
        history.semilogy(r["times_fs"], np.maximum(r["core_energy"], 1e-6), label=r["wave"], lw=1)
    history.set_xlabel("time (fs)")
    history.set_ylabel("E_core(t) / E_core(0)")
    history.legend(fontsize=7, frameon=False)
    packets = [r for r in rows if r["lambda_over_h"] and "stadium" not in r["wave"]]
    curve.loglog([r["lambda_over_h"] for r in packets], [r["reflected"] for r in packets], "o-", label="no absorption")
    for r in rows:
        if "stadium" in r["wave"] and r["lambda_over_h"]:
            curve.loglog([r["lambda_over_h"]], [r["reflected"]], "s", label=r["wave"])
    curve.axhline(1e-2, color="k", lw=0.8, ls="--", label="1 %")
    curve.set_xlabel("lambda / h")
    curve.set_ylabel("reflected / incident energy")
    curve.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main(sys.argv)
