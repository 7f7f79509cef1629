"""kind = "reaction": NEB -> refined saddle (one imaginary mode) -> IRC -> harmonic TST rates.

Outputs: neb.extxyz (band), saddle.extxyz, irc.extxyz + irc.png (energy vs arc length), rates.csv +
arrhenius.png (with a committee: the members and a confidence band), report.json.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from ase import Atoms
from ase.io import read

from atomistic.analysis.irc import irc, irc_plot, write_irc
from atomistic.analysis.rates import arrhenius_plot, committee_rates, htst_rate
from atomistic.analysis.saddle import neb, refine_saddle
from atomistic.analysis.vibrations import normal_modes
from atomistic.potential.committee import Committee
from atomistic.potential.io import load_potential

from ..common import PotentialConfig, RunOutputConfig
from ..outputs import Report, write_csv, write_extxyz
from ..schema import CaseError
from . import Kind, RunContext

log = logging.getLogger(__name__)


def _cu_adatom_hop() -> tuple[Atoms, Atoms]:
    from atomistic.recipes.cu_emt import adatom_hop_images, emt_lattice_constant

    band = adatom_hop_images(emt_lattice_constant(), n_images=3)
    return band[0], band[-1]


#: built-in endpoint pairs, by the name ``[endpoints] recipe`` gives
ENDPOINT_RECIPES = {"cu_adatom_hop": _cu_adatom_hop}


@dataclass(frozen=True)
class EndpointsConfig:
    """The two minima: ``initial`` and ``final`` files (relative to the case file, same atoms in
    the same order), or a built-in ``recipe`` ("cu_adatom_hop": a Cu adatom between two hollow
    sites of Cu(100), bottom layer fixed)."""

    recipe: str | None = None
    initial: str | None = None
    final: str | None = None

    def __post_init__(self):
        if self.recipe is not None:
            if self.initial is not None or self.final is not None:
                raise ValueError("endpoints: give either 'recipe' or both 'initial' and 'final'")
            if self.recipe not in tuple(ENDPOINT_RECIPES):
                raise ValueError(f"endpoints.recipe must be one of {tuple(ENDPOINT_RECIPES)}, got {self.recipe!r}")
        elif self.initial is None or self.final is None:
            raise ValueError("endpoints: give either 'recipe' or both 'initial' and 'final'")


@dataclass(frozen=True)
class NEBConfig:
    """Climbing-image NEB: images (endpoints included), spring constant (eV/Å^2), band force
    tolerance (eV/Å)."""

    n_images: int = 7
    spring_eV_A2: float = 0.1
    fmax: float = 0.03
    max_steps: int = 2000

    def __post_init__(self):
        if self.n_images < 3:
            raise ValueError(f"neb.n_images must be >= 3 (endpoints included), got {self.n_images}")
        if not (self.spring_eV_A2 > 0 and self.fmax > 0):
            raise ValueError(f"neb.spring_eV_A2 and neb.fmax must be positive, got {self.spring_eV_A2}, {self.fmax}")


@dataclass(frozen=True)
class SaddleConfig:
    """Refinement of the climbing image with the exact Hessian, to ``fmax`` eV/Å."""

    fmax: float = 1e-3
    max_steps: int = 100

    def __post_init__(self):
        if not self.fmax > 0:
            raise ValueError(f"saddle.fmax must be positive (eV/Å), got {self.fmax}")


@dataclass(frozen=True)
class IRCConfig:
    """IRC from the refined saddle: arc-length step (amu^1/2 Å) and stopping force (eV/Å)."""

    enabled: bool = True
    step: float = 0.1
    fmax: float = 0.01

    def __post_init__(self):
        if not (self.step > 0 and self.fmax > 0):
            raise ValueError(f"irc.step and irc.fmax must be positive, got {self.step}, {self.fmax}")


@dataclass(frozen=True)
class RatesConfig:
    """Harmonic TST at ``temperatures_K``; quantum or classical vibrational partition functions;
    with a committee, a ``confidence`` band from the members."""

    temperatures_K: tuple[float, ...] = (200.0, 300.0, 400.0, 500.0, 600.0, 800.0)
    quantum: bool = False
    confidence: float = 0.95

    def __post_init__(self):
        if not self.temperatures_K or any(not t > 0 for t in self.temperatures_K):
            raise ValueError(f"rates.temperatures_K must be positive temperatures, got {list(self.temperatures_K)}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"rates.confidence must be in (0, 1), got {self.confidence}")


@dataclass(frozen=True)
class ReactionCase:
    """kind = "reaction": NEB -> refined saddle (one imaginary mode) -> IRC -> TST rates."""

    kind: Literal["reaction"]
    name: str
    potential: PotentialConfig
    endpoints: EndpointsConfig
    neb: NEBConfig = field(default_factory=NEBConfig)
    saddle: SaddleConfig = field(default_factory=SaddleConfig)
    irc: IRCConfig = field(default_factory=IRCConfig)
    rates: RatesConfig = field(default_factory=RatesConfig)
    output: RunOutputConfig = field(default_factory=RunOutputConfig)



def _endpoints(case: ReactionCase, case_dir: Path) -> tuple[Atoms, Atoms]:
    e = case.endpoints
    if e.recipe is not None:
        return ENDPOINT_RECIPES[e.recipe]()
    ends = []
    for key in ("initial", "final"):
        path = case_dir / getattr(e, key)
        if not path.is_file():
            raise CaseError(f"endpoints.{key}: {path} not found")
        ends.append(read(path))
    if len(ends[0]) != len(ends[1]) or ends[0].get_chemical_symbols() != ends[1].get_chemical_symbols():
        raise CaseError("endpoints: initial and final must hold the same atoms in the same order")
    return ends[0], ends[1]


def run(case: ReactionCase, ctx: RunContext) -> dict:
    case_dir, out = ctx.case_dir, ctx.out
    envelope = Report(case)
    out.mkdir(parents=True, exist_ok=True)
    model = load_potential(case_dir / case.potential.path, device=case.potential.device)
    initial, final = _endpoints(case, case_dir)
    band = neb(model, initial, final, n_images=case.neb.n_images, spring_eV_A2=case.neb.spring_eV_A2,
               fmax=case.neb.fmax, max_steps=case.neb.max_steps)
    write_extxyz(out / "neb.extxyz", band.images)
    log.info("NEB: barrier %.4f eV forward, %.4f eV backward (%d steps)", band.barrier_forward_eV,
             band.barrier_backward_eV, band.steps)
    saddle = refine_saddle(model, band.images[band.saddle_index], fmax=case.saddle.fmax,
                           max_steps=case.saddle.max_steps, guess=band.tangent)
    write_extxyz(out / "saddle.extxyz", [saddle.atoms])
    report = {"neb": {"barrier_forward_eV": band.barrier_forward_eV,
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
    if isinstance(model, Committee):
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
        write_csv(out / "rates.csv", ["temperature_K", "rate_per_s"],
                  [(f"{tk:g}", f"{kk:.6e}") for tk, kk in zip(t, k)])
        report["rates"] = {"temperatures_K": t.tolist(), "rate_per_s": k.tolist(), "quantum": case.rates.quantum}
    return envelope.write(out, report)


KIND = Kind("reaction", ReactionCase, run)
