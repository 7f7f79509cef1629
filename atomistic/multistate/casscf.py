"""Multi-state reference data from state-averaged CASSCF (PySCF), behind the oracle interface.

``SACASSCF`` is an ASE calculator: for a geometry it runs RHF, picks the active orbitals by
projection onto the atomic orbitals named in ``active`` (PySCF's AVAS), and solves an
equal-weight state-averaged CASSCF over ``n_states`` singlet (or ``spin``) states, from two
starting orbital sets, keeping the lower state-averaged solution; PySCF runs on one thread here,
which makes the labels reproducible. It returns,
in ASE units,

    energies            (n,) eV, ascending
    state_forces        (n, N, 3) eV/Å, analytic SA-CASSCF gradients of every state
    coupling_numerators (n, n, N, 3) eV/Å, g_kl = (E_l - E_k) <k|d/dR|l>, analytic, with the
                        electron-translation factors of Fatehi and Subotnik (translation
                        invariant; sign arbitrary, as the phase-free loss expects)

and, as ``energy``/``forces``, those of state ``state``. :func:`label_states` stores them on a
copy of the atoms (``info["state_energies"]``, ``arrays["state_forces"]``,
``arrays["coupling_numerators"]``), which extxyz keeps; give it to :class:`~atomistic.active.Oracle`
as its ``labeller`` to get the oracle's time-outs, worker process and failure classification.
:meth:`MultiStateData.from_frames` turns labelled frames into training data.

LiF is the textbook case: the covalent Li(2s) F(2p) and ionic Li+ F- singlets cross as the bond
stretches; ``CASSCFSpec()`` (6-31G, active Li 2s and F 2p_z, bond along z) puts the avoided
crossing near 3.4 Å (gap ~1.5 eV; CASSCF in this basis underbinds F-, so it sits well inside
the experimental ~7 Å). Both states are held to Σ+ symmetry (``symmetry="A1"``): without it
the two-orbital space has competing solutions (a π orbital rotates in and the states lose
their coupling) that win at some bond lengths and not at others. A linear molecule is turned
onto z before the orbitals are chosen and its gradients turned back, so the labels do not
depend on its orientation.

Needs PySCF (``pip install 'multiscale[oracles]'``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import CalculationFailed, Calculator, all_changes
from ase.units import Bohr, Hartree

from atomistic.training.data import label


@dataclass(frozen=True)
class CASSCFSpec:
    """Settings of :class:`SACASSCF`; calling the spec builds the calculator (picklable, so the
    oracle can build it in a worker process). ``basis`` (PySCF name), ``active`` (AVAS atomic
    orbital labels, e.g. ``("Li 2s", "F 2pz")``), ``n_states``, ``charge`` (e), ``spin``
    (2S), ``symmetry`` (the PySCF irrep every state must have, e.g. "A1" for the Σ+ states of a
    linear molecule; None: no symmetry), ``state`` (reported as energy/forces), ``couplings``
    (compute g_kl), ``max_cycle``,
    ``conv_tol`` (hartree; 1e-10 gives state gradients that match finite differences to
    1e-4 relative), ``timeout_s`` (for the oracle's worker, None: no limit)."""

    name: str = "sa-casscf"
    basis: str = "6-31g"
    active: tuple[str, ...] = ("Li 2s", "F 2pz")
    n_states: int = 2
    charge: int = 0
    spin: int = 0
    symmetry: str | None = "A1"
    state: int = 0
    couplings: bool = True
    max_cycle: int = 100
    conv_tol: float = 1e-10
    timeout_s: float | None = None

    def __post_init__(self):
        if self.n_states < 2:
            raise ValueError(f"oracle.n_states must be >= 2, got {self.n_states}")
        if not 0 <= self.state < self.n_states:
            raise ValueError(f"oracle.state must be in [0, {self.n_states}), got {self.state}")
        if not self.active:
            raise ValueError("oracle.active must name at least one atomic orbital, e.g. ['Li 2s', 'F 2pz']")
        if self.spin < 0:
            raise ValueError(f"oracle.spin must be >= 0, got {self.spin}")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"oracle.timeout_s must be positive (or left out), got {self.timeout_s}")
        require_pyscf()

    def __call__(self) -> SACASSCF:
        return SACASSCF(self)


def require_pyscf() -> None:
    try:
        import pyscf  # noqa: F401
    except ImportError:
        raise ValueError("the sa-casscf oracle needs PySCF: pip install 'multiscale[oracles]' (or pip install pyscf)") \
            from None


