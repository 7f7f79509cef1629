"""What drives a coupled dynamics run, as data: the core's :class:`Thermostat`, the absorbing
:class:`Stadium`, a boundary's :class:`VelocityLoad` and an initial :class:`Pulse`; each checks
its values when made and knows its own formula (the stadium's friction, the load's travel, the
pulse's fields). :class:`~coupling.dynamics.CoupledDynamics` applies them.

Units: Å, fs, K; velocities of loads in Å/ps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CouplingInputError

THERMOSTATS = ("langevin", "bussi")

def positive(field: str, value, what: str) -> float:
    if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
        raise CouplingInputError(f"{field} = {value!r}: expected {what}")
    return float(value)


def wave_speed_A_fs(C_GPa, density_amu_A3: float, axis: int = 0, wave: str = "bulk") -> float:
    """The speed (Å/fs) of a longitudinal wave along ``axis`` from Voigt constants ``C_GPa`` (GPa,
    in the body's axes) and a density (amu/Å^3): ``sqrt(C_aa / rho)`` in a laterally confined
    medium (``"bulk"``), ``sqrt(E_a / rho)`` in a bar with free lateral surfaces (``"bar"``)."""
    from ase import units

    C = np.asarray(C_GPa, dtype=float)
    stiffness = C[axis, axis] if wave == "bulk" else 1.0 / np.linalg.inv(C)[axis, axis]
    return float(np.sqrt(stiffness * units.GPa / density_amu_A3) * units.fs)


def lateral_ratios(C_GPa, axis: int = 0) -> tuple[float, float, float]:
    """A bar's lateral strain per axial strain along ``axis`` (``S_aj / S_aa``; 1 on the axis,
    ``-nu`` across): the ``lateral`` of a bar-wave :class:`Pulse`."""
    S = np.linalg.inv(np.asarray(C_GPa, dtype=float))
    return tuple(float(v) for v in S[axis, :3] / S[axis, axis])


@dataclass(frozen=True)
class Thermostat:
    """The core's thermostat: ``kind`` ``"langevin"`` (friction ``1 / time_fs`` on every free atom)
    or ``"bussi"`` (the free atoms' kinetic energy relaxes to ``temperature_K`` with time constant
    ``time_fs``, canonically)."""

    kind: str
    temperature_K: float
    time_fs: float = 100.0

    def __post_init__(self):
        if self.kind not in THERMOSTATS:
            raise CouplingInputError(f"thermostat = {self.kind!r}: expected one of {THERMOSTATS} (or none)")
        if not (np.isfinite(self.temperature_K) and self.temperature_K >= 0):
            raise CouplingInputError(f"temperature_K = {self.temperature_K!r}: expected a temperature >= 0 K")
        positive("thermostat_time_fs", self.time_fs, "a positive time in fs")


@dataclass(frozen=True)
class Stadium:
    """The absorbing layer: Langevin friction on the free atoms within ``width_A`` (Å) of the
    handshake, ``(1 - s / width_A)^2 / time_fs`` at a distance ``s`` from it (smooth, so that the
    friction's own gradient reflects little), its bath at the thermostat's temperature."""

    width_A: float
    time_fs: float = 25.0

    def __post_init__(self):
        positive("stadium_A", self.width_A, "a positive width in Å")
        positive("stadium_time_fs", self.time_fs, "a positive time in fs")

    def friction_per_fs(self, distance_A: np.ndarray) -> np.ndarray:
        """Friction rate (1/fs) at ``distance_A`` (Å) from the handshake into the core."""
        t = np.clip(1.0 - np.asarray(distance_A, dtype=float) / self.width_A, 0.0, 1.0)
        return t * t / self.time_fs


@dataclass(frozen=True)
class VelocityLoad:
    """``boundary`` moves at ``velocity_A_ps`` (Å/ps; ``None`` leaves a component as the boundary
    condition holds it), reached linearly over ``ramp_fs`` (0: at once). The boundary must hold a
    displacement condition on the components it moves."""

    boundary: str
    velocity_A_ps: tuple[float | None, float | None, float | None]
    ramp_fs: float = 0.0

    def __post_init__(self):
        v = tuple(self.velocity_A_ps)
        if len(v) != 3 or any(c is not None and not (isinstance(c, (int, float)) and np.isfinite(c)) for c in v) \
                or all(c is None for c in v):
            raise CouplingInputError(f"velocity_A_ps = {list(self.velocity_A_ps)} on {self.boundary!r}: expected "
                                     "three components (finite numbers in Å/ps, or none for one not moved)")
        if not (np.isfinite(self.ramp_fs) and self.ramp_fs >= 0):
            raise CouplingInputError(f"ramp_fs = {self.ramp_fs!r} on {self.boundary!r}: expected a time >= 0 fs")
        object.__setattr__(self, "velocity_A_ps", v)

    def rate(self, time_fs: float) -> float:
        """The fraction of the full velocity reached at ``time_fs``."""
        return 1.0 if time_fs >= self.ramp_fs else float(time_fs) / self.ramp_fs

    def travel_fs(self, time_fs: float) -> float:
        """``int_0^t ramp``: the distance (Å) moved by ``time_fs`` per Å/fs of full velocity."""
        t, r = float(time_fs), self.ramp_fs
        return t * t / (2 * r) if t < r else t - 0.5 * r


@dataclass(frozen=True)
class Pulse:
    """A longitudinal displacement pulse along ``axis`` (0, 1, 2): ``u_a = A g(x_a - x0)`` with a
    Gaussian envelope of standard deviation ``width_A``, times ``cos(2 pi (x_a - x0) /
    wavelength_A)`` when a wavelength is given (a wave packet) or alone (a broadband pulse), and
    the velocity of a wave running in ``direction`` (+1 or -1) at the speed given to
    :meth:`CoupledDynamics.launch`: ``v_a = -direction c A g'``. ``lateral``: the lateral strain
    per axial strain on each axis (``S_aj / S_aa`` for a bar wave, ``-nu``; zeros for a wave in
    a laterally confined medium): ``u_j = lateral_j (x_j - c_j) du_a/dx_a`` about
    ``lateral_centre_A`` (the section's centre), and its velocity likewise (Love's rod), so that
    a bar wave does not shed lateral vibrations. Lengths in Å."""

    axis: int
    centre_A: float
    width_A: float
    amplitude_A: float
    wavelength_A: float | None = None
    direction: int = 1
    lateral: tuple[float, float, float] = (0.0, 0.0, 0.0)
    lateral_centre_A: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        if self.axis not in (0, 1, 2):
            raise CouplingInputError(f"pulse axis = {self.axis!r}: expected 0, 1 or 2 (x, y, z)")
        if self.direction not in (1, -1):
            raise CouplingInputError(f"pulse direction = {self.direction!r}: expected +1 or -1")
        positive("pulse width_A", self.width_A, "a positive width in Å")
        if not np.isfinite(self.amplitude_A) or not np.isfinite(self.centre_A):
            raise CouplingInputError("pulse: expected a finite centre_A and amplitude_A (Å)")
        if self.wavelength_A is not None:
            positive("pulse wavelength_A", self.wavelength_A, "a positive wavelength in Å")
        if not (np.all(np.isfinite(self.lateral)) and np.all(np.isfinite(self.lateral_centre_A))):
            raise CouplingInputError("pulse: expected finite lateral ratios and a finite lateral centre")

    def shape(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``g``, ``g'`` (1/Å) and ``g''`` (1/Å^2) at coordinates ``x`` (Å) along the axis."""
        s = np.asarray(x, dtype=float) - self.centre_A
        e = np.exp(-0.5 * (s / self.width_A) ** 2)
        e1 = -s / self.width_A**2 * e
        e2 = (s**2 / self.width_A**4 - 1.0 / self.width_A**2) * e
        if self.wavelength_A is None:
            return e, e1, e2
        k = 2 * np.pi / self.wavelength_A
        c, sn = np.cos(k * s), np.sin(k * s)
        return e * c, e1 * c - k * e * sn, e2 * c - 2 * k * e1 * sn - k * k * e * c

    def fields(self, X: np.ndarray, speed_A_fs: float) -> tuple[np.ndarray, np.ndarray]:
        """Displacement (Å) and velocity (Å/fs) at the points ``X`` (k, 3) Å."""
        X = np.asarray(X, dtype=float)
        a = self.axis
        g, g1, g2 = self.shape(X[:, a])
        strain, strain_rate = self.amplitude_A * g1, -self.direction * speed_A_fs * self.amplitude_A * g2
        u, v = np.zeros_like(X), np.zeros_like(X)
        u[:, a] = self.amplitude_A * g
        v[:, a] = -self.direction * speed_A_fs * strain
        for j in range(3):
            if j != a and self.lateral[j]:
                arm = self.lateral[j] * (X[:, j] - self.lateral_centre_A[j])
                u[:, j], v[:, j] = arm * strain, arm * strain_rate
        return u, v
