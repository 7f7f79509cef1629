"""The coupled problem (issue 5): DESIGN V7-V11, the exact gradient, and bad input.

Bars and cubes of Cu from the shipped NN-PES, the continuum its Cauchy-Born material (C and C3
from the same model). Lengths Å, energies eV, forces eV/Å. The numbers these tests print
(``pytest -s``) are the tables of ``docs/verification.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dolfinx_solver", reason="the finite-element stack is an optional extra")

from mpi4py import MPI  # noqa: E402

from continuum.boundary import Displacement  # noqa: E402
from continuum.interface import InterfaceLaw  # noqa: E402
from continuum.problem import StaticProblem  # noqa: E402
from coupling.cohesive_law import separation_curve  # noqa: E402
from coupling.errors import CouplingInputError  # noqa: E402
from coupling.handshake import Handshake  # noqa: E402
from coupling.problem import CoupledProblem  # noqa: E402
from tests.coupling_cases import (  # noqa: E402
    CUTOFF_A,
    STRAINS,
    bar_atoms,
    bar_domain,
    bar_geometry,
    bonded_bars,
    cu_crystal,
    full_atomistic_void,
    patch_test,
    void_response,
)

COMM = MPI.COMM_SELF


@pytest.fixture(scope="module")
def cu(model):
    """(Cauchy-Born material, lattice constant Å) of the model's Cu."""
    return cu_crystal(model)


@pytest.fixture(scope="module")
def law(model, cu):
    """UBER fit of the model's rigid Cu(100) separation curve."""
    return separation_curve(model, "Cu", cu[1], plane="100").uber()


# -- V7: the patch test -------------------------------------------------------------------------
@pytest.mark.parametrize("ramp", ["linear", "c1"])
def test_patch_test_residuals_fall_as_the_handshake_widens(model, cu, ramp):
    material, a0 = cu
    widths = (1, 2, 4, 8)
    table = {k: patch_test(model, material, a0, k * CUTOFF_A, ramp) for k in widths}
    for strain in STRAINS:
        for kind in ("raw", "corrected"):
            for where, label in enumerate(("free atoms", "nodes")):
                r = [table[k][strain, kind][where] for k in widths]
                print(ramp, strain, kind, label, " ".join(f"{v:.2e}" for v in r))
                if kind == "raw":  # the blending's ghost forces fall steadily with the width
                    assert all(b < a for a, b in zip(r, r[1:])), (strain, label, r)
                else:  # what the correction leaves falls too (up to the lattice's phase at the ramp's ends)
                    assert r[-1] < r[0], (strain, label, r)
            if ramp == "c1" and kind == "corrected":
                assert max(table[4][strain, kind]) < 1e-3, (strain, table[4][strain, kind])


# -- V8: energy under uniform strain ------------------------------------------------------------
def test_coupled_energy_under_uniform_strain_is_W_times_volume(model, cu):
    material, a0 = cu
    cube = bar_geometry(a0, handshake_A=CUTOFF_A, embedded=True, continuum_cells=2)
    domain = bar_domain(COMM, cube)
    problem = CoupledProblem(domain, {"body1": material}, bar_atoms(cube), model, cube.handshake)
    continuum = StaticProblem(domain, {"body1": material})  # int W(F) dV = W(F) * volume
    reference = problem.energies()["total"]
    assert problem.regions()["free"] > 0 and problem.regions()["handshake"] > 0
    for name, strain in {**STRAINS, "compression": -STRAINS["uniaxial"]}.items():
        problem.set_displacement(lambda X, s=strain: X @ s.T)
        continuum.u.interpolate(lambda x, s=strain: s @ x)
        coupled, exact = problem.energies()["total"] - reference, continuum.energies()["total"]
        print(name, coupled, exact, coupled / exact - 1)
        assert coupled == pytest.approx(exact, rel=1e-3)


# -- V9: adhesion counted once ------------------------------------------------------------------
def test_pull_off_work_is_W_sep_times_area_and_unmasked_atoms_count_it_twice(model, cu, law):
    material, a0 = cu
    results = {}
    for mask in (True, False):
        energy = []
        for pull in (0.0, 8.0):  # bonded; separated far beyond the law's range (8 Å, 19 lengths)
            problem, bar = bonded_bars(COMM, model, material, a0, law, pull, mask_bodies=mask)
            if pull:  # start from the upper bar moved rigidly: the separated equilibrium is near
                problem.set_displacement(lambda X, d=pull: np.tile([0.0, d, 0.0], (len(X), 1)), body="body2")
            energy.append(problem.solve(1)[-1].energies_eV)
        area = bar.length * bar.width
        results[mask] = (energy[1]["total"] - energy[0]["total"]) / (law.W_sep_eV_A2 * area)
        print(f"mask_bodies={mask}: pull-off work / (W_sep * area) = {results[mask]:.5f}",
              {k: round(energy[1][k], 4) for k in energy[1]})
    assert results[True] == pytest.approx(1.0, abs=0.02)
    # atoms bonded across the interface add their own adhesion where beta > 0: the excess shows
    assert results[False] > 1.05


