"""Small continuum problems shared by the tests and by the MPI runs (``python -m`` under mpiexec)."""

from __future__ import annotations

import json
import sys

from continuum.boundary import Displacement, Symmetry
from continuum.cohesive import UBER
from continuum.domain import Domain
from continuum.geometry import box
from continuum.interface import InterfaceLaw
from continuum.materials import CauchyBorn, ElasticTensor, LinearElastic, cubic_third_order, orientation_matrix
from continuum.problem import StaticProblem
from continuum.units import GPa

CU = ElasticTensor.cubic(170.0, 120.0, 75.0, name="Cu")  # GPa, a cubic crystal of Cu's stiffness
CU_UBER = UBER(0.16, 0.5)  # eV/Å^2 (about 2 x Cu(111) surface energy) and Å


def pull_problem(comm, *, length=8.0, width=4.0, divisions=(4, 2, 2), law=CU_UBER, pull_A=6.0,
                 material=LinearElastic, tensor=CU, degree=1, contact_penalty=0.0, cell_type="hexahedron", solver=None):
    """Two blocks along x bonded by ``law`` at x = length/2, in uniaxial strain, xmax pulled by ``pull_A``."""
    raw = box((length, width, width), divisions, cell_type=cell_type,
              cuts=(("x", length / 2, "gamma"),)) if comm.rank == 0 else None
    domain = Domain.create(raw, comm)
    bcs = (Displacement("xmin", (0.0, None, None), ramp=False), Displacement("xmax", (pull_A, None, None)),
           Symmetry("ymin"), Symmetry("ymax"), Symmetry("zmin"), Symmetry("zmax"))
    return StaticProblem(domain, {"body1": material(tensor), "body2": material(tensor)}, bcs=bcs, degree=degree,
                         interfaces={"gamma": InterfaceLaw(law, contact_penalty=contact_penalty)}, solver=solver)


def sheared_pair(comm, degree=2):
    """A rotated Cauchy-Born pair (third-order constants), Xu-Needleman interface, pulled and sheared."""
    c3 = cubic_third_order(-1270.0, -814.0, -50.0, -3.0, -780.0, -95.0)  # Cu's measured TOECs, GPa
    tensor = ElasticTensor(CU.C, c3).rotated(orientation_matrix((1, 1, 0), (-1, 1, 1)))
    raw = box((8.0, 3.0, 3.0), (4, 2, 2), cuts=(("x", 4.0, "gamma"),)) if comm.rank == 0 else None
    domain = Domain.create(raw, comm)
    bcs = (Displacement("xmin", (0.0, 0.0, 0.0), ramp=False), Displacement("xmax", (0.15, 0.1, -0.05)))
    law = UBER(0.16, 0.5, tangential_length_A=0.8)
    return StaticProblem(domain, {"body1": CauchyBorn(tensor), "body2": CauchyBorn(tensor)}, bcs=bcs, degree=degree,
                         interfaces={"gamma": InterfaceLaw(law, contact_penalty=10.0)})


def main(name: str) -> None:  # run under mpiexec: print the energies as JSON on rank 0
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    problem = {"pull": lambda: pull_problem(comm, divisions=(8, 3, 3), pull_A=1.0, degree=2),
               "sheared": lambda: sheared_pair(comm)}[name]()
    steps = problem.solve(4)
    out = {"energies": steps[-1].energies_eV, "ranks": comm.size, "GPa": GPa}
    if comm.rank == 0:
        print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
