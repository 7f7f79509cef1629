"""Intrinsic reaction coordinate: mass-weighted steepest descent from a first-order saddle down
to both minima (DESIGN §3).

In mass-weighted coordinates ``q = M^1/2 x`` (amu^1/2 Å) the path leaves the saddle along +- the
imaginary normal mode and then follows the negative gradient ``-M^-1/2 dE/dx`` with fixed
arc-length steps, integrated by Heun's predictor–corrector (second order). The two branches are
one batched structure set on the device, so each predictor or corrector is one model call.
A step that does not lower the energy (it crossed the valley floor near a minimum) is retried at
half the length. A branch stops once its largest force falls below ``fmax`` or its energy stops
decreasing; both ends are then relaxed (FIRE) to minima.

The "backward" branch leaves along -e, the "forward" one along +e, with the sign of the
imaginary mode e fixed so that its largest component is positive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from atomistic.analysis.optimize import relax
from atomistic.analysis.vibrations import Modes, count_imaginary, free_atoms, normal_modes
from atomistic.atomic_files import write_extxyz
from atomistic.errors import SaddleError
from atomistic.potential.forces import predict
from atomistic.potential.models import model_device
from atomistic.potential.neighbors import build_neighbors
from atomistic.potential.structure import from_atoms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IRCResult:
    """The path from the end of the backward branch through the saddle to the end of the forward
    branch (k points).

    positions         (k, n_atoms, 3) Å
    energies          (k,) eV, decreasing away from the saddle on both sides
    arc_length        (k,) amu^1/2 Å in mass-weighted coordinates, 0 at the saddle, negative on
                      the backward branch
    saddle_index      index of the saddle in the path
    minima            the two ends relaxed to minima (backward, forward), ASE Atoms
    minimum_energies  their energies, eV
    saddle            the saddle, ASE Atoms
    """

    positions: np.ndarray
    energies: np.ndarray
    arc_length: np.ndarray
    saddle_index: int
    minima: list[Atoms]
    minimum_energies: list[float]
    saddle: Atoms

    def frames(self) -> list[Atoms]:
        """The path as ASE Atoms with ``energy_eV`` and ``arc_length`` (amu^1/2 Å) in ``info``."""
        out = []
        for x, e, s in zip(self.positions, self.energies, self.arc_length):
            a = self.saddle.copy()
            a.calc = None
            a.info = {k: v for k, v in a.info.items() if isinstance(v, (str, bool, int, float))}  # extxyz-safe
            a.set_positions(x, apply_constraint=False)
            a.info.update(energy_eV=float(e), arc_length=float(s))
            out.append(a)
        return out


class _Branches:
    """Energies and mass-weighted gradients of several copies of one structure in one call."""

    def __init__(self, model, saddle: Atoms, free: np.ndarray, device):
        self.model, self.device, dtype = model, device, model.dtype
        self.template = {k: from_atoms([saddle] * k, model.species, device=device, dtype=dtype) for k in (1, 2)}
        self.x0 = torch.as_tensor(saddle.positions, dtype=torch.float64, device=device)  # (n, 3) Å
        self.free = torch.as_tensor(free, device=device)
        self.sqrt_m = torch.as_tensor(np.sqrt(saddle.get_masses()[free]), dtype=torch.float64,
                                      device=device)[:, None]  # (n_free, 1) amu^1/2

    def positions(self, q: torch.Tensor) -> torch.Tensor:
        """Cartesian positions (b, n, 3) Å for mass-weighted free coordinates q (b, n_free, 3)."""
        x = self.x0.expand(len(q), -1, -1).clone()
        x[:, self.free] = q / self.sqrt_m
        return x

    def __call__(self, q: torch.Tensor):
        """(energies (b,) eV, gradients dE/dq (b, n_free, 3) eV/(amu^1/2 Å), max force (b,) eV/Å)."""
        b = len(q)
        s = self.template[b]
        s = replace(s, positions=self.positions(q).reshape(-1, 3).to(s.positions.dtype))
        p = predict(self.model, s, build_neighbors(s, self.model.cutoff, self.model.angular_cutoff))
        f = p.forces.detach().to(torch.float64).reshape(b, -1, 3)[:, self.free]
        return p.energy.detach().to(torch.float64), -f / self.sqrt_m, torch.linalg.vector_norm(f, dim=2).amax(1)


def _unit(g: torch.Tensor) -> torch.Tensor:
    return g / torch.linalg.vector_norm(g.flatten(1), dim=1).clamp(min=1e-300)[:, None, None]


def _descend(branches: _Branches, q: torch.Tensor, *, step: float, fmax: float, max_steps: int):
    """Heun steepest descent of each row of q (b, n_free, 3) in lockstep; returns the accepted
    points (list per branch of (n_free, 3) tensors) and their energies."""
    b = len(q)
    e, g, worst = branches(q)
    h = torch.full((b,), float(step), dtype=torch.float64, device=q.device)
    path = [[q[i].clone()] for i in range(b)]
    energies = [[float(e[i])] for i in range(b)]
    active = [bool(worst[i] >= fmax) for i in range(b)]
    while any(active):
        idx = torch.as_tensor([i for i in range(b) if active[i]], device=q.device)
        d1 = -_unit(g[idx])
        _, g2, _ = branches(q[idx] + h[idx, None, None] * d1)
        q_new = q[idx] + 0.5 * h[idx, None, None] * (d1 - _unit(g2))
        e_new, g_new, worst_new = branches(q_new)
        for j, i in enumerate(idx.tolist()):
            if float(e_new[j]) < float(e[i]):
                q[i], e[i], g[i], worst[i] = q_new[j], e_new[j], g_new[j], worst_new[j]
                path[i].append(q[i].clone())
                energies[i].append(float(e[i]))
                if float(worst[i]) < fmax:
                    active[i] = False
                elif len(path[i]) > max_steps:
                    log.warning("IRC branch %d: max_steps=%d reached at max force %.3g eV/Å", i, max_steps,
                                float(worst[i]))
                    active[i] = False
            else:  # stepped across the valley floor: shorter steps, or stop at the bottom
                h[i] *= 0.5
                if float(h[i]) < step / 256:
                    active[i] = False
    return path, energies


def irc(model, saddle: Atoms, *, step: float = 0.1, fmax: float = 0.01, max_steps: int = 2000,
        minimum_fmax: float = 1e-3, first_drop_eV: float = 1e-3, modes: Modes | None = None,
        project_rigid: bool = True, device=None) -> IRCResult:
    """Both IRC branches from ``saddle`` down to the two minima.

    ``step``: arc length per step in mass-weighted coordinates, amu^1/2 Å; ``fmax`` (eV/Å): a
    branch stops below this force (or where the energy stops decreasing), and its end is relaxed
    to ``minimum_fmax`` (eV/Å). The first step leaves along the imaginary mode far enough that the
    harmonic energy drop is ``first_drop_eV`` (so residual forces at a nearly converged saddle
    cannot turn it back). ``modes``: the saddle's normal modes if already known (e.g.
    :attr:`SaddleResult.modes <atomistic.analysis.saddle.SaddleResult>`), else computed here.

    Raises :class:`~atomistic.analysis.saddle.SaddleError` (a ValueError) unless ``saddle`` has exactly
    one imaginary mode.
    """
    for name, value in (("step", step), ("fmax", fmax), ("minimum_fmax", minimum_fmax),
                        ("first_drop_eV", first_drop_eV)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    device = model_device(model, device)
    free = free_atoms(saddle)
    if modes is None:
        modes = normal_modes(model, saddle, project_rigid=project_rigid, device=device)
    elif not np.array_equal(modes.indices, free):
        raise ValueError(f"modes: computed for atoms {modes.indices.tolist()}, but the free atoms of the saddle "
                         f"are {free.tolist()}")
    n_imag = count_imaginary(modes)
    if n_imag != 1:
        lowest = np.round(modes.frequencies_cm[:3], 1).tolist()
        raise SaddleError(f"IRC needs a first-order saddle (exactly 1 imaginary mode): this point has {n_imag} "
                          f"imaginary modes (lowest frequencies {lowest} cm^-1)")
    mode = modes.mass_weighted[0]
    mode = mode / np.linalg.norm(mode)
    mode = mode * np.sign(mode[np.argmax(np.abs(mode))])  # a reproducible orientation
    first = max(step, float(np.sqrt(2.0 * first_drop_eV / abs(modes.eigenvalues[0]))))

    branches = _Branches(model, saddle, free, device)
    e, _, _ = branches(torch.as_tensor(saddle.positions[free], dtype=torch.float64, device=device)[None]
                       * branches.sqrt_m)
    q0 = torch.as_tensor(saddle.positions[free], dtype=torch.float64, device=device) * branches.sqrt_m
    e_mode = torch.as_tensor(mode.reshape(-1, 3), dtype=torch.float64, device=device)
    start = torch.stack([q0 - first * e_mode, q0 + first * e_mode])  # backward, forward
    path, energies = _descend(branches, start, step=step, fmax=fmax, max_steps=max_steps)

    qs = torch.stack(path[0][::-1] + [q0] + path[1])
    es = np.asarray(energies[0][::-1] + [float(e[0])] + energies[1])
    ds = torch.linalg.vector_norm(torch.diff(qs, dim=0).flatten(1), dim=1).cpu().numpy()
    s = np.concatenate([[0.0], np.cumsum(ds)])
    centre = len(path[0])
    s -= s[centre]
    full = branches.positions(qs).cpu().numpy()
    ends = []
    for x in (full[0], full[-1]):
        a = saddle.copy()
        a.calc = None
        a.set_positions(x, apply_constraint=False)
        ends.append(a)
    relaxed = relax(model, ends, fmax=minimum_fmax, device=device)
    log.info("IRC: %d points, s from %.3f to %.3f amu^1/2 Å, barriers %.4f / %.4f eV", len(full), s[0], s[-1],
             es[centre] - relaxed.energies[0], es[centre] - relaxed.energies[1])
    return IRCResult(full, es, s, centre, relaxed.atoms, relaxed.energies, saddle.copy())


def irc_plot(path: str | Path, result: IRCResult, *, title: str = "IRC") -> Path:
    """Energy (eV, relative to the lower minimum) against arc length (amu^1/2 Å), PNG, atomic."""
    from atomistic.plots import plt, save_png

    ref = min(result.minimum_energies)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(result.arc_length, result.energies - ref, "-", color="C0", lw=1.5)
    ax.plot([0.0], [result.energies[result.saddle_index] - ref], "o", color="C3", label="saddle")
    ax.set_xlabel(r"arc length $s$ (amu$^{1/2}$ Å)")
    ax.set_ylabel("energy (eV)")
    ax.set_title(title)
    ax.legend(frameon=False)
    return save_png(fig, path)


def write_irc(path: str | Path, result: IRCResult) -> Path:
    """The path as extxyz frames with ``energy_eV`` (eV) and ``arc_length`` (amu^1/2 Å) in each
    frame's info; written to a temporary file beside ``path``, then renamed onto it."""
    return write_extxyz(path, result.frames())
