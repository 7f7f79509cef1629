"""Intrinsic reaction coordinate: mass-weighted steepest descent from a first-order saddle down
to both minima (DESIGN §3).

In mass-weighted coordinates ``q = M^1/2 x`` (amu^1/2 Å) the path leaves the saddle along +- the
imaginary normal mode and then follows the negative gradient ``-M^-1/2 dE/dx``, integrated with
fixed arc-length steps by Heun's predictor–corrector (second order, no zig-zag at these steps).
Each branch stops once its force falls below ``fmax`` or its energy stops decreasing, and its end
is then relaxed (FIRE) to a minimum.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write

from .atomic_files import atomic_path
from .optimize import relax
from .saddle import SaddleError, _device, _energy_forces
from .vibrations import count_imaginary, free_atoms, normal_modes

log = logging.getLogger(__name__)


@dataclass
class IRCResult:
    """The path from the end of the backward branch through the saddle to the end of the forward
    branch: ``positions`` (k, n, 3) Å, ``energies`` (k,) eV, ``arc_length`` (k,) amu^1/2 Å (0 at
    the saddle, negative on the backward branch); ``minima``: the two relaxed ends (backward,
    forward) as ASE Atoms with ``minimum_energies`` (eV)."""

    positions: np.ndarray
    energies: np.ndarray
    arc_length: np.ndarray
    minima: list[Atoms]
    minimum_energies: list[float]
    saddle: Atoms

    def frames(self) -> list[Atoms]:
        out = []
        for x, e, s in zip(self.positions, self.energies, self.arc_length):
            a = self.saddle.copy()
            a.set_positions(x, apply_constraint=False)
            a.info.update(energy_eV=float(e), arc_length=float(s))
            out.append(a)
        return out


def _branch(model, saddle: Atoms, direction: np.ndarray, free, sqrt_m, *, first: float, step: float, fmax: float,
            max_steps: int, device):
    a = saddle.copy()
    q = a.positions[free] * sqrt_m  # mass-weighted, (n_free, 3)
    q = q + first * direction
    path, energies = [], []

    def grad(q):
        a.set_positions(_place(saddle.positions, free, q / sqrt_m), apply_constraint=False)
        e, f, _, _ = _energy_forces(model, a, device)
        return e, -f[free] / sqrt_m, float(np.linalg.norm(f[free], axis=1).max())

    e, g, worst = grad(q)
    h = step
    for _ in range(max_steps):
        path.append(q / sqrt_m)
        energies.append(e)
        if worst < fmax:
            break
        while True:
            d1 = -g / np.linalg.norm(g)
            _, g2, _ = grad(q + h * d1)
            d2 = -g2 / np.linalg.norm(g2)
            q_new = q + 0.5 * h * (d1 + d2)
            e_new, g_new, worst_new = grad(q_new)
            if e_new < e or h < step / 256:
                break
            h *= 0.5  # stepped over the valley floor near the minimum: shorter steps
        if e_new >= e:  # no lower point along the path: this is the bottom
            break
        q, e, g, worst = q_new, e_new, g_new, worst_new
    return path, energies


def _place(positions: np.ndarray, free, moved: np.ndarray) -> np.ndarray:
    out = positions.copy()
    out[free] = moved
    return out


def irc(model, saddle: Atoms, *, step: float = 0.1, fmax: float = 0.01, max_steps: int = 2000,
        minimum_fmax: float = 1e-3, first_drop_eV: float = 1e-3, project_rigid: bool = True, device=None) -> IRCResult:
    """Both IRC branches from ``saddle`` (``step``: arc length per step, amu^1/2 Å). The first
    step leaves the saddle along the imaginary mode far enough that the harmonic energy drop is
    ``first_drop_eV`` (so residual forces at a nearly converged saddle cannot turn it back).
    Raises :class:`SaddleError` (a ValueError) unless ``saddle`` has exactly one imaginary mode."""
    device = _device(model, device)
    modes = normal_modes(model, saddle, project_rigid=project_rigid, device=device)
    n_imag = count_imaginary(modes)
    if n_imag != 1:
        raise SaddleError(f"IRC needs a first-order saddle: this point has {n_imag} imaginary modes "
                          f"(lowest frequencies {np.round(modes.frequencies_cm[:3], 1).tolist()} cm^-1)")
    free = free_atoms(saddle)
    sqrt_m = np.sqrt(saddle.get_masses()[free])[:, None]
    mode = modes.mass_weighted[0].reshape(-1, 3)
    mode = mode / np.linalg.norm(mode)
    e0 = _energy_forces(model, saddle, device)[0]
    first = max(step, float(np.sqrt(2.0 * first_drop_eV / abs(modes.eigenvalues[0]))))
    branches = []
    for sign in (-1.0, 1.0):
        path, energies = _branch(model, saddle, sign * mode, free, sqrt_m, first=first, step=step, fmax=fmax,
                                 max_steps=max_steps, device=device)
        branches.append((path, energies))
    (back_x, back_e), (fwd_x, fwd_e) = branches
    xs = back_x[::-1] + [saddle.positions[free]] + fwd_x
    es = back_e[::-1] + [e0] + fwd_e
    full = np.stack([_place(saddle.positions, free, x) for x in xs])
    dq = np.linalg.norm(((np.diff(full[:, free], axis=0)) * sqrt_m[None]).reshape(len(full) - 1, -1), axis=1)
    s = np.concatenate([[0.0], np.cumsum(dq)])
    s -= s[len(back_x)]
    ends = []
    for x in (full[0], full[-1]):
        a = saddle.copy()
        a.set_positions(x, apply_constraint=False)
        ends.append(a)
    relaxed = relax(model, ends, fmax=minimum_fmax, device=device)
    log.info("IRC: %d points, barriers %.4f / %.4f eV", len(full), e0 - relaxed.energies[0], e0 - relaxed.energies[1])
    return IRCResult(full, np.asarray(es), s, relaxed.atoms, relaxed.energies, saddle)


def irc_plot(path: str | Path, result: IRCResult, *, title: str = "IRC") -> Path:
    """Energy (relative to the lower minimum) against arc length in mass-weighted coordinates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = min(result.minimum_energies)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(result.arc_length, result.energies - ref, "-", color="C0", lw=1.5)
    ax.plot([0.0], [result.energies[np.argmin(np.abs(result.arc_length))] - ref], "o", color="C3", label="saddle")
    ax.set_xlabel(r"arc length $s$ (amu$^{1/2}$ Å)")
    ax.set_ylabel("energy (eV)")
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def write_irc(path: str | Path, result: IRCResult) -> Path:
    """The path as extxyz frames with ``energy_eV`` and ``arc_length`` in each frame's info (atomic)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        write(str(tmp), result.frames(), format="extxyz")
    return path
