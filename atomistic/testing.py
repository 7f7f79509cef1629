"""Reusable physics checks for any energy model (DESIGN V1-V3 and the body mask).

Inherit in a pytest class and provide ``make_model()`` (a float64 model with ``species``,
``cutoff``, ``angular_cutoff`` and ``atomic_energies``)::

    class TestMyModel(ModelChecks):
        def make_model(self):
            return MyModel(...)

Every future model inherits the same invariance, extensivity, gradient and masking checks.
Override ``lattice_constant`` (Å) to place the test crystals near the model's own minimum.
The checks run on the device named by the environment variable ``MULTISCALE_TEST_DEVICE``
(default "cpu"), so the same suite verifies the CUDA path on a GPU machine.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk
from ase.cluster import Icosahedron

from atomistic.potential.forces import evaluate as evaluate_atoms
from atomistic.potential.forces import hessian, hessian_vector_product, model_inputs
from atomistic.potential.models import model_device

TEST_DEVICE = os.environ.get("MULTISCALE_TEST_DEVICE", "cpu")




def evaluate(model, atoms: Atoms, stress: bool = False, mask_bodies: bool = True):
    """Energy (eV), forces (eV/Å) and stress (eV/Å^3) of one structure with ``model``."""
    p = evaluate_atoms(model, atoms, stress=stress, mask_bodies=mask_bodies)
    return (float(p.energy[0]), p.forces.detach().cpu().numpy(),
            None if p.stress is None else p.stress[0].detach().cpu().numpy())


def energy(model, atoms: Atoms, mask_bodies: bool = True) -> float:
    return evaluate(model, atoms, mask_bodies=mask_bodies)[0]


def fd_derivative(f, h: float) -> float:
    """Fourth-order central difference of f(t) (scalar or array) at t = 0."""
    return (f(-2 * h) - 8 * f(-h) + 8 * f(h) - f(2 * h)) / (12 * h)


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


class ModelChecks:
    """Mixin of pytest checks; see the module docstring."""

    lattice_constant = 3.6  # Å, fcc test crystals
    rattle = 0.08  # Å
    relative_tolerance = 1e-10  # V1, V2
    force_tolerance = 1e-6  # V3, eV/Å
    stress_tolerance = 1e-7  # V3, eV/Å^3

    def make_model(self):
        raise NotImplementedError

    def model(self):
        """``make_model()`` on the test device, float64."""
        return self.make_model().to(device=TEST_DEVICE, dtype=torch.float64)

    # --- test structures -----------------------------------------------------------------
    def periodic(self, seed: int = 0) -> Atoms:
        """A rattled, triclinic (primitive fcc) periodic crystal with every species present."""
        model = self.make_model()
        atoms = bulk(model.species[0], "fcc", a=self.lattice_constant).repeat((3, 2, 2))
        rng = np.random.default_rng(seed)
        atoms.set_chemical_symbols([model.species[k % len(model.species)] for k in range(len(atoms))])
        atoms.positions += rng.normal(scale=self.rattle, size=atoms.positions.shape)
        return atoms

    def cluster(self, seed: int = 1) -> Atoms:
        """A rattled 13-atom icosahedral cluster (no periodicity)."""
        model = self.make_model()
        atoms = Icosahedron(model.species[0], 2, latticeconstant=self.lattice_constant)
        rng = np.random.default_rng(seed)
        atoms.set_chemical_symbols([model.species[k % len(model.species)] for k in range(len(atoms))])
        atoms.positions += rng.normal(scale=self.rattle, size=atoms.positions.shape)
        atoms.pbc = False
        return atoms

    # --- V1: invariances -------------------------------------------------------------------
    def _check_invariance(self, atoms: Atoms, seed: int):
        model = self.model()
        rng = np.random.default_rng(seed)
        e0, f0, _ = evaluate(model, atoms)
        rot = random_rotation(rng)
        perm = rng.permutation(len(atoms))
        moved = atoms[perm]
        moved.positions = moved.positions @ rot.T + rng.normal(size=3) * 3.0
        if atoms.pbc.any():
            moved.set_cell(atoms.cell.array @ rot.T, scale_atoms=False)
        e1, f1, _ = evaluate(model, moved)
        assert abs(e1 - e0) <= self.relative_tolerance * max(abs(e0), 1.0), (e0, e1)
        np.testing.assert_allclose(f1, f0[perm] @ rot.T, atol=1e-9)

    def test_invariance_periodic(self):
        self._check_invariance(self.periodic(), seed=3)

    def test_invariance_cluster(self):
        self._check_invariance(self.cluster(), seed=4)

    # --- V2: extensivity -------------------------------------------------------------------
    def test_extensivity(self):
        model = self.model()
        for atoms in (bulk(model.species[0], "fcc", a=self.lattice_constant), self.periodic()):
            e1 = energy(model, atoms)
            e8 = energy(model, atoms.repeat(2))
            assert abs(e8 - 8 * e1) <= self.relative_tolerance * abs(8 * e1), (e1, e8)

    # --- V3: gradients ---------------------------------------------------------------------
    def test_forces_match_finite_differences(self):
        model = self.model()
        for atoms in (self.periodic(), self.cluster()):
            _, forces, _ = evaluate(model, atoms)
            rng = np.random.default_rng(5)
            for i in rng.choice(len(atoms), 4, replace=False):
                for c in range(3):
                    def e_of(t, i=i, c=c, atoms=atoms):
                        a = atoms.copy()
                        a.positions[i, c] += t
                        return energy(model, a)
                    fd = -fd_derivative(e_of, 1e-3)
                    assert abs(fd - forces[i, c]) < self.force_tolerance, (i, c, fd, forces[i, c])

    def test_stress_matches_finite_differences(self):
        model = self.model()
        atoms = self.periodic()
        _, _, sigma = evaluate(model, atoms, stress=True)
        volume = atoms.get_volume()
        for a, b in ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)):
            def e_of(t, a=a, b=b):
                eps = np.zeros((3, 3))
                eps[a, b] += t / 2
                eps[b, a] += t / 2
                s = atoms.copy()
                s.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
                return energy(model, s)
            fd = fd_derivative(e_of, 1e-4) / volume
            assert abs(fd - sigma[a, b]) < self.stress_tolerance, (a, b, fd, sigma[a, b])

    def test_hessian_symmetric_and_consistent(self):
        model = self.model()
        atoms = self.cluster()
        s, nbrs = model_inputs(model, atoms)
        h = hessian(model, s, nbrs).cpu()
        assert torch.isfinite(h).all()
        i, c = 2, 1  # one column against finite differences of the forces: H = -dF/dx

        def forces_of(t):
            a = atoms.copy()
            a.positions[i, c] += t
            return evaluate(model, a)[1].ravel()

        np.testing.assert_allclose(h[:, 3 * i + c].numpy(), -fd_derivative(forces_of, 1e-3), atol=1e-6)
        v = torch.randn(len(atoms), 3, dtype=h.dtype, generator=torch.Generator().manual_seed(0))
        hv = hessian_vector_product(model, s, nbrs, v.to(model_device(model))).cpu()
        np.testing.assert_allclose(hv.reshape(-1).numpy(), (h @ v.reshape(-1)).numpy(), atol=1e-9)

    def test_energy_smooth_at_cutoff(self):
        """A dimer pulled through the cutoff: energy and force go continuously to the isolated values."""
        model = self.model()
        sym = model.species[0]
        isolated = energy(model, Atoms(sym, positions=[[0, 0, 0]])) * 2
        rc = model.cutoff
        for r in (rc - 1e-6, rc + 1e-6):
            e, f, _ = evaluate(model, Atoms(sym * 2, positions=[[0, 0, 0], [r, 0, 0]]))
            assert abs(e - isolated) < 1e-9 and np.abs(f).max() < 1e-9

    # --- masking (DESIGN §5) -----------------------------------------------------------------
    def test_masked_bodies_are_additive(self):
        model = self.model()
        lower = self.periodic(seed=7)
        upper = lower.copy()
        upper.positions += np.array([0.3, 0.2, 0.0]) + 0.5 * lower.cell[2]  # interpenetrating
        both = lower + upper
        both.arrays["body"] = np.repeat([0, 1], len(lower))
        e_ab = energy(model, both)
        e_a, e_b = energy(model, lower), energy(model, upper)
        assert abs(e_ab - (e_a + e_b)) <= 1e-10 * max(abs(e_a + e_b), 1.0), (e_ab, e_a + e_b)
        assert abs(energy(model, both, mask_bodies=False) - (e_a + e_b)) > 1e-6  # the mask matters
