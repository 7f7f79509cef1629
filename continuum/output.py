"""Fields for ParaView: VTX (ADIOS2 ``.bp`` folders) or XDMF (``.xdmf`` + ``.h5``), one time per step.

Written: ``displacement_A`` (the solution space), ``stress_GPa`` (Cauchy, per cell) and
``energy_density_GPa`` (per cell) in ``fields``, and a velocity beside the displacement when one
is given (dynamics); per interface, ``opening_A`` and ``traction_GPa``
on its facets in ``interface_<name>``. The time stamp is the load factor. XDMF stores the
displacement on the mesh's vertices (P2 is interpolated to P1); VTX keeps P2.
"""

from __future__ import annotations

from pathlib import Path

from .backend import load_dolfinx
from .errors import ContinuumInputError

dolfinx = load_dolfinx()
from dolfinx import fem  # noqa: E402
from dolfinx.io import VTXWriter, XDMFFile  # noqa: E402

FORMATS = ("vtx", "xdmf")


class FieldWriter:
    """Write a :class:`~continuum.problem.StaticProblem`'s fields into ``directory`` at each :meth:`write`."""

    def __init__(self, problem, directory: str | Path, format: str = "vtx", velocity=None):
        if format not in FORMATS:
            raise ContinuumInputError(f"output.format = {format!r}: expected one of {FORMATS}")
        self.problem, self.format = problem, format
        self.directory = Path(directory)
        comm = problem.domain.comm
        if comm.rank == 0:
            self.directory.mkdir(parents=True, exist_ok=True)
        comm.barrier()
        self.stress, self.energy_density = problem.stress_GPa()
        self.interfaces = {name: iface.nodal_fields() for name, iface in problem.interfaces.items()}
        msh = problem.domain.mesh
        #: a velocity field (a function on the displacement's space) written beside it, or none
        self.velocity = [] if velocity is None else [velocity]
        if format == "vtx":
            self.writers = [VTXWriter(comm, self.directory / "displacement.bp", [problem.u, *self.velocity]),
                            VTXWriter(comm, self.directory / "fields.bp", [self.stress, self.energy_density])]
            self.writers += [VTXWriter(comm, self.directory / f"interface_{name}.bp", list(fields))
                             for name, fields in self.interfaces.items()]
        else:
            vertex = fem.functionspace(msh, ("Lagrange", 1, (3,)))
            self.u_vertex = fem.Function(vertex, name="displacement_A")
            self.v_vertex = [fem.Function(vertex, name=v.name) for v in self.velocity]
            self.writers = [XDMFFile(comm, self.directory / "fields.xdmf", "w")]
            self.writers[0].write_mesh(msh)
            for name, iface in problem.interfaces.items():
                xdmf = XDMFFile(comm, self.directory / f"interface_{name}.xdmf", "w")
                xdmf.write_mesh(iface.submesh)
                self.writers.append(xdmf)

    def write(self, time: float) -> None:
        """Write the current state, stamped ``time`` (the load factor)."""
        self.problem.stress_GPa()  # updates self.stress and self.energy_density in place
        for iface in self.problem.interfaces.values():
            iface.nodal_fields()  # likewise the interfaces' traction
        if self.format == "vtx":
            for writer in self.writers:
                writer.write(time)
            return
        self.u_vertex.interpolate(self.problem.u)
        for vertex, v in zip(self.v_vertex, self.velocity):
            vertex.interpolate(v)
        fields = self.writers[0]
        for f in (self.u_vertex, *self.v_vertex, self.stress, self.energy_density):
            fields.write_function(f, time)
        for writer, (delta, traction) in zip(self.writers[1:], self.interfaces.values()):
            writer.write_function(delta, time)
            writer.write_function(traction, time)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
