"""The cohesive law of an interface, derived from the NN-PES (DESIGN section 5).

Two half-crystals, periodic in the interface plane, are separated by ``delta`` normal to the
interface (or slid by ``s`` along it, mode II). The periodic cell carries one interface: the top
half moves by ``delta`` and the cell grows by ``delta``, so ``phi(delta) = (E(delta) - E(0)) / A``
(eV/Å^2) tends to the work of separation ``W_sep``, twice the surface energy of the same model.
The traction ``dphi/d delta`` is exact: the model's forces and stress projected on the separation
(no finite differences). ``rigid`` keeps both halves perfect; ``relaxed`` lets every atom except
the layers farthest from the interface relax at each opening. The curve fits UBER (``W_sep``,
``l``) and becomes a :class:`~continuum.cohesive.TabulatedLaw` for the continuum.
:func:`interface_plane` names the low-index plane normal to a body's x axis, and
:func:`model_interface_law` fits UBER to the rigid separation across it.

Which curve for a coupled model: the relaxed curve includes the elastic stretching of the relaxed
layers (at 1 Å opening of Cu(100), 0.61 J/m^2 relaxed against 1.56 J/m^2 rigid), which the
continuum beside the interface already carries; the rigid curve does not count it twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import fcc100, fcc110, fcc111
from scipy.optimize import curve_fit

from atomistic.analysis.optimize import relax
from atomistic.potential.forces import predict
from atomistic.potential.models import model_device
from atomistic.potential.neighbors import build_neighbors
from atomistic.potential.structure import from_atoms
from continuum.cohesive import UBER, TabulatedLaw

from .errors import CouplingInputError

log = logging.getLogger(__name__)
_PLANES = {"100": fcc100, "110": fcc110, "111": fcc111}


@dataclass(frozen=True)
class SeparationCurve:
    """phi (eV/Å^2) and traction (eV/Å^3) against the opening (Å; or the slip, for ``mode="shear"``)."""

    openings_A: np.ndarray
    energy_eV_A2: np.ndarray
    traction_eV_A3: np.ndarray
    area_A2: float
    mode: str
    relaxed: bool

    @property
    def work_of_separation_eV_A2(self) -> float:
        """phi at the largest opening."""
        return float(self.energy_eV_A2[-1])

    def uber(self) -> UBER:
        """Least-squares UBER fit of the normal curve (W_sep eV/Å^2, l Å)."""
        if self.mode != "normal":
            raise ValueError("an UBER fit needs a normal separation curve")

        def phi(d, w, length):
            return w * (1.0 - (1.0 + d / length) * np.exp(-d / length))

        w0 = self.work_of_separation_eV_A2
        peak = self.openings_A[int(np.argmax(self.traction_eV_A3))]
        (w, length), _ = curve_fit(phi, self.openings_A, self.energy_eV_A2, p0=(w0, max(peak, 0.1)))
        return UBER(float(w), float(length))

    def table(self) -> TabulatedLaw:
        """The curve as a continuum law (a spline through the energies)."""
        if self.mode != "normal":
            raise ValueError("a tabulated normal law needs a normal separation curve")
        return TabulatedLaw(tuple(self.openings_A), tuple(self.energy_eV_A2 - self.energy_eV_A2[0]))

    def plot(self, path: str | Path) -> Path:
        """phi and traction against the opening, with the UBER fit (PNG)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from atomistic.plots import save_png
        from continuum.units import GPa, J_per_m2

        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
        d = self.openings_A
        label = "relaxed" if self.relaxed else "rigid"
        a.plot(d, self.energy_eV_A2 / J_per_m2, "o", ms=3, label=f"NN-PES ({label})")
        b.plot(d, self.traction_eV_A3 / GPa, "o", ms=3, label=f"NN-PES ({label})")
        if self.mode == "normal":
            fit = self.uber()
            fine = np.linspace(d[0], d[-1], 400)
            values = fit.evaluate(fine, 0 * fine)
            a.plot(fine, values.phi / J_per_m2, "-", label=f"UBER W={fit.W_sep_eV_A2 / J_per_m2:.3f} J/m², "
                                                          f"l={fit.length_A:.3f} Å")
            b.plot(fine, values.phi_n / GPa, "-", label="UBER")
        x = "opening (Å)" if self.mode == "normal" else "slip (Å)"
        a.set(xlabel=x, ylabel="energy per area (J/m²)")
        b.set(xlabel=x, ylabel="traction (GPa)")
        a.legend(fontsize=8)
        b.legend(fontsize=8)
        return save_png(fig, path)


def half_crystals(symbol: str, a0: float, plane: str = "100", layers: int = 8,
                  repeat=(1, 1)) -> tuple[Atoms, np.ndarray]:
    """A periodic fcc cell of ``layers`` layers normal to z and the mask of its top half."""
    if plane not in _PLANES:
        raise ValueError(f"plane = {plane!r}: expected one of {sorted(_PLANES)}")
    period = 6 if plane == "111" else 2  # two halves, each a whole number of stacking periods (ABC or AB)
    if layers < 2 * period or layers % period:
        raise ValueError(f"layers = {layers}: expected an even number >= 4 (a multiple of 6 for (111), whose "
                         "ABC stacking must continue across the periodic boundary)")
    if plane == "111":
        atoms = fcc111(symbol, (*repeat, layers), a=a0, periodic=True)
    else:
        atoms = _PLANES[plane](symbol, (*repeat, layers), a=a0, orthogonal=True, periodic=True)
    z = atoms.positions[:, 2]
    interlayer = a0 / {"100": 2, "110": 2 * np.sqrt(2), "111": np.sqrt(3)}[plane]
    atoms.cell[2, 2] = layers * interlayer  # bulk stacking across the periodic boundary
    atoms.pbc = True
    top = z > z.min() + (layers / 2 - 0.5) * interlayer
    return atoms, top


