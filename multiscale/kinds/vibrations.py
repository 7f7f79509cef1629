"""kind = "vibrations": relax, then normal modes from the autograd Hessian.

Outputs: relaxed.extxyz, frequencies.csv (cm^-1, imaginary as negative), spectrum.png, report.json.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from atomistic.analysis.optimize import relax
from atomistic.analysis.vibrations import normal_modes, spectrum_plot
from atomistic.potential.io import load_potential

from ..common import PotentialConfig, RunOutputConfig, StructureConfig, build_structures
from ..outputs import Report, write_csv, write_extxyz
from . import Kind, RunContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelaxConfig:
    """Relax first (FIRE) to ``fmax`` eV/Å; ``cell``: the cell too (periodic structures)."""

    enabled: bool = True
    fmax: float = 1e-4
    cell: bool = False
    max_steps: int = 5000

    def __post_init__(self):
        if not self.fmax > 0:
            raise ValueError(f"relax.fmax must be positive (eV/Å), got {self.fmax}")


@dataclass(frozen=True)
class VibrationsCase:
    """kind = "vibrations": relax, then normal modes from the autograd Hessian."""

    kind: Literal["vibrations"]
    name: str
    potential: PotentialConfig
    structure: StructureConfig
    relax: RelaxConfig = field(default_factory=RelaxConfig)
    output: RunOutputConfig = field(default_factory=RunOutputConfig)

    def __post_init__(self):
        if self.structure.replicas != 1:
            raise ValueError(f"structure.replicas must be 1 for vibrations, got {self.structure.replicas}")


def run(case: VibrationsCase, ctx: RunContext) -> dict:
    case_dir, out, progress = ctx.case_dir, ctx.out, ctx.progress
    envelope = Report(case)
    out.mkdir(parents=True, exist_ok=True)
    model = load_potential(case_dir / case.potential.path, device=case.potential.device)
    atoms = build_structures(case.structure, case_dir)[0]
    report = {}
    if case.relax.enabled:
        r = relax(model, atoms, fmax=case.relax.fmax, cell=case.relax.cell, max_steps=case.relax.max_steps,
                  progress=progress)
        atoms = r.atoms[0]
        report["relax"] = {"converged": r.converged[0], "max_force_eV_A": r.max_force[0], "steps": r.steps,
                           "energy_eV": r.energies[0]}
    write_extxyz(out / "relaxed.extxyz", [atoms])
    modes = normal_modes(model, atoms)
    write_csv(out / "frequencies.csv", ["mode", "frequency_cm-1"],
         [(k, f"{f:.4f}") for k, f in enumerate(modes.frequencies_cm)])
    spectrum_plot(out / "spectrum.png", modes, title=case.name)
    report.update(n_modes=len(modes.frequencies_cm), rigid_modes_removed=modes.n_rigid,
                  n_imaginary=modes.n_imaginary(), frequencies_cm=modes.frequencies_cm.tolist())
    log.info("%s: %d modes, highest %.1f cm^-1, %d imaginary", case.name, len(modes.frequencies_cm),
             modes.frequencies_cm.max(), modes.n_imaginary())
    return envelope.write(out, report)


KIND = Kind("vibrations", VibrationsCase, run)
