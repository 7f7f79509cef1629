"""A distributed DOLFINx mesh with named bodies, boundaries and interfaces.

:meth:`Domain.create` takes a :class:`~continuum.geometry.RawMesh` that exists on rank 0 only (other
ranks pass ``None``), lets DOLFINx partition it, and carries the tags across. Names are resolved
here, and a name or tag that is not in the mesh is a :class:`ContinuumInputError` on every rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import load_dolfinx
from .errors import ContinuumInputError
from .geometry import Interface, RawMesh

dolfinx = load_dolfinx()
import basix.ufl  # noqa: E402
from dolfinx import mesh as dmesh  # noqa: E402
from dolfinx.io import distribute_entity_data  # noqa: E402
from mpi4py import MPI  # noqa: E402


def _bcast_error(comm, message: str | None) -> None:
    """Raise the same input error on every rank when any rank found one."""
    messages = [m for m in comm.allgather(message) if m]
    if messages:
        raise ContinuumInputError(messages[0])


@dataclass
class Domain:
    mesh: dmesh.Mesh
    cell_tags: dmesh.MeshTags
    facet_tags: dmesh.MeshTags
    bodies: dict[str, int]
    boundaries: dict[str, int]
    interfaces: dict[str, Interface]

    @classmethod
    def create(cls, raw: RawMesh | None, comm=MPI.COMM_WORLD, root: int = 0) -> Domain:
        """Distribute ``raw`` (given on ``root``) over ``comm``."""
        error = None
        if comm.rank == root and (raw is None or len(raw.cells) == 0):
            error = "mesh: no cells"
        _bcast_error(comm, error)
        header = comm.bcast(None if comm.rank != root else
                            (raw.cell_type, raw.cells.shape[1], raw.facets.shape[1], raw.bodies, raw.boundaries,
                             raw.interfaces), root=root)
        cell_type, n_cell_vertices, n_facet_vertices, bodies, boundaries, interfaces = header
        if comm.rank == root:
            cells, points, cell_tags = raw.cells, raw.points, raw.cell_tags
            facets, facet_tags = raw.facets, raw.facet_tags
        else:
            cells = np.zeros((0, n_cell_vertices), dtype=np.int64)
            points = np.zeros((0, 3))
            cell_tags = np.zeros(0, dtype=np.int32)
            facets = np.zeros((0, n_facet_vertices), dtype=np.int64)
            facet_tags = np.zeros(0, dtype=np.int32)
        element = basix.ufl.element("Lagrange", cell_type, 1, shape=(3,))
        msh = dmesh.create_mesh(comm, cells, element, points)
        tdim = msh.topology.dim
        tags = []
        for dim, entities, values in ((tdim, cells, cell_tags), (tdim - 1, facets, facet_tags)):
            local, local_values = distribute_entity_data(msh, dim, entities, values.astype(np.int32))
            msh.topology.create_connectivity(dim, 0)
            msh.topology.create_connectivity(dim, tdim)
            adjacency = dolfinx.graph.adjacencylist(local.astype(np.int32))
            tags.append(dmesh.meshtags_from_entities(msh, dim, adjacency, local_values.astype(np.int32)))
        tags[0].name, tags[1].name = "bodies", "boundaries"
        return cls(msh, tags[0], tags[1], bodies, boundaries, interfaces)

    @property
    def comm(self):
        return self.mesh.comm

    def body_tag(self, name: str, field: str) -> int:
        if name not in self.bodies:
            raise ContinuumInputError(f"{field} = {name!r}: no such body in the mesh; bodies: {sorted(self.bodies)}")
        return self.bodies[name]

    def interface(self, name: str) -> Interface:
        """The split interface ``name`` (an error naming the known ones otherwise)."""
        if name not in self.interfaces:
            raise ContinuumInputError(
                f"interfaces.{name}: not an internal surface of the mesh (declare it when the mesh is built, "
                f"so that it is split); interfaces: {sorted(self.interfaces)}")
        return self.interfaces[name]

    def boundary_facets(self, name: str, field: str) -> np.ndarray:
        """Local indices of the facets of boundary ``name`` (a collective check that it has facets)."""
        if name not in self.boundaries:
            raise ContinuumInputError(f"{field} = {name!r}: no such boundary in the mesh; "
                                      f"boundaries: {sorted(n for n in self.boundaries if not n.endswith('+'))}")
        facets = self.facet_tags.find(self.boundaries[name])
        if self.comm.allreduce(len(facets), op=MPI.SUM) == 0:
            raise ContinuumInputError(f"{field} = {name!r} (tag {self.boundaries[name]}): "
                                      "the mesh has no facets with this tag")
        return facets

    def min_cell_size(self) -> float:
        """Smallest cell diameter (Å), over all ranks."""
        n = self.mesh.topology.index_map(self.mesh.topology.dim).size_local
        h = self.mesh.h(self.mesh.topology.dim, np.arange(n, dtype=np.int32))
        return self.comm.allreduce(float(h.min()) if n else np.inf, op=MPI.MIN)