def separation_curve(model, symbol: str, a0: float, *, plane: str = "100", layers: int = 8, repeat=(1, 1),
                     openings_A=None, mode: str = "normal", relaxed: bool = False, fixed_layers: int = 1,
                     fmax: float = 1e-3) -> SeparationCurve:
    """phi and its traction for two half-crystals of ``symbol`` (fcc, lattice constant ``a0`` Å).

    ``mode``: "normal" (opening along z) or "shear" (slip along x at zero opening).
    ``relaxed``: relax every atom at each opening except ``fixed_layers`` layers at each half's
    far end (the bottom of the cell and the top of the upper half, bonded across the periodic
    boundary)."""
    if mode not in ("normal", "shear"):
        raise ValueError(f"mode = {mode!r}: expected 'normal' or 'shear'")
    openings = np.linspace(0.0, 8.0, 33) if openings_A is None else np.asarray(openings_A, dtype=float)
    bulk, top = half_crystals(symbol, a0, plane, layers, repeat)
    axis = 2 if mode == "normal" else 0
    frames = []
    for d in openings:
        frame = bulk.copy()
        frame.positions[top, axis] += d
        frame.cell[2, axis] += d  # the periodic boundary moves with the top half: one interface per cell
        frames.append(frame)
    if relaxed:
        z = bulk.positions[:, 2]
        layer = np.round((z - z.min()) / (np.ptp(z) / (layers - 1))).astype(int)
        # the layers farthest from the opened interface: those that meet across the periodic boundary
        far = (layer < fixed_layers) | (layer >= layers - fixed_layers)
        frames = relax(model, frames, fmax=fmax, fixed=np.tile(far, len(frames))).atoms
    s = from_atoms(frames, model.species, device=model_device(model), dtype=model.dtype)
    nbrs = build_neighbors(s, model.cutoff, model.angular_cutoff)
    p = predict(model, s, nbrs, stress=True)
    energy = p.energy.detach().cpu().numpy()
    forces = p.forces.detach().cpu().numpy().reshape(len(frames), len(bulk), 3)
    stress = p.stress.detach().cpu().numpy()  # (n, 3, 3) eV/Å^3: (1/V) dE/d(displacement gradient)
    area = float(np.linalg.norm(np.cross(bulk.cell[0], bulk.cell[1])))
    # dE/d delta: the affine part u_axis = delta z / L through the stress, the rest through the forces
    # (relaxed atoms carry no force, so along a relaxed path this is still the total derivative)
    traction = []
    for k, frame in enumerate(frames):
        length = frame.cell[2, 2]
        z = frame.positions[:, 2] - frame.positions[:, 2].min()
        nonaffine = top.astype(float) - z / length
        de = frame.get_volume() * stress[k, axis, 2] / length - np.sum(forces[k, :, axis] * nonaffine)
        traction.append(de / area)
    return SeparationCurve(openings, (energy - energy[0]) / area, np.asarray(traction), area, mode, relaxed)


def interface_plane(orientation_x) -> str:
    """The plane ("100", "110" or "111") normal to a body's x axis ``orientation_x`` (a crystal
    direction, e.g. ``(1, 1, 0)``; signs and order do not matter). Raises
    :class:`~coupling.errors.CouplingInputError` unless it is a <100>, <110> or <111> direction."""
    x = np.abs(np.asarray(orientation_x, dtype=float))
    plane, ratios = None, None
    if x.shape == (3,) and np.all(np.isfinite(x)) and np.any(x > 0):
        ratios = np.sort(x / x[x > 0].min())[::-1]
        digits = np.round(ratios).astype(int)
        plane = "".join(map(str, digits))
        if not np.allclose(ratios, digits):
            plane = None
    if plane not in _PLANES:
        raise CouplingInputError(f"the body's x axis {list(orientation_x)} must be a <100>, <110> or <111> direction "
                                 "(the plane the model's half-crystals separate across)")
    return plane


def model_interface_law(model, symbol: str, a0_A: float, orientation_x) -> UBER:
    """The UBER fit (``W_sep`` eV/Å^2, ``l`` Å) of the model's rigid separation of two fcc
    half-crystals of ``symbol`` (lattice constant ``a0_A``, Å) across the plane normal to the
    body's x axis ``orientation_x`` (:func:`interface_plane`)."""
    plane = interface_plane(orientation_x)
    law = separation_curve(model, symbol, a0_A, plane=plane).uber()
    log.info("interface law from the model: (%s) W_sep = %.4f eV/Å^2, l = %.4f Å", plane, law.W_sep_eV_A2,
             law.length_A)
    return law
