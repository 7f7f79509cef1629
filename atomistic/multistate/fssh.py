"""Fewest-switches surface hopping (J. C. Tully, J. Chem. Phys. 93, 1061 (1990)), many
trajectories batched on the device.

Units are ASE's: positions Å, momenta amu Å/fs at the API, energies eV, time fs.

One step of length dt, for every trajectory at once:

1. velocity Verlet on the active adiabatic surface (Hellmann–Feynman forces of the model);
2. the adiabatic states at the new geometry, eigenvector signs aligned with the previous step
   (their sign is arbitrary, and a flip would flip the couplings: this is the phase tracking);
3. the amplitudes ``c`` propagated exactly over dt under the midpoint Hamiltonian
   ``i hbar dc/dt = (E - i hbar D) c`` with ``D_kl = d_kl . v`` (a unitary matrix exponential);
4. hops from the active state a to j with probability ``g_aj = max(0, -2 dt D_ja Re(c_j* c_a) / |c_a|^2)``,
   one uniform number per trajectory; a hop rescales the momentum along ``d_aj`` to conserve
   the total energy, and a hop without enough kinetic energy is frustrated (kept on a; with
   ``frustrated = "reverse"`` the momentum component along ``d_aj`` is reversed);
5. optionally a decoherence correction, after which ``c_a`` is renormalised:
   ``"edc"``, the energy-based correction of Granucci and Persico (J. Chem. Phys. 126, 134114
   (2007)): ``c_j *= exp(-dt / tau_j)`` for j != a, ``tau_j = hbar / |E_j - E_a| (1 + C / E_kin)``,
   C = 0.1 hartree; or ``"instantaneous"``: ``c_j = 0`` wherever state j is uncoupled from the
   active state, ``hbar |d_aj . v| / |E_j - E_a| <= coupling_ratio`` (the wave packets have parted
   once the coupling region is left; the scheme of the model-3 reference in
   docs/references/tully_models.md).

A swarm is checkpointed with :func:`save_checkpoint` (its whole state: the adiabatic states the next
step starts from, the amplitudes, the random generator's state, the step counter; and the records
so far) and continued bit for bit from :meth:`SurfaceHopping.from_state_dict`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from ase import units

from atomistic.atomic_files import atomic_path
from atomistic.errors import CheckpointMismatch
from atomistic.multistate.adiabatic import AdiabaticStates, adiabatic_states

log = logging.getLogger(__name__)

#: hbar in eV x ASE time units
HBAR = units._hbar * units.J * units.s
#: Granucci–Persico's decoherence constant, 0.1 hartree in eV
EDC_C = 0.1 * units.Hartree


DECOHERENCE = ("none", "edc", "instantaneous")
#: the records :meth:`SurfaceHopping.run` keeps, one entry per record
RECORDS = ("time_fs", "surface", "electronic", "accepted", "frustrated")
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class FSSHSettings:
    """``timestep_fs``; ``decoherence``: "none", "edc" or "instantaneous" (with
    ``coupling_ratio``, dimensionless); ``frustrated``: "keep" or "reverse"; ``degeneracy_eV``:
    where couplings are regularised (:func:`adiabatic_states`); ``seed`` of the hops' random
    numbers."""

    timestep_fs: float = 0.05
    decoherence: str = "none"
    frustrated: str = "keep"
    degeneracy_eV: float = 1e-6
    seed: int = 0
    coupling_ratio: float = 0.01

    def __post_init__(self):
        if not self.timestep_fs > 0:
            raise ValueError(f"timestep_fs must be positive, got {self.timestep_fs}")
        if self.decoherence not in DECOHERENCE:
            raise ValueError(f"decoherence must be one of {DECOHERENCE}, got {self.decoherence!r}")
        if not self.coupling_ratio >= 0:
            raise ValueError(f"coupling_ratio must be >= 0, got {self.coupling_ratio}")
        if self.frustrated not in ("keep", "reverse"):
            raise ValueError(f"frustrated must be 'keep' or 'reverse', got {self.frustrated!r}")


@dataclass
class HopCounts:
    """accepted[a, j] and frustrated[a, j]: hop attempts from state a to j over the run."""

    accepted: torch.Tensor
    frustrated: torch.Tensor


@dataclass
class SurfaceHopping:
    """The state of a batch of T trajectories of N atoms on ``model``'s n states.

    positions (T, N, 3) Å; momenta (T, N, 3) amu Å/fs; masses (N,) amu; active (T,) state
    index; amplitudes (T, n) complex; states: the adiabatic states at ``positions``, eigenvector
    signs aligned along the trajectory (the next step starts from them); steps_done: steps taken.
    Build with :meth:`start` (or :meth:`from_state_dict`); advance with :meth:`step`.
    """

    model: object
    settings: FSSHSettings
    positions: torch.Tensor
    momenta: torch.Tensor  # kept in amu Å / (ASE time unit)
    masses: torch.Tensor
    active: torch.Tensor
    amplitudes: torch.Tensor
    states: AdiabaticStates
    time_fs: float = 0.0
    hops: HopCounts | None = None
    generator: torch.Generator | None = field(default=None, repr=False)
    #: trajectory-steps spent within ``degeneracy_eV`` of a degeneracy (a device counter)
    near_degenerate: torch.Tensor | None = None
    steps_done: int = 0

    @classmethod
    def start(cls, model, positions: torch.Tensor, momenta_amu_A_fs: torch.Tensor, masses_amu,
              state: int | torch.Tensor, settings: FSSHSettings) -> SurfaceHopping:
        """Trajectories at ``positions`` with ``momenta`` (amu Å/fs), all amplitude on ``state``."""
        pos = positions.detach().clone()
        masses = torch.as_tensor(masses_amu, dtype=pos.dtype, device=pos.device)
        states = adiabatic_states(model, pos, degeneracy_eV=settings.degeneracy_eV)
        t, n = len(pos), states.energies.shape[1]
        near = torch.zeros((), dtype=torch.long, device=pos.device)
        active = torch.as_tensor(state, device=pos.device).expand(t).clone().long()
        amplitudes = torch.zeros(t, n, dtype=torch.complex128 if pos.dtype == torch.float64 else torch.complex64,
                                 device=pos.device)
        amplitudes[torch.arange(t), active] = 1.0
        generator = torch.Generator(device=pos.device)
        generator.manual_seed(settings.seed)
        zeros = torch.zeros(n, n, dtype=torch.long, device=pos.device)
        return cls(model=model, settings=settings, positions=pos, momenta=momenta_amu_A_fs.detach().clone() / units.fs,
                   masses=masses, active=active, amplitudes=amplitudes, states=states,
                   hops=HopCounts(zeros.clone(), zeros.clone()), generator=generator, near_degenerate=near)

    def state_dict(self) -> dict:
        """Everything the next step reads, on the host, as tensors and plain values (what
        ``torch.load(weights_only=True)`` reads back): settings, positions, momenta (amu Å per ASE
        time unit), masses, active states, amplitudes, the adiabatic states of the last step (their
        eigenvector signs come from the trajectory's history: recomputing them could flip one),
        hop counts, the near-degeneracy counter, time, step counter and the generator's state."""
        host = lambda t: t.detach().cpu().clone()  # noqa: E731
        return {"settings": asdict(self.settings), "positions": host(self.positions), "momenta": host(self.momenta),
                "masses": host(self.masses), "active": host(self.active), "amplitudes": host(self.amplitudes),
                "states": {f.name: host(getattr(self.states, f.name)) for f in fields(self.states)},
                "accepted": host(self.hops.accepted), "frustrated": host(self.hops.frustrated),
                "near_degenerate": host(self.near_degenerate), "time_fs": self.time_fs, "steps_done": self.steps_done,
                "rng": self.generator.get_state().cpu()}

    @classmethod
    def from_state_dict(cls, model, state: dict, device: str | torch.device | None = None) -> SurfaceHopping:
        """The swarm of :meth:`state_dict` on ``device`` (default: the CPU), driven by ``model``:
        its next step is the one the saved swarm would have taken."""
        device = torch.device("cpu" if device is None else device)
        dev = lambda t: t.to(device)  # noqa: E731
        generator = torch.Generator(device=device)
        generator.set_state(state["rng"])
        return cls(model=model, settings=FSSHSettings(**state["settings"]), positions=dev(state["positions"]),
                   momenta=dev(state["momenta"]), masses=dev(state["masses"]), active=dev(state["active"]),
                   amplitudes=dev(state["amplitudes"]),
                   states=AdiabaticStates(**{k: dev(v) for k, v in state["states"].items()}),
                   time_fs=float(state["time_fs"]), hops=HopCounts(dev(state["accepted"]), dev(state["frustrated"])),
                   generator=generator, near_degenerate=dev(state["near_degenerate"]),
                   steps_done=int(state["steps_done"]))

    # --- observables ---------------------------------------------------------------------------
    def kinetic_energy(self) -> torch.Tensor:
        """(T,) eV."""
        return 0.5 * (self.momenta**2 / self.masses[None, :, None]).sum((1, 2))

    def potential_energy(self) -> torch.Tensor:
        """(T,) eV, the active state's."""
        return self.states.energies.gather(1, self.active[:, None])[:, 0]

    def total_energy(self) -> torch.Tensor:
        return self.kinetic_energy() + self.potential_energy()

    def momenta_amu_A_fs(self) -> torch.Tensor:
        return self.momenta * units.fs

    def populations(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(n,) fraction of trajectories on each state, and (n,) mean |c_k|^2."""
        n = self.amplitudes.shape[1]
        surface = torch.bincount(self.active, minlength=n).to(self.positions.dtype) / len(self.active)
        return surface, (self.amplitudes.abs() ** 2).mean(0).real

    def run(self, steps: int, record_every: int = 10, until=None, progress: bool = False, *,
            history: dict | None = None, checkpoint_every: int = 0,
            checkpoint: Callable[[SurfaceHopping, dict], None] | None = None) -> dict:
        """Advance to ``steps`` steps in all (a swarm from :meth:`from_state_dict` continues from
        its ``steps_done``), or until ``until(self)`` is True at a record, recording at every
        multiple of ``record_every`` steps and at the last: ``time_fs``, ``surface`` (fraction of
        trajectories on each state), ``electronic`` (mean |c_k|^2), ``accepted`` and ``frustrated``
        (cumulative hop counts ``[from][to]``), as lists; ``hops``: the final accepted and
        frustrated counts. ``history``: the records of the steps before (a checkpoint's), continued
        (else the state now is the first record). ``checkpoint(self, history)`` is called after
        every multiple of ``checkpoint_every`` steps, except at a record where ``until`` stops the
        run. Steps run on the device without synchronising; near-degeneracies are reported (a
        warning) at the records. ``progress``: a tqdm bar."""
        from tqdm.auto import tqdm

        warned = int(self.near_degenerate)

        def record():
            nonlocal warned
            surface, electronic = self.populations()
            history["time_fs"].append(self.time_fs)
            history["surface"].append(surface.tolist())
            history["electronic"].append(electronic.tolist())
            history["accepted"].append(self.hops.accepted.tolist())
            history["frustrated"].append(self.hops.frustrated.tolist())
            near = int(self.near_degenerate)
            if near > warned:
                log.warning("%d trajectory-steps came within %.1e eV of a degeneracy by t = %.1f fs: their "
                            "couplings were regularised", near - warned, self.settings.degeneracy_eV, self.time_fs)
                warned = near

        if history is None:
            history = {key: [] for key in RECORDS}
            record()
        else:
            history = {key: list(history[key]) for key in RECORDS}
        first = self.steps_done
        with tqdm(total=max(0, steps - first), desc="FSSH", unit="step", disable=not progress, leave=False) as bar:
            while self.steps_done < steps:
                self.step()
                k = self.steps_done
                if k % record_every == 0 or k == steps:
                    record()
                    bar.update(k - first - bar.n)
                    if until is not None and until(self):
                        break
                if checkpoint is not None and checkpoint_every and k % checkpoint_every == 0:
                    checkpoint(self, history)
        history["hops"] = {"accepted": self.hops.accepted.tolist(), "frustrated": self.hops.frustrated.tolist()}
        return history

    # --- the step ------------------------------------------------------------------------------
    def _force(self, states: AdiabaticStates) -> torch.Tensor:
        t = torch.arange(len(self.active), device=self.active.device)
        return states.forces[t, self.active]

    def step(self) -> None:
        s = self.settings
        dt = s.timestep_fs * units.fs
        m = self.masses[None, :, None]
        old = self.states
        v_old = self.momenta / m
        self.momenta = self.momenta + 0.5 * dt * self._force(old)
        self.positions = self.positions + dt * self.momenta / m
        new = adiabatic_states(self.model, self.positions, degeneracy_eV=s.degeneracy_eV, warn=False)
        self.near_degenerate = self.near_degenerate + (new.min_gap < s.degeneracy_eV).sum()
        _align(new, old)
        self.momenta = self.momenta + 0.5 * dt * self._force(new)
        v_new = self.momenta / m
        self._propagate(old, new, v_old, v_new, dt)
        self.states = new
        self._hop(new, v_new, dt)
        if s.decoherence != "none":
            self._decohere(dt, v_new)
        self.time_fs += s.timestep_fs
        self.steps_done += 1

    def _propagate(self, old: AdiabaticStates, new: AdiabaticStates, v_old, v_new, dt) -> None:
        energies = 0.5 * (old.energies + new.energies)
        d_dot_v = 0.5 * (torch.einsum("bklac,bac->bkl", old.couplings, v_old)
                         + torch.einsum("bklac,bac->bkl", new.couplings, v_new))
        self._d_dot_v = d_dot_v
        h_eff = torch.diag_embed(energies / HBAR).to(self.amplitudes.dtype) - 1j * d_dot_v.to(self.amplitudes.dtype)
        u = torch.linalg.matrix_exp(-1j * dt * h_eff)
        self.amplitudes = torch.einsum("bkl,bl->bk", u, self.amplitudes)

    def _hop(self, states: AdiabaticStates, velocity, dt) -> None:
        t = torch.arange(len(self.active), device=self.active.device)
        c = self.amplitudes
        ca = c[t, self.active]
        n = c.shape[1]
        d_ja = self._d_dot_v.gather(2, self.active[:, None, None].expand(-1, n, 1))[..., 0]  # (T, n): D_ja
        g = (-2.0 * dt * d_ja * (c.conj() * ca[:, None]).real
             / (ca.abs() ** 2).clamp_min(1e-300)[:, None]).clamp_min(0.0)
        g[t, self.active] = 0.0
        xi = torch.rand(len(t), generator=self.generator, device=g.device, dtype=g.dtype)
        cumulative = torch.cumsum(g, dim=1)
        chosen = (cumulative > xi[:, None]).to(torch.int8).argmax(1)
        attempt = cumulative[:, -1] > xi
        a, j = self.active, chosen
        direction = states.couplings[t, a, j]  # (T, N, 3), the hop's momentum direction
        m = self.masses[None, :, None]
        de = states.energies[t, j] - states.energies[t, a]
        qa = 0.5 * (direction**2 / m).sum((1, 2))
        qb = (self.momenta * direction / m).sum((1, 2))
        disc = qb**2 - 4 * qa * de
        ok = attempt & (disc >= 0) & (qa > 0)
        root = torch.sqrt(disc.clamp_min(0.0))
        gamma = torch.where(qb >= 0, (qb - root), (qb + root)) / (2 * qa.clamp_min(1e-300))
        self.momenta = torch.where(ok[:, None, None], self.momenta - gamma[:, None, None] * direction, self.momenta)
        frustrated = attempt & ~ok
        if self.settings.frustrated == "reverse":
            along = (self.momenta * direction / m).sum((1, 2)) / (2 * qa.clamp_min(1e-300))
            self.momenta = torch.where(frustrated[:, None, None],
                                       self.momenta - 2 * along[:, None, None] * direction, self.momenta)
        pair = a * n + j  # counted with scatter_add: no boolean indexing, no host synchronisation
        self.hops.accepted.view(-1).scatter_add_(0, pair, ok.long())
        self.hops.frustrated.view(-1).scatter_add_(0, pair, frustrated.long())
        self.active = torch.where(ok, j, a)

    def _decohere(self, dt, velocity) -> None:
        t = torch.arange(len(self.active), device=self.active.device)
        e = self.states.energies
        gap = (e - e[t, self.active][:, None]).abs().clamp_min(1e-300)
        if self.settings.decoherence == "edc":
            ke = self.kinetic_energy().clamp_min(1e-12)
            damp = torch.exp(-dt * gap / HBAR / (1.0 + EDC_C / ke[:, None]))
        else:  # instantaneous, where the active state is uncoupled from j
            d_aj = torch.einsum("bjac,bac->bj", self.states.couplings[t, self.active], velocity).abs()
            damp = (HBAR * d_aj / gap > self.settings.coupling_ratio).to(e.dtype)
        damp[t, self.active] = 1.0
        c = self.amplitudes * damp
        others = (c.abs() ** 2).sum(1) - c[t, self.active].abs() ** 2
        ca = c[t, self.active]
        scale = torch.sqrt((1.0 - others).clamp_min(0.0)) / ca.abs().clamp_min(1e-300)
        c[t, self.active] = ca * scale
        self.amplitudes = c


def _align(new: AdiabaticStates, old: AdiabaticStates) -> None:
    """Flip the signs of ``new``'s eigenvectors that point against ``old``'s, and its couplings
    with them, in place (phase tracking along the trajectory)."""
    overlap = torch.einsum("bik,bik->bk", new.vectors, old.vectors)
    sign = torch.where(overlap < 0, -1.0, 1.0).to(new.vectors.dtype)
    new.vectors.mul_(sign[:, None, :])
    new.couplings.mul_((sign[:, :, None] * sign[:, None, :])[..., None, None])


def save_checkpoint(path: str | os.PathLike, swarm: SurfaceHopping, history: dict, *,
                    extra: dict | None = None) -> Path:
    """Write ``swarm`` (:meth:`SurfaceHopping.state_dict`), the records of its run so far
    (``history`` as :meth:`SurfaceHopping.run` keeps it) and ``extra`` (tensors and plain values,
    the caller's own) to ``path`` atomically (a temporary file beside it, then a rename)."""
    records = {"time_fs": torch.tensor(history["time_fs"], dtype=torch.float64),
               "surface": torch.tensor(history["surface"], dtype=torch.float64),
               "electronic": torch.tensor(history["electronic"], dtype=torch.float64),
               "accepted": torch.tensor(history["accepted"], dtype=torch.long),
               "frustrated": torch.tensor(history["frustrated"], dtype=torch.long)}
    payload = {"version": CHECKPOINT_VERSION, "swarm": swarm.state_dict(), "history": records, "extra": extra or {}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint of :func:`save_checkpoint` (``torch.load(weights_only=True)``, on the host):
    ``swarm`` for :meth:`SurfaceHopping.from_state_dict`, ``history`` for
    :meth:`SurfaceHopping.run` (as lists again), ``extra``."""
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except OSError:
        raise
    except Exception as exc:  # a file that is not a checkpoint (or holds more than tensors): one line
        raise CheckpointMismatch(f"{path}: not a surface-hopping checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointMismatch(f"{path}: not a surface-hopping checkpoint of version {CHECKPOINT_VERSION}")
    payload["history"] = {key: payload["history"][key].tolist() for key in RECORDS}
    return payload


#: one atomic unit of momentum (hbar / bohr) in amu Å/fs
AU_MOMENTUM = units._hbar / (units.Bohr * 1e-10) / units._amu * 1e-5