# -- V10: coupled vs fully atomistic --------------------------------------------------------------
def test_coupled_solution_approaches_the_full_atomistic_one(model, cu):
    """A void (radius 3 Å) in a cube of 14^3 unit cells under 1 % hydrostatic strain: the response
    of the atoms within 6 Å of the void, coupled against fully atomistic, as the core grows."""
    material, a0 = cu
    reference = full_atomistic_void(model, a0)
    errors = [void_response(model, material, a0, core, reference) for core in (2, 4, 6)]
    for core, (max_err, rms_err, atoms) in zip((2, 4, 6), errors):
        print(f"core {core} unit cells, {atoms} atoms: max {max_err:.3e} Å, rms {rms_err:.3e} Å")
    maxima, rms = [e[0] for e in errors], [e[1] for e in errors]
    assert maxima[0] > maxima[1] > maxima[2] and rms[0] > rms[1] > rms[2]
    assert maxima[2] < 0.2 * maxima[0]


# -- V11: one rank and two ----------------------------------------------------------------------
def test_one_and_two_ranks_give_the_same_coupled_energy():
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip("no mpiexec beside this Python")
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1")
    energies = {}
    for ranks in (1, 2):
        out = subprocess.run([str(mpiexec), "-n", str(ranks), sys.executable, str(root / "tests" / "coupling_cases.py"),
                              "pull"], capture_output=True, text=True, timeout=600, env=env, check=True)
        energies[ranks] = json.loads(out.stdout.strip().splitlines()[-1])["energies"]
    assert energies[1]["interface:gamma"] > 0 and energies[1]["interface_atoms:gamma"] > 0
    for key, value in energies[1].items():
        assert energies[2][key] == pytest.approx(value, rel=1e-8, abs=1e-12), key
    print(energies[1]["total"], energies[2]["total"])


# -- the gradient is exact ----------------------------------------------------------------------
def test_coupled_forces_are_the_gradient_of_the_coupled_energy(model, cu, law):
    material, a0 = cu
    problem, bar = bonded_bars(COMM, model, material, a0, law, 0.0)
    rng = np.random.default_rng(4)
    problem.set_displacement(lambda X: 0.02 * rng.standard_normal(X.shape))
    problem.set_displacement(lambda X: 0.3 + 0.02 * rng.standard_normal(X.shape), body="body2")  # an opening
    x, nodal, free = problem.split(problem.gradient())
    z = problem.z
    n_fe = problem.n_fe
    beta_nodes = bar.handshake.beta(x)
    free_X = problem.region.X[problem.region.free]
    picks = {  # a node of each kind, and free atoms at the interface and inside the bodies
        "continuum node": n_fe and 3 * int(np.argmax(beta_nodes == 0)) + 1,
        "handshake node": 3 * int(np.argmax((beta_nodes > 0.2) & (beta_nodes < 0.8))),
        "interface node": 3 * int(np.argmin(np.abs(x[:, 1] - 3 * a0) + 10 * (beta_nodes > 0))) + 1,
        "interface atom": n_fe + 3 * int(np.argmin(np.abs(free_X[:, 1] - 3 * a0 + a0 / 4))) + 1,
        "inner atom": n_fe + 3 * int(np.argmin(np.abs(free_X[:, 1] - 1.5 * a0))),
    }
    gradient = np.concatenate([nodal.ravel(), free.ravel()])
    h = 1e-4
    for name, k in picks.items():
        values = []
        for step in (h, -h):
            z.array[k] += step
            values.append(problem.energies()["total"])
            z.array[k] -= step
        fd = (values[0] - values[1]) / (2 * h)
        print(name, gradient[k], fd)
        assert gradient[k] == pytest.approx(fd, abs=2e-6, rel=1e-5), name