class SACASSCF(Calculator):
    """State-averaged CASSCF energies, gradients and couplings of every state (module docstring)."""

    implemented_properties = ["energy", "forces", "energies", "state_forces", "coupling_numerators"]

    def __init__(self, spec: CASSCFSpec | None = None, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec or CASSCFSpec()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        from pyscf import lib

        rotation = _linear_frame(self.atoms.positions)
        with lib.with_omp_threads(1):  # threaded sums can steer SA-CASSCF to another solution
            mc = self._solve(self.atoms.positions @ rotation.T)
            self._derivatives(mc, rotation)

    def _solve(self, positions: np.ndarray):
        """SA-CASSCF from two starts (AVAS orbitals as projected, and canonicalised); the
        solution with the lower state-averaged energy wins (SA-CASSCF has several stationary
        points, and a single start lands on a higher one at some geometries)."""
        from pyscf import gto, mcscf, scf
        from pyscf.mcscf import avas

        s = self.spec
        mol = gto.M(atom=[(sym, tuple(p)) for sym, p in zip(self.atoms.get_chemical_symbols(), positions)],
                    unit="Angstrom", basis=s.basis, charge=s.charge, spin=s.spin, symmetry=s.symmetry is not None,
                    verbose=0)
        mf = scf.RHF(mol) if s.spin == 0 else scf.ROHF(mol)
        mf.conv_tol = min(1e-10, s.conv_tol)
        mf.kernel()
        if not mf.converged:
            raise CalculationFailed("SCF not converged")
        n = s.n_states
        best = None
        for canonical in (False, True):
            ncas, nelecas, orbitals = avas.avas(mf, list(s.active), canonicalize=canonical, verbose=0)
            mc = mcscf.CASSCF(mf, ncas, nelecas).state_average_([1.0 / n] * n)
            mc.fix_spin_(ss=0.5 * s.spin * (0.5 * s.spin + 1))
            mc.max_cycle_macro, mc.conv_tol = s.max_cycle, s.conv_tol
            if s.symmetry is not None:
                mc.fcisolver.wfnsym = s.symmetry
            try:
                mc.kernel(orbitals)
            except Exception as exc:  # e.g. no state of the requested symmetry in the active space
                raise CalculationFailed(f"SA-CASSCF failed: {type(exc).__name__}: {exc}") from exc
            if mc.converged and (best is None or mc.e_tot < best.e_tot - 1e-9):
                best = mc
        if best is None:
            raise CalculationFailed("SA-CASSCF not converged")
        return best

    def _derivatives(self, mc, rotation) -> None:
        s = self.spec
        n = s.n_states
        energies = np.asarray(mc.e_states) * Hartree
        order = np.argsort(energies)
        if not np.array_equal(order, np.arange(n)):
            raise CalculationFailed(f"SA-CASSCF roots out of order: {energies}")
        forces = np.stack([-mc.nuc_grad_method().kernel(state=k) for k in range(n)]) * (Hartree / Bohr) @ rotation
        numerators = np.zeros((n, n, len(self.atoms), 3))
        if s.couplings:
            nac = mc.nac_method()
            nac.mult_ediff, nac.use_etfs = True, True
            for k in range(n):
                for m in range(k + 1, n):
                    g = nac.kernel(state=(m, k)) * (Hartree / Bohr) @ rotation
                    numerators[k, m], numerators[m, k] = g, -g
        self.results = {"energies": energies, "state_forces": forces, "coupling_numerators": numerators,
                        "energy": float(energies[s.state]), "forces": forces[s.state]}


def _linear_frame(positions: np.ndarray) -> np.ndarray:
    """A rotation R (3, 3) that turns a linear molecule's axis onto z (``positions @ R.T``), so
    that orbital labels like "F 2pz" mean the σ orbitals whatever its orientation; the identity
    for non-linear molecules (whose labels refer to the frame given)."""
    centred = positions - positions.mean(0)
    if len(positions) < 2:
        return np.eye(3)
    _, sv, vt = np.linalg.svd(centred)
    if len(sv) > 1 and sv[1] > 1e-6 * max(sv[0], 1e-12):
        return np.eye(3)
    axis = vt[0] * np.sign(vt[0] @ (positions[-1] - positions[0]) or 1.0)
    z = np.array([0.0, 0.0, 1.0])
    v, c = np.cross(axis, z), float(axis @ z)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def label_states(atoms: Atoms, calc, stress: bool = False) -> Atoms:
    """A copy of ``atoms`` labelled by a multi-state calculator (``energies``, ``state_forces``
    and ``coupling_numerators`` in its results): the reported state's energy and forces as usual,
    all states in ``info``/``arrays`` (module docstring). ``stress`` is not supported."""
    a = atoms.copy()
    a.calc = calc
    energy, forces = a.get_potential_energy(), a.get_forces()
    results = calc.results
    energies = np.asarray(results["energies"], dtype=float)
    state_forces = np.asarray(results["state_forces"], dtype=float)
    numerators = np.asarray(results["coupling_numerators"], dtype=float)
    if not (np.isfinite(energies).all() and np.isfinite(state_forces).all() and np.isfinite(numerators).all()):
        raise CalculationFailed("non-finite multi-state results")
    out = label(atoms, energy, forces)
    n, count = len(energies), len(atoms)
    rows, cols = np.triu_indices(n, 1)
    out.info["state_energies"] = energies
    out.arrays["state_forces"] = state_forces.transpose(1, 0, 2).reshape(count, 3 * n)
    out.arrays["coupling_numerators"] = numerators[rows, cols].transpose(1, 0, 2).reshape(count, -1)
    return out
