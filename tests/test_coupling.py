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
    patch_test,
)
from tests.defect_cases import DEFECTS, compare, coupled, defect_centre, defect_response, full_atomistic  # noqa: E402

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


# -- coupled vs fully atomistic, with a defect in the core ------------------------------------------
def _void_bar(cu, core_cells=3):
    """A bar with a 13-vacancy void centred one lattice constant inside the core: its near side
    lies about 1 Å from the handshake."""
    from tests.defect_cases import remove_defect

    material, a0 = cu
    bar = bar_geometry(a0, handshake_A=CUTOFF_A, core_cells=core_cells, width_cells=6)
    perfect = bar_atoms(bar)
    free = bar.handshake.classify(perfect.positions)["free"]
    target = np.array([bar.atoms_lo + CUTOFF_A + a0, bar.width / 2, bar.width / 2])
    centre = perfect.positions[free][np.argmin(np.linalg.norm(perfect.positions[free] - target, axis=1))]
    return bar, perfect, remove_defect(perfect, centre, a0, DEFECTS["off-centre cluster"]), centre


def test_the_correction_leaves_a_defect_its_own_forces(model, cu, caplog):
    """A void next to the handshake. At the reference, the corrected coupled force on every free
    atom within reach of the handshake is its own force in the atoms alone less the perfect
    crystal's (ASE's calculator on both: the void's forces survive whole, the free surfaces' are
    the reference's), deeper in its own force; the nodes carry the perfect crystal's correction;
    the construction warns that the reference is not at rest near the handshake; and the unloaded
    body relaxes (the old correction, the coupled forces of the defected atoms, held it still)."""
    from atomistic.calculator import NNPCalculator

    material, a0 = cu
    bar, perfect, atoms, _ = _void_bar(cu)
    domain = bar_domain(COMM, bar)
    hold = (Displacement("xmin", (0.0, 0.0, 0.0)), Displacement("xmax", (0.0, 0.0, 0.0)))
    with caplog.at_level("WARNING", logger="coupling.ghost_forces"):
        problem = CoupledProblem(domain, {"body1": material}, atoms, model, bar.handshake, bcs=hold,
                                 ghost_force_reference=perfect)
    assert "not at rest near the handshake" in caplog.text
    _, nodal, free = problem.split(problem.gradient())

    def own_forces(configuration):
        configuration = configuration.copy()
        configuration.calc = NNPCalculator(model)
        return configuration.get_forces()

    region = problem.region
    own = own_forces(atoms)[region.free]
    match = np.argmin(np.linalg.norm(perfect.positions[None] - region.X[region.free][:, None], axis=2), axis=1)
    expected = own - own_forces(perfect)[match]
    deep = bar.handshake.depth(region.X[region.free]) >= bar.handshake.width_A + CUTOFF_A
    expected[deep] = own[deep]
    print("largest defect force on a free atom", np.abs(expected).max(), "eV/Å; free atoms deeper than the "
          "blending's reach:", int(deep.sum()))
    assert np.abs(expected).max() > 0.02  # the void pulls on its neighbours (measured 0.063 eV/Å)
    assert np.abs(-free - expected).max() < 1e-10
    caplog.clear()
    with caplog.at_level("WARNING", logger="coupling.ghost_forces"):
        clean = CoupledProblem(domain, {"body1": material}, perfect, model, bar.handshake)
    assert "not at rest" not in caplog.text
    _, nodal_perfect, _ = clean.split(clean._g0)
    _, nodal_correction, _ = problem.split(problem._g0)
    assert np.abs(nodal_correction - nodal_perfect).max() < 1e-10
    ok, iterations, why = problem.solve_to(0.0)
    assert ok and iterations > 0, why
    moved = problem.atoms().positions - atoms.positions
    assert np.linalg.norm(moved, axis=1).max() > 0.02


#: at a core of 3 unit cells in the 10-cell cube: measured 0.036, 0.087, 0.022 (platelet) and 0.24,
#: 0.40, 0.33 (cluster, whose near side is in the handshake there); docs/verification.md
CI_BOUNDS = {"centred platelet": 0.15, "off-centre cluster": 0.5}