def test_a_coupled_solve_balances_the_reactions(model, cu):
    """Pull a bar 0.3 Å: Newton converges, the two ends' reactions balance, and the atoms' forces vanish."""
    material, a0 = cu
    bar = bar_geometry(a0, handshake_A=CUTOFF_A)
    bcs = (Displacement("xmin", (0.0, 0.0, 0.0), ramp=False), Displacement("xmax", (0.3, 0.0, 0.0)))
    problem = CoupledProblem(bar_domain(COMM, bar), {"body1": material}, bar_atoms(bar), model, bar.handshake, bcs=bcs)
    step = problem.solve(1, reactions=("xmin", "xmax"))[-1]
    pull, hold = step.reactions_eV_A["xmax"], step.reactions_eV_A["xmin"]
    print("reactions", pull, hold, "newton", step.newton_iterations, "energies", step.energies_eV)
    assert np.allclose(pull, -hold, atol=1e-5)
    alone = StaticProblem(bar_domain(COMM, bar), {"body1": material}, bcs=bcs).solve(1, reactions=("xmax",))[-1]
    print("the same bar all continuum:", alone.reactions_eV_A["xmax"])  # no surface stress: a little stiffer
    assert pull[0] == pytest.approx(alone.reactions_eV_A["xmax"][0], rel=0.15)
    # composed, not inherited: a continuum problem and an atomistic region behind one energy
    assert isinstance(problem.continuum, StaticProblem) and not isinstance(problem, StaticProblem)
    assert problem.region.counts() == problem.regions() and problem.load_factor == 1.0
    atoms = problem.atoms()
    free = atoms.arrays["region"] == 0
    assert np.abs(atoms.arrays["forces"][free]).max() < 1e-5
    stretch = atoms.positions[:, 0] - bar_atoms(bar).positions[:, 0]
    assert 0 < stretch.min() < stretch.max() < 0.3  # the atoms stretch with the bar


# -- bad input: clear errors before any solve ---------------------------------------------------
def _bar(cu):
    material, a0 = cu
    bar = bar_geometry(a0, handshake_A=CUTOFF_A)
    return bar, bar_domain(COMM, bar), {"body1": material}


def test_a_handshake_without_atoms_is_refused(model, cu):
    bar, domain, materials = _bar(cu)
    far = Handshake((100.0, 0.0, 0.0), (140.0, 20.0, 20.0), CUTOFF_A, CUTOFF_A + 0.2)
    with pytest.raises(CouplingInputError, match="handshake"):
        CoupledProblem(domain, materials, bar_atoms(bar), model, far)


def test_atoms_outside_the_mesh_are_refused(model, cu):
    bar, domain, materials = _bar(cu)
    atoms = bar_atoms(bar)
    atoms.positions[0] = [bar.atoms_lo - 1.0, -0.5, 1.0]  # in the pad, but off the mesh
    with pytest.raises(CouplingInputError, match="outside the mesh"):
        CoupledProblem(domain, materials, atoms, model, bar.handshake)


def test_a_pad_thinner_than_the_cutoff_is_refused(model, cu):
    bar, domain, materials = _bar(cu)
    hs = bar.handshake
    thin = Handshake(hs.lower_A, hs.upper_A, hs.width_A, 3.0, coupled_faces=hs.coupled_faces)
    with pytest.raises(CouplingInputError, match="pad_A = 3.0 .*cutoff"):
        CoupledProblem(domain, materials, bar_atoms(bar), model, thin)


def test_atoms_beyond_the_pad_are_refused(model, cu):
    bar, domain, materials = _bar(cu)
    atoms = bar_atoms(bar)
    atoms.positions[0] = [bar.atoms_lo - bar.handshake.pad_A - 1.0, 5.0, 5.0]  # in the continuum, past the pad
    with pytest.raises(CouplingInputError, match="beyond the handshake's pad"):
        CoupledProblem(domain, materials, atoms, model, bar.handshake)


def test_body_labels_are_required_and_must_match_the_mesh(model, cu, law):
    material, a0 = cu
    bar = bar_geometry(a0, handshake_A=CUTOFF_A, width_cells=6, continuum_cells=2)
    cut = ("y", 3 * a0)
    domain = bar_domain(COMM, bar, cut=cut)
    materials = {"body1": material, "body2": material}
    interfaces = {"gamma": InterfaceLaw(law)}
    atoms = bar_atoms(bar)
    with pytest.raises(CouplingInputError, match="no body labels"):
        CoupledProblem(domain, materials, atoms, model, bar.handshake, interfaces=interfaces)
    atoms = bar_atoms(bar, cut=cut, body_tags=(domain.bodies["body2"], domain.bodies["body1"]))  # swapped
    with pytest.raises(CouplingInputError, match="labelled body 'body2' but lies in body 'body1'"):
        CoupledProblem(domain, materials, atoms, model, bar.handshake, interfaces=interfaces)
    atoms.arrays["body"][:] = 7
    with pytest.raises(CouplingInputError, match=r"labels \[7\] are not body tags"):
        CoupledProblem(domain, materials, atoms, model, bar.handshake, interfaces=interfaces)


def test_periodic_atoms_and_float32_models_are_refused(model, cu):
    bar, domain, materials = _bar(cu)
    atoms = bar_atoms(bar)
    atoms.pbc = True
    with pytest.raises(CouplingInputError, match="periodic"):
        CoupledProblem(domain, materials, atoms, model, bar.handshake)
    import copy

    single = copy.deepcopy(model).float()
    with pytest.raises(CouplingInputError, match="float64"):
        CoupledProblem(domain, materials, bar_atoms(bar), single, bar.handshake)
