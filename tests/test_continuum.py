"""The continuum (issue 4): convergence, an analytic solution, the cohesive pull-off, MPI, bad input.

Lengths Å, moduli GPa, energies eV. MPI runs go through ``mpiexec`` from the virtual environment.
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

import ufl  # noqa: E402
from dolfinx import fem  # noqa: E402
from mpi4py import MPI  # noqa: E402
from scipy.optimize import brentq  # noqa: E402

from continuum.boundary import Displacement, Pressure, Symmetry  # noqa: E402
from continuum.cohesive import UBER, TabulatedLaw, uber_table  # noqa: E402
from continuum.domain import Domain  # noqa: E402
from continuum.elasticity import Constitutive, tensor_from_voigt_stress, voigt_strain  # noqa: E402
from continuum.errors import ContinuumInputError  # noqa: E402
from continuum.geometry import box, split_interfaces  # noqa: E402
from continuum.interface import InterfaceLaw  # noqa: E402
from continuum.materials import CauchyBorn, ElasticTensor, LinearElastic, cubic_third_order, orientation_matrix  # noqa: E402
from continuum.output import FieldWriter  # noqa: E402
from continuum.problem import StaticProblem  # noqa: E402
from continuum.units import GPa  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from continuum_cases import CU, CU_UBER, pull_problem, sheared_pair  # noqa: E402

COMM = MPI.COMM_WORLD
FACES = ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")


def norm(form) -> float:
    return float(np.sqrt(COMM.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM)))


# -- 1. manufactured solution, anisotropic tensor, P1 and P2 ----------------------------------------
@pytest.mark.parametrize("degree, sizes", [(1, (4, 8, 16)), (2, (2, 4, 8))])
def test_manufactured_solution_converges_at_the_expected_rates(degree, sizes):
    tensor = CU.rotated(orientation_matrix((1, 2, 3), (-2, 1, 0)))  # a low-symmetry direction
    assert np.count_nonzero(np.abs(tensor.C) > 1e-6) == 36  # fully populated

    def exact(x):
        s = ufl.sin(np.pi * x[0]) * ufl.sin(np.pi * x[1]) * ufl.sin(np.pi * x[2])
        return ufl.as_vector([s * (1 + x[1]), 0.5 * s * x[0], -0.3 * s])

    errors = []
    for n in sizes:
        domain = Domain.create(box((1, 1, 1), (n, n, n)) if COMM.rank == 0 else None, COMM)
        law = Constitutive(domain.mesh, LinearElastic(tensor))

        def body_force(x, law=law):
            stress = tensor_from_voigt_stress(ufl.dot(law.C, voigt_strain(ufl.sym(ufl.grad(exact(x))))))
            return -ufl.div(stress)

        problem = StaticProblem(domain, {"body1": LinearElastic(tensor)}, degree=degree, body_force=body_force,
                                bcs=tuple(Displacement(f, (0.0, 0.0, 0.0)) for f in FACES))
        problem.solve(1)
        e = problem.u - exact(ufl.SpatialCoordinate(domain.mesh))
        dx = ufl.dx(domain=domain.mesh, metadata={"quadrature_degree": 8})
        errors.append((norm(ufl.inner(e, e) * dx), norm(ufl.inner(ufl.grad(e), ufl.grad(e)) * dx)))
    errors = np.array(errors)
    rates = np.log2(errors[:-1] / errors[1:])
    print(f"P{degree} L2/H1 errors {errors.tolist()} rates {rates.tolist()}")
    assert np.all(rates[:, 0] > degree + 1 - 0.15), rates
    assert np.all(rates[:, 1] > degree - 0.1), rates


# -- 2. Lamé's thick cylinder under internal pressure (plane strain) -------------------------------
def lame_cylinder(n_radial: int, n_angle: int, a=10.0, b=20.0, p=1.0, youngs=100.0, poisson=0.3, solver=None):
    """Quarter annulus a < r < b mapped from a box; returns (problem, analytic u_r(r))."""
    raw = None
    if COMM.rank == 0:
        raw = box((b - a, np.pi / 2, 1.0), (n_radial, n_angle, 1), origin_A=(a, 0.0, 0.0))
        r, t = raw.points[:, 0].copy(), raw.points[:, 1].copy()
        raw.points[:, 0], raw.points[:, 1] = r * np.cos(t), r * np.sin(t)
    domain = Domain.create(raw, COMM)
    bcs = (Pressure("xmin", p), Symmetry("ymin"), Symmetry("ymax"), Symmetry("zmin"), Symmetry("zmax"))
    material = LinearElastic(ElasticTensor.isotropic(youngs, poisson))
    problem = StaticProblem(domain, {"body1": material}, bcs=bcs, degree=2, solver=solver)

    def u_r(r):
        return (1 + poisson) / youngs * p * a**2 / (b**2 - a**2) * ((1 - 2 * poisson) * r + b**2 / r)
    return problem, u_r


def test_thick_cylinder_matches_lame_within_discretisation_error():
    errors = []
    for n in (2, 4):
        problem, u_r = lame_cylinder(2 * n, 8 * n)
        problem.solve(1)
        x = ufl.SpatialCoordinate(problem.domain.mesh)
        r = ufl.sqrt(x[0] ** 2 + x[1] ** 2)
        exact = ufl.as_vector([u_r(r) * x[0] / r, u_r(r) * x[1] / r, 0.0])
        e = problem.u - exact
        errors.append(norm(ufl.inner(e, e) * ufl.dx) / norm(ufl.inner(exact, exact) * ufl.dx))
    print("relative L2 error of u vs Lamé:", errors)
    assert errors[-1] < 2e-3
    assert errors[1] < errors[0] / 3  # it is discretisation error: it falls with the mesh


def test_cg_with_gamg_and_the_rigid_body_near_nullspace_matches_the_direct_solver():
    from continuum.solver import SolverSettings

    direct, _ = lame_cylinder(4, 16)
    iterative, _ = lame_cylinder(4, 16, solver=SolverSettings(linear_solver="cg", ksp_rtol=1e-12))
    direct.solve(1)
    iterative.solve(1)
    assert iterative.A.getNearNullSpace().handle != 0
    scale = np.abs(direct.u.x.array).max()
    assert np.abs(iterative.u.x.array - direct.u.x.array).max() < 1e-8 * scale


# -- 3. cohesive pull-off through the peak and the softening branch --------------------------------
@pytest.mark.parametrize("law", [CU_UBER, uber_table(CU_UBER, 8.0, points=80)], ids=["uber", "table"])
def test_cohesive_pull_off_follows_the_analytic_series_response_and_dissipates_W_sep(law):
    length, area, pull = 8.0, 16.0, 6.0  # 12 opening lengths: (1 + 12) e^-12 of W_sep is left
    problem = pull_problem(COMM, length=length, pull_A=pull, law=law)
    stiffness = CU.C[0, 0] * GPa / length  # the two blocks in series, uniaxial strain (eV/Å^3 per Å)
    assert CU_UBER.W_sep_eV_A2 / CU_UBER.length_A**2 * np.exp(-2) < stiffness  # no snap-back
    U, F = [0.0], [0.0]
    for step in problem.irun(120, reactions=("xmax",)):
        U.append(step.load_factor * pull)
        F.append(step.reactions_eV_A["xmax"][0])
    U, F = np.array(U), np.array(F)

    def analytic(u):  # u = delta + T(delta) / k, T = dphi/d delta
        def traction(d):
            return law.evaluate(np.array(d), np.array(0.0)).phi_n
        return float(traction(brentq(lambda d: d + traction(d) / stiffness - u, -1.0, u + 1.0)))

    sigma = np.array([analytic(u) for u in U])
    peak = int(np.argmax(sigma))
    assert 5 < peak < len(U) - 20 and sigma[-1] < 0.01 * sigma[peak]  # through the peak, well into softening
    assert np.abs(F / area - sigma).max() < 1e-6 * sigma[peak]
    work = np.trapezoid(F, U)
    assert work == pytest.approx(law.work_of_separation_eV_A2 * area, rel=1e-2)
    energy = problem.energies()
    assert energy["interface:gamma"] == pytest.approx(law.work_of_separation_eV_A2 * area, rel=1e-3)
    print(f"peak {sigma[peak] / GPa:.2f} GPa at U = {U[peak]:.2f} Å; work {work:.5f} eV vs W_sep A "
          f"{law.work_of_separation_eV_A2 * area:.5f} eV")


def test_tetrahedra_and_hexahedra_agree_on_a_uniform_state():
    energies = [pull_problem(COMM, pull_A=1.0, cell_type=cell, divisions=(4, 2, 2)).solve(4)[-1].energies_eV
                for cell in ("hexahedron", "tetrahedron")]
    for key, value in energies[0].items():
        assert energies[1][key] == pytest.approx(value, rel=1e-9, abs=1e-13), key


def test_contact_without_adhesion_prevents_interpenetration():
    problem = pull_problem(COMM, law=None, pull_A=-0.3, contact_penalty=100.0)
    problem.solve(2)
    iface = problem.interfaces["gamma"]
    closure = -COMM.allreduce(float(iface.opening_normal.min()), op=MPI.MIN)
    strain_only = 0.3 / 8.0 * 8.0  # what the gap would close to if nothing resisted: the full 0.3 Å
    assert closure < 0.02 * strain_only
    energies = problem.energies()
    assert energies["strain:body1"] > 0 and energies["interface:gamma"] < 0.05 * energies["total"]
    # and in tension the interface carries nothing: no adhesion
    problem = pull_problem(COMM, law=None, pull_A=0.3, contact_penalty=100.0)
    step = problem.solve(1)[-1]
    assert abs(step.energies_eV["total"]) < 1e-12


# -- cohesive laws are energy-consistent ----------------------------------------------------------
@pytest.mark.parametrize("law", [UBER(0.16, 0.5), UBER(0.16, 0.5, tangential_length_A=0.8),
                                 uber_table(UBER(0.16, 0.5), 6.0)])
def test_cohesive_law_derivatives_match_finite_differences(law):
    rng = np.random.default_rng(1)
    dn, s = rng.uniform(-0.2, 3.0, 50), rng.uniform(0.0, 1.0, 50)
    h = 1e-6
    v = law.evaluate(dn, s)
    for value, derivative, shift in ((v.phi, v.phi_n, (h, 0)), (v.phi, v.phi_s, (0, h)), (v.phi_n, v.phi_nn, (h, 0)),
                                     (v.phi_n, v.phi_ns, (0, h)), (v.phi_s, v.phi_ss, (0, h))):
        plus = law.evaluate(dn + shift[0], s + shift[1])._asdict()
        minus = law.evaluate(dn - shift[0], s - shift[1])._asdict()
        name = next(k for k, arr in v._asdict().items() if arr is value)
        fd = (plus[name] - minus[name]) / (2 * h)
        assert np.allclose(derivative, fd, atol=1e-6, rtol=1e-5)


def test_tabulated_law_reproduces_the_law_it_was_sampled_from():
    law = UBER(0.16, 0.5)
    table = uber_table(law, 8.0, points=80)
    d = np.linspace(0.0, 7.5, 301)
    exact, spline = law.evaluate(d, 0 * d), table.evaluate(d, 0 * d)
    assert np.abs(spline.phi - exact.phi).max() < 1e-4 * law.W_sep_eV_A2
    assert np.abs(spline.phi_n - exact.phi_n).max() < 2e-3 * law.peak_traction_eV_A3
    assert table.work_of_separation_eV_A2 == pytest.approx(law.W_sep_eV_A2, rel=1e-5)


# -- the discrete residual and Jacobian are the derivatives of the discrete energy ------------------
def test_residual_and_jacobian_are_derivatives_of_the_energy():
    from dolfinx.fem import petsc as fem_petsc

    problem = sheared_pair(COMM, degree=1)  # Cauchy-Born with C3, rotated; Xu-Needleman; contact
    rng = np.random.default_rng(0)
    problem.apply_load(0.5)
    u0 = problem.u.x.petsc_vec.copy()
    u0.setArray(rng.normal(scale=0.05, size=u0.getLocalSize()))
    fem_petsc.set_bc(u0, problem.bcs)

    def energy(x):
        problem.set_state(x)
        return problem.energies()["total"]

    b = problem.b.duplicate()
    problem.residual(u0, b)
    free = np.flatnonzero(np.abs(b.array) > 0)
    h = 1e-5
    for i in rng.choice(free, 10, replace=False):
        xp, xm = u0.copy(), u0.copy()
        xp.array[i] += h
        xm.array[i] -= h
        assert b.array[i] == pytest.approx((energy(xp) - energy(xm)) / (2 * h), abs=1e-9, rel=1e-7)
    w = u0.duplicate()
    w.setArray(rng.normal(size=u0.getLocalSize()))
    fem_petsc.set_bc(w, problem.bcs, alpha=0.0)
    problem.tangent(u0, problem.A)
    Jw = u0.duplicate()
    problem.A.mult(w, Jw)
    bp, bm = b.duplicate(), b.duplicate()
    xp, xm = u0.copy(), u0.copy()
    xp.axpy(h, w)
    xm.axpy(-h, w)
    problem.residual(xp, bp)
    problem.residual(xm, bm)
    fd = (bp.array - bm.array) / (2 * h)
    assert np.abs(fd - Jw.array)[free].max() < 1e-6 * np.abs(Jw.array[free]).max()


def test_cauchy_born_energy_under_uniform_stretch_is_W_times_volume():
    c3 = cubic_third_order(-1270.0, -814.0, -50.0, -3.0, -780.0, -95.0)
    tensor = ElasticTensor(CU.C, c3)
    domain = Domain.create(box((2, 2, 2), (2, 2, 2)) if COMM.rank == 0 else None, COMM)
    stretch = 0.04
    bcs = (Displacement("xmin", (0.0, None, None)), Displacement("xmax", (2 * stretch, None, None)),
           Symmetry("ymin"), Symmetry("ymax"), Symmetry("zmin"), Symmetry("zmax"))
    problem = StaticProblem(domain, {"body1": CauchyBorn(tensor)}, bcs=bcs)
    problem.solve(2)
    E11 = stretch + stretch**2 / 2  # Green-Lagrange strain of F = diag(1 + stretch, 1, 1)
    W = (0.5 * tensor.C[0, 0] * E11**2 + c3[0, 0, 0] * E11**3 / 6) * GPa
    assert problem.energies()["total"] == pytest.approx(W * 8.0, rel=1e-10)
    assert problem.reaction("xmax")[0] == pytest.approx(
        (1 + stretch) * (tensor.C[0, 0] * E11 + c3[0, 0, 0] * E11**2 / 2) * GPa * 4.0, rel=1e-8)


def test_traction_gives_the_uniaxial_stress_solution():
    from continuum.boundary import Traction

    tensor = CU.rotated(orientation_matrix((1, 1, 0), (-1, 1, 0)))  # orthotropic in the box axes
    domain = Domain.create(box((3, 1, 1), (3, 1, 1)) if COMM.rank == 0 else None, COMM)
    t = 2.0  # GPa
    bcs = (Symmetry("xmin"), Symmetry("ymin"), Symmetry("zmin"), Traction("xmax", (t, 0.0, 0.0)))
    problem = StaticProblem(domain, {"body1": LinearElastic(tensor)}, bcs=bcs)
    problem.solve(1)
    strain = np.linalg.solve(tensor.C, [t, 0, 0, 0, 0, 0])  # free lateral faces: only sigma_xx
    x = problem.V.tabulate_dof_coordinates()
    u = problem.u.x.array.reshape(-1, 3)
    assert (np.allclose(u[:, 0], strain[0] * x[:, 0], atol=1e-12)
            and np.allclose(u[:, 1], strain[1] * x[:, 1], atol=1e-12))
    energy = problem.energies()
    assert energy["external"] == pytest.approx(2 * energy["strain:body1"], rel=1e-10)  # Clapeyron
    assert problem.reaction("xmin")[0] == pytest.approx(-t * GPa * 1.0, rel=1e-10)


def test_rotated_tensor_is_right():
    c3 = cubic_third_order(-1270.0, -814.0, -50.0, -3.0, -780.0, -95.0)
    t = ElasticTensor(CU.C, c3)
    quarter_turn = t.rotated(orientation_matrix((0, 1, 0), (-1, 0, 0)))  # a symmetry of the cube
    assert np.allclose(quarter_turn.C, t.C) and np.allclose(quarter_turn.C3, c3)
    c110 = t.rotated(orientation_matrix((1, 1, 0), (-1, 1, 0))).C
    assert c110[0, 0] == pytest.approx((170 + 120 + 2 * 75) / 2)
    assert c110[5, 5] == pytest.approx((170 - 120) / 2)


# -- 4. MPI: the same energy on 1 and 2 ranks (DESIGN V11) ----------------------------------------
def _mpiexec() -> str:
    candidate = Path(sys.executable).parent / "mpiexec"
    if not candidate.exists():
        pytest.skip("no mpiexec beside this Python")
    return str(candidate)


@pytest.mark.parametrize("case", ["pull", "sheared"])
def test_one_and_two_ranks_give_the_same_energy(case):
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1")
    energies = {}
    for ranks in (1, 2):
        out = subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable,
                              str(Path(__file__).parent / "continuum_cases.py"), case],
                             capture_output=True, text=True, timeout=600, env=env, check=True)
        energies[ranks] = json.loads(out.stdout.strip().splitlines()[-1])["energies"]
    for key, value in energies[1].items():
        assert energies[2][key] == pytest.approx(value, rel=1e-8, abs=1e-14), key
    print(case, energies[1]["total"], energies[2]["total"])


# -- 5. bad input is caught before assembly --------------------------------------------------------
def test_bad_input_gets_clear_errors():
    domain = Domain.create(box((2, 1, 1), (2, 1, 1), cuts=(("x", 1.0, "gamma"),)) if COMM.rank == 0 else None, COMM)
    good = {"body1": LinearElastic(CU), "body2": LinearElastic(CU)}
    with pytest.raises(ContinuumInputError, match="'top'.*no such boundary"):
        StaticProblem(domain, good, bcs=(Displacement("top", (0, 0, 0)),))
    with pytest.raises(ContinuumInputError, match="no material for bodies \\['body2'\\]"):
        StaticProblem(domain, {"body1": LinearElastic(CU)})
    with pytest.raises(ContinuumInputError, match="not positive definite"):
        ElasticTensor.cubic(100.0, 120.0, 50.0)  # C11 < C12: unstable
    with pytest.raises(ContinuumInputError, match="not an internal surface"):
        StaticProblem(domain, good, interfaces={"xmin": InterfaceLaw(CU_UBER)})
    raw = box((2, 1, 1), (2, 1, 1))
    with pytest.raises(ContinuumInputError, match="'xmin'.*not an internal surface between two bodies"):
        split_interfaces(raw, ["xmin"])
    with pytest.raises(ContinuumInputError, match="not an interior grid plane"):
        box((2, 1, 1), (2, 1, 1), cuts=(("x", 0.7, "gamma"),))
    with pytest.raises(ContinuumInputError, match="orientation.*not orthogonal"):
        orientation_matrix((1, 0, 0), (1, 1, 0))
    with pytest.raises(ContinuumInputError, match="openings must start at 0"):
        TabulatedLaw((0.5, 1.0, 2.0, 3.0), (0.0, 0.1, 0.15, 0.16))
    with pytest.raises(ContinuumInputError, match="W_sep_eV_A2 = -1"):
        UBER(-1.0, 0.5)


# -- gmsh geometries and output --------------------------------------------------------------------
def test_gmsh_geometry_with_an_internal_interface(tmp_path):
    gmsh = pytest.importorskip("gmsh")
    from continuum.geometry import from_gmsh

    path = tmp_path / "pair.msh"
    if COMM.rank == 0:
        gmsh.initialize()
        gmsh.option.setNumber("General.Terminal", 0)
        a = gmsh.model.occ.addBox(0, 0, 0, 4, 4, 4)
        b = gmsh.model.occ.addBox(4, 0, 0, 4, 4, 4)
        gmsh.model.occ.fragment([(3, a)], [(3, b)])
        gmsh.model.occ.synchronize()
        volumes = [v for _, v in gmsh.model.getEntities(3)]
        for tag, v in enumerate(sorted(volumes, key=lambda v: gmsh.model.occ.getCenterOfMass(3, v)[0]), start=1):
            gmsh.model.addPhysicalGroup(3, [v], tag, name=f"block{tag}")
        for name, x in (("left", 0.0), ("right", 8.0), ("bond", 4.0)):
            faces = [s for _, s in gmsh.model.getEntities(2) if abs(gmsh.model.occ.getCenterOfMass(2, s)[0] - x) < 1e-9]
            gmsh.model.addPhysicalGroup(2, faces, name=name)
        for name, axis, value in (("y0", 1, 0.0), ("y1", 1, 4.0), ("z0", 2, 0.0), ("z1", 2, 4.0)):
            faces = [s for _, s in gmsh.model.getEntities(2)
                     if abs(gmsh.model.occ.getCenterOfMass(2, s)[axis] - value) < 1e-9]
            gmsh.model.addPhysicalGroup(2, faces, name=name)
        gmsh.option.setNumber("Mesh.MeshSizeMax", 2.0)
        gmsh.model.mesh.generate(3)
        gmsh.write(str(path))
        gmsh.finalize()
    COMM.barrier()
    raw = split_interfaces(from_gmsh(path), ["bond"]) if COMM.rank == 0 else None
    domain = Domain.create(raw, COMM)
    assert set(domain.bodies) == {"block1", "block2"} and "bond" in domain.interfaces
    bcs = (Displacement("left", (0.0, None, None), ramp=False), Displacement("right", (1.0, None, None)),
           Symmetry("y0"), Symmetry("y1"), Symmetry("z0"), Symmetry("z1"))
    problem = StaticProblem(domain, {"block1": LinearElastic(CU), "block2": LinearElastic(CU)}, bcs=bcs,
                            interfaces={"bond": InterfaceLaw(CU_UBER)})
    step = problem.solve(10, reactions=("right",))[-1]
    assert problem.interfaces["bond"].area_A2 == pytest.approx(16.0, rel=1e-12)
    # a uniform state: the same as the box mesh, whatever the tetrahedra
    reference = pull_problem(COMM, length=8.0, pull_A=1.0).solve(10, reactions=("xmax",))[-1]
    assert step.energies_eV["total"] == pytest.approx(reference.energies_eV["total"], rel=1e-8)
    with FieldWriter(problem, tmp_path / "vtx") as writer:
        writer.write(1.0)
    with FieldWriter(problem, tmp_path / "xdmf", format="xdmf") as writer:
        writer.write(1.0)
    if COMM.rank == 0:
        assert (tmp_path / "vtx" / "displacement.bp").is_dir() and (tmp_path / "vtx" / "interface_bond.bp").is_dir()
        text = (tmp_path / "xdmf" / "fields.xdmf").read_text()
        assert all(name in text for name in ("displacement_A", "stress_GPa", "energy_density_GPa"))
        assert "traction_GPa" in (tmp_path / "xdmf" / "interface_bond.xdmf").read_text()


def test_a_load_step_that_cannot_converge_is_reported():
    from continuum.errors import ContinuumSolveError
    from continuum.solver import SolverSettings

    # one Newton iteration per step is not enough for the nonlinear interface, however small the step
    problem = pull_problem(COMM, pull_A=2.0, solver=SolverSettings(max_iterations=1, max_cuts=2))
    with pytest.raises(ContinuumSolveError, match="from 0 to 0.0625 failed after halving it 2 times: "
                                                  "SNES DIVERGED_MAX_IT.*last converged load factor is 0;"):
        problem.solve(4)


def test_energy_weight_blends_the_continuum_energy():
    """With the weight 1 - beta of a handshake, a uniform strain stores W * int (1 - beta) dV."""
    from coupling.handshake import Handshake

    domain = Domain.create(box((12, 4, 4), (12, 2, 2)) if COMM.rank == 0 else None, COMM)
    hs = Handshake((-20, -20, -20), (6, 24, 24), width_A=4.0, pad_A=6.0, coupled_faces=("xmax",), ramp="c1")
    weight = lambda x: 1.0 - hs.beta(x)  # noqa: E731  core x < 2, ramp 2 < x < 6, continuum beyond
    problem = StaticProblem(domain, {"body1": LinearElastic(CU)}, energy_weight=weight,
                            bcs=(Displacement("xmin", (0.0, 0.0, 0.0)),))
    strain = 0.01
    problem.u.interpolate(lambda x: np.stack([strain * x[0], 0 * x[0], 0 * x[0]]))
    W = 0.5 * CU.C[0, 0] * strain**2 * GPa
    # int (1 - beta) dV over the box: 6 Å of continuum plus half of the 4 Å C1 ramp, times 16 Å^2
    assert problem.energies()["total"] == pytest.approx(W * (6.0 + 2.0) * 16.0, rel=1e-3)
    with pytest.raises(ContinuumInputError, match="energy_weight"):
        StaticProblem(domain, {"body1": LinearElastic(CU)}, energy_weight=lambda x: -np.ones(len(x)))
