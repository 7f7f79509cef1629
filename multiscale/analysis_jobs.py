"""The ``vibrations`` and ``reaction`` cases.

vibrations -> relaxed.extxyz, frequencies.csv (cm^-1, imaginary negative), spectrum.png, report.json
reaction   -> neb.extxyz (band), saddle.extxyz, irc.extxyz + irc.png (energy vs arc length),
              rates.csv + arrhenius.png (harmonic TST; with an ensemble, the members and a
              confidence band), report.json
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from atomistic.atomic_files import write_csv, write_text as _write_text
from atomistic.ensemble import Ensemble
from atomistic.io import load_potential
from atomistic.irc import irc, irc_plot, write_irc
from atomistic.md.output import write_atoms
from atomistic.optimize import relax
from atomistic.rates import arrhenius_plot, committee_rates, htst_rate
from atomistic.saddle import neb, refine_saddle
from atomistic.vibrations import normal_modes, spectrum_plot

from .config import ReactionCase, VibrationsCase
from .schema import CaseError
from .structures import build_structures

log = logging.getLogger(__name__)


def run_vibrations(case: VibrationsCase, case_dir: Path, out: Path, *, resume: bool = False,
                   progress: bool = True) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    model = load_potential(case_dir / case.potential.path, device=case.potential.device)
    atoms = build_structures(case.structure, case_dir)[0]
    report = {"name": case.name}
    if case.relax.enabled:
        r = relax(model, atoms, fmax=case.relax.fmax, cell=case.relax.cell, max_steps=case.relax.max_steps,
                  progress=progress)
        atoms = r.atoms[0]
        report["relax"] = {"converged": r.converged[0], "max_force_eV_A": r.max_force[0], "steps": r.steps,
                           "energy_eV": r.energies[0]}
    write_atoms(out / "relaxed.extxyz", [atoms])
    modes = normal_modes(model, atoms)
    write_csv(out / "frequencies.csv", ["mode", "frequency_cm-1"],
         [(k, f"{f:.4f}") for k, f in enumerate(modes.frequencies_cm)])
    spectrum_plot(out / "spectrum.png", modes, title=case.name)
    report.update(n_modes=len(modes.frequencies_cm), rigid_modes_removed=modes.n_rigid,
                  n_imaginary=modes.n_imaginary(), frequencies_cm=modes.frequencies_cm.tolist())
    log.info("%s: %d modes, highest %.1f cm^-1, %d imaginary", case.name, len(modes.frequencies_cm),
             modes.frequencies_cm.max(), modes.n_imaginary())
    _write_text(out / "report.json", json.dumps(report, indent=2))
    return report


def _endpoints(case: ReactionCase, case_dir: Path) -> tuple[Atoms, Atoms]:
    e = case.endpoints
    if e.recipe == "cu_adatom_hop":
        from atomistic.recipes.cu_emt import adatom_hop_images, emt_lattice_constant

        band = adatom_hop_images(emt_lattice_constant(), n_images=3)
        return band[0], band[-1]
    ends = []
    for key in ("initial", "final"):
        path = case_dir / getattr(e, key)
        if not path.is_file():
            raise CaseError(f"endpoints.{key}: {path} not found")
        ends.append(read(path))
    if len(ends[0]) != len(ends[1]) or ends[0].get_chemical_symbols() != ends[1].get_chemical_symbols():
        raise CaseError("endpoints: initial and final must hold the same atoms in the same order")
    return ends[0], ends[1]


def run_reaction(case: ReactionCase, case_dir: Path, out: Path, *, resume: bool = False,
                 progress: bool = True) -> dict:
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    model = load_potential(case_dir / case.potential.path, device=case.potential.device)
    initial, final = _endpoints(case, case_dir)
    band = neb(model, initial, final, n_images=case.neb.n_images, spring_eV_A2=case.neb.spring_eV_A2,
               fmax=case.neb.fmax, max_steps=case.neb.max_steps)
    write_atoms(out / "neb.extxyz", band.images)
    log.info("NEB: barrier %.4f eV forward, %.4f eV backward (%d steps)", band.barrier_forward_eV,
             band.barrier_backward_eV, band.steps)
    saddle = refine_saddle(model, band.images[band.saddle_index], fmax=case.saddle.fmax,
                           max_steps=case.saddle.max_steps, guess=band.tangent)
    write_atoms(out / "saddle.extxyz", [saddle.atoms])
    report = {"name": case.name, "neb": {"barrier_forward_eV": band.barrier_forward_eV,
                                         "barrier_backward_eV": band.barrier_backward_eV, "steps": band.steps,
                                         "converged": band.converged, "energies_eV": band.energies.tolist()},
              "saddle": {"energy_eV": saddle.energy, "max_force_eV_A": saddle.max_force,
                         "imaginary_frequency_cm": float(saddle.modes.frequencies_cm[0]),
                         "barrier_eV": saddle.energy - float(band.energies[0])}}
    minimum = band.images[0]  # the relaxed initial state: the reactant of the forward rate
    if case.irc.enabled:
        path = irc(model, saddle.atoms, step=case.irc.step, fmax=case.irc.fmax, modes=saddle.modes)
        write_irc(out / "irc.extxyz", path)
        irc_plot(out / "irc.png", path, title=f"{case.name}: IRC")
        report["irc"] = {"points": len(path.energies), "arc_length_amu05_A": [float(path.arc_length[0]),
                                                                             float(path.arc_length[-1])],
                         "minimum_energies_eV": path.minimum_energies}
    t = np.asarray(case.rates.temperatures_K)
    if isinstance(model, Ensemble):
        rates = committee_rates(model, minimum, saddle.atoms, t, quantum=case.rates.quantum,
                                confidence=case.rates.confidence)
        arrhenius_plot(out / "arrhenius.png", rates, title=f"{case.name}: harmonic TST")
        rows = [(f"{tk:g}", f"{k:.6e}", f"{lo:.6e}", f"{hi:.6e}")
                for tk, k, lo, hi in zip(t, rates.rate, rates.lower, rates.upper)]
        write_csv(out / "rates.csv", ["temperature_K", "rate_per_s", "lower_per_s", "upper_per_s"], rows)
        report["rates"] = rates.as_dict()
    else:
        nu_r = normal_modes(model, minimum).frequencies_cm
        k = htst_rate(t, report["saddle"]["barrier_eV"], nu_r, saddle.modes.frequencies_cm, quantum=case.rates.quantum)
        write_csv(out / "rates.csv", ["temperature_K", "rate_per_s"], [(f"{tk:g}", f"{kk:.6e}") for tk, kk in zip(t, k)])
        report["rates"] = {"temperatures_K": t.tolist(), "rate_per_s": k.tolist(), "quantum": case.rates.quantum}
    report["wall_s"] = time.perf_counter() - t0
    _write_text(out / "report.json", json.dumps(report, indent=2))
    return report