def test_an_unrelaxed_free_surface_across_the_handshake_is_named(model, cu, caplog):
    """A bar 3 unit cells across, its lateral faces free: at the bulk lattice its edges' atoms near
    the handshake feel about 0.5 eV/Å of their own (the unrelaxed surface, which the correction
    would hold as a dead load and which prestrains such a bar's core by 2.5 %): named, with a
    warning, while the bulk check stays silent (no atom there is two cutoffs from a surface); at
    the free-standing wire's rest positions, nothing."""
    from coupling.atomistic_region import AtomisticRegion
    from coupling.ghost_forces import check_reference, check_surfaces
    from tests.coupling_cases import wire_atoms

    _, a0 = cu
    bar = bar_geometry(a0, handshake_A=CUTOFF_A, width_cells=3, core_cells=2, continuum_cells=2)
    with caplog.at_level("WARNING", logger="coupling.ghost_forces"):
        region = AtomisticRegion(bar_atoms(bar), model, bar.handshake)
        found = check_reference(region)
        check_surfaces(region)
    assert found is None and "free surface crosses the handshake unrelaxed" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="coupling.ghost_forces"):
        region = AtomisticRegion(wire_atoms(bar, model), model, bar.handshake)
        check_reference(region)
        check_surfaces(region)
    assert caplog.text == ""


@pytest.fixture(scope="module")
def perfect_cubes(model, cu):
    """The defect-free coupled cubes of 10 unit cells, cores of 1 and 3 unit cells (both defects'
    comparisons subtract them)."""
    material, a0 = cu
    return {core: coupled(model, material, a0, 10, core, None) for core in (1, 3)}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_coupled_defect_approaches_the_full_atomistic_one(model, cu, perfect_cubes, defect):
    """A small cube (10 unit cells) with a defect under a non-hydrostatic strain, coupled with
    cores of 1 and 3 unit cells, against fully atomistic (ASE's LBFGS): the defect's relaxation
    (unloaded and loaded, relative to its own) and its share of the energy change under the load
    are closer at the larger core, and within the bound; with the correction taken from the
    defected atoms themselves (no defect-free reference), the unloaded cluster does not relax at
    all (checked on one defect: the mechanism is the same for both). The full table, to a core of
    5 unit cells, is the slow test below."""
    material, a0 = cu
    cells = 10
    d = DEFECTS[defect]
    full = defect_response(full_atomistic(model, a0, cells, None), full_atomistic(model, a0, cells, d))
    centre = defect_centre(full_atomistic(model, a0, cells, None)["X"], cells * a0, a0, d)
    results, perfect = {}, perfect_cubes
    variants = ((1, True), (3, True)) + (((3, False),) if defect == "off-centre cluster" else ())
    for core, reference in variants:
        results[core, reference] = compare(full, defect_response(
            perfect[core], coupled(model, material, a0, cells, core, d, perfect_reference=reference)), centre)
        print(defect, core, reference, results[core, reference])
    small, large = results[1, True], results[3, True]
    for key in ("state0", "state1", "energy"):
        assert large[key] < small[key] and large[key] < CI_BOUNDS[defect], key
    if (3, False) in results:
        assert results[3, False]["state0"] > 0.99  # the old correction held the unloaded defect where it was


@pytest.mark.slow
def test_coupled_defects_approach_the_full_atomistic_ones_as_the_core_grows(model, cu):
    """The table of ``docs/verification.md``: a cube of 12 unit cells, cores of 1, 3 and 5 unit
    cells, both defects. The errors fall as the core grows; at the largest core the state error
    is below 10 % of the defect's own relaxation and its share of the energy change within 10 %."""
    material, a0 = cu
    cells = 12
    for name, d in sorted(DEFECTS.items()):
        full = defect_response(full_atomistic(model, a0, cells, None), full_atomistic(model, a0, cells, d))
        centre = defect_centre(full_atomistic(model, a0, cells, None)["X"], cells * a0, a0, d)
        results = []
        for core in (1, 3, 5):
            result = compare(full, defect_response(coupled(model, material, a0, cells, core, None),
                                                   coupled(model, material, a0, cells, core, d)), centre)
            print(name, core, result)
            results.append(result)
        for key in ("state0", "state1", "energy"):
            assert results[2][key] < results[0][key], (name, key)
        assert results[2]["state0"] < 0.1 and results[2]["state1"] < 0.1 and results[2]["energy"] < 0.1, name


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


def test_a_pad_outside_the_mesh_is_refused(model, cu):
    bar, domain, materials = _bar(cu)
    hs = bar.handshake
    shifted = Handshake((hs.lower_A[0] - 14.0, *hs.lower_A[1:]), hs.upper_A, hs.width_A, hs.pad_A,
                        coupled_faces=hs.coupled_faces)
    with pytest.raises(CouplingInputError, match=r"pad beyond the coupled face xmin reaches x = .* Å outside the mesh"):
        CoupledProblem(domain, materials, bar_atoms(bar), model, shifted)
