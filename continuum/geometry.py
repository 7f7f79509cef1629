"""Meshes as plain arrays, built on one rank before DOLFINx distributes them.

A :class:`RawMesh` is what a box generator or a gmsh file gives: points, cells (in DOLFINx's
vertex order), tagged cells (bodies) and tagged facets (boundaries and interfaces), with a name for
each tag. :func:`split_interfaces` then duplicates the vertices of every interface on its "plus"
side, so that the displacement may jump there: the two bodies stay separate meshes that only the
cohesive law connects. Lengths are in Å.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ContinuumInputError

# local facets of each cell type, in DOLFINx's reference numbering
_FACETS = {
    "tetrahedron": np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]),
    "hexahedron": np.array([[0, 1, 2, 3], [0, 1, 4, 5], [0, 2, 4, 6], [1, 3, 5, 7], [2, 3, 6, 7], [4, 5, 6, 7]]),
}
_AXES = "xyz"


@dataclass
class Interface:
    """An internal surface between two bodies: facet tags on each side, and the bodies' cell tags."""

    name: str
    minus_tag: int  # facet tag on the minus side (the body with the lower tag)
    plus_tag: int  # facet tag of the duplicated facets on the plus side
    minus_body: int
    plus_body: int


@dataclass
class RawMesh:
    points: np.ndarray  # (n_points, 3) Å
    cells: np.ndarray  # (n_cells, vertices per cell), DOLFINx vertex order
    cell_type: str  # "tetrahedron" or "hexahedron"
    cell_tags: np.ndarray  # (n_cells,) body tag of each cell
    facets: np.ndarray  # (n_facets, vertices per facet)
    facet_tags: np.ndarray  # (n_facets,)
    bodies: dict[str, int]  # body name -> cell tag
    boundaries: dict[str, int]  # boundary or interface name -> facet tag
    interfaces: dict[str, Interface] = field(default_factory=dict)  # filled by split_interfaces


def _cell_facets(cells: np.ndarray, cell_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted vertex keys of every (cell, local facet), and the owning cell of each row."""
    local = _FACETS[cell_type]
    keys = np.sort(cells[:, local].reshape(-1, local.shape[1]), axis=1)
    return keys, np.repeat(np.arange(len(cells)), len(local))


def _facet_cells(raw: RawMesh) -> tuple[dict, np.ndarray]:
    """Map sorted facet vertex tuple -> list of adjacent cells (over the whole mesh)."""
    keys, owner = _cell_facets(raw.cells, raw.cell_type)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    adjacency: dict[tuple, list[int]] = {}
    for row, cell in zip(map(tuple, uniq[inverse.ravel()]), owner):
        adjacency.setdefault(row, []).append(int(cell))
    return adjacency, uniq


def box(lengths_A, divisions, *, origin_A=(0.0, 0.0, 0.0), cell_type: str = "hexahedron",
        cuts: tuple[tuple[str, float, str], ...] = ()) -> RawMesh:
    """A box ``[origin, origin + lengths]`` (Å) with ``divisions`` cells per axis.

    Boundaries ``xmin, xmax, ymin, ymax, zmin, zmax``; bodies ``body1, body2, ...``. Each cut
    ``(axis, position_A, name)`` splits the box by a plane (on a grid plane, all cuts on one axis)
    into bodies joined by the interface ``name``. Tetrahedra split each hexahedron into six."""
    lengths = np.asarray(lengths_A, dtype=float)
    n = np.asarray(divisions, dtype=int)
    origin = np.asarray(origin_A, dtype=float)
    if lengths.shape != (3,) or np.any(lengths <= 0):
        raise ContinuumInputError(f"mesh.lengths_A = {lengths.tolist()}: expected three positive lengths")
    if n.shape != (3,) or np.any(n < 1):
        raise ContinuumInputError(f"mesh.divisions = {n.tolist()}: expected three positive integers")
    if cell_type not in _FACETS:
        raise ContinuumInputError(f"mesh.cell_type = {cell_type!r}: expected one of {sorted(_FACETS)}")
    grid = [origin[a] + lengths[a] * np.arange(n[a] + 1) / n[a] for a in range(3)]
    X, Y, Z = np.meshgrid(*grid, indexing="ij")
    points = np.column_stack([X.ravel(), Y.ravel(), Z.ravel()])
    index = np.arange(points.shape[0]).reshape(n + 1)
    i, j, k = (g.ravel() for g in np.meshgrid(*[np.arange(m) for m in n], indexing="ij"))
    hexes = np.column_stack([index[i + di, j + dj, k + dk] for dk in (0, 1) for dj in (0, 1) for di in (0, 1)])
    ijk = np.column_stack([i, j, k])
    if cell_type == "tetrahedron":  # Kuhn: six tetrahedra around the main diagonal 0 -> 7
        paths = [(0, 1, 3, 7), (0, 1, 5, 7), (0, 2, 3, 7), (0, 2, 6, 7), (0, 4, 5, 7), (0, 4, 6, 7)]
        cells = np.vstack([hexes[:, list(p)] for p in paths])
        ijk = np.tile(ijk, (6, 1))
    else:
        cells = hexes
    # bodies from the cuts
    axes = {c[0] for c in cuts}
    if len(axes) > 1 or not axes <= set(_AXES):
        raise ContinuumInputError("mesh.cuts: expected cuts along one of x, y, z (all on the same axis), "
                                  f"got {sorted(axes)}")
    cell_tags = np.ones(len(cells), dtype=np.int32)
    boundaries = {f"{a}{side}": 1 + 2 * ax + s for ax, a in enumerate(_AXES) for s, side in enumerate(("min", "max"))}
    cut_planes = []
    for axis, position, name in sorted(cuts, key=lambda c: c[1]):
        ax = _AXES.index(axis)
        h = lengths[ax] / n[ax]
        plane = (position - origin[ax]) / h
        if not (0 < plane < n[ax]) or abs(plane - round(plane)) > 1e-9:
            raise ContinuumInputError(f"mesh.cuts: {axis} = {position} Å is not an interior grid plane "
                                      f"(spacing {h:.6g} Å from {origin[ax]} Å)")
        if name in boundaries:
            raise ContinuumInputError(f"mesh.cuts: the name {name!r} is already used")
        boundaries[name] = 10 + len(cut_planes)
        cut_planes.append((ax, int(round(plane)), name))
        cell_tags += (ijk[:, ax] >= int(round(plane))).astype(np.int32)
    bodies = {f"body{t}": int(t) for t in np.unique(cell_tags)}
    # boundary facets, tagged by plane
    keys, _ = _cell_facets(cells, cell_type)
    uniq, counts = np.unique(keys, axis=0, return_counts=True)
    outer = uniq[counts == 1]
    xs = points[outer]  # (f, v, 3)
    facet_list, tag_list = [], []
    for ax in range(3):
        for s, value in enumerate((grid[ax][0], grid[ax][-1])):
            on = np.all(np.abs(xs[:, :, ax] - value) < 1e-9 * lengths[ax], axis=1)
            facet_list.append(outer[on])
            tag_list.append(np.full(on.sum(), 1 + 2 * ax + s, dtype=np.int32))
    inner = uniq[counts == 2]
    for ax, plane, name in cut_planes:
        on = np.all(np.abs(points[inner][:, :, ax] - grid[ax][plane]) < 1e-9 * lengths[ax], axis=1)
        facet_list.append(inner[on])
        tag_list.append(np.full(on.sum(), boundaries[name], dtype=np.int32))
    raw = RawMesh(points, cells.astype(np.int64), cell_type, cell_tags, np.vstack(facet_list).astype(np.int64),
                  np.concatenate(tag_list), bodies, boundaries)
    return split_interfaces(raw, [name for _, _, name in cut_planes])


def from_gmsh(path: str) -> RawMesh:
    """Read a gmsh ``.msh`` file (first-order tetrahedra or hexahedra, lengths in Å).

    Physical volumes become bodies, physical surfaces boundaries (or interfaces, once named in
    :func:`split_interfaces`). Needs the ``gmsh`` module (``pip install 'multiscale[fem]'``)."""
    try:
        import gmsh
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ContinuumInputError("mesh.file: reading .msh files needs the gmsh module (pip install gmsh)") from exc
    from .backend import load_dolfinx

    load_dolfinx()
    from dolfinx.io.gmsh import cell_perm_array, extract_geometry, extract_topology_and_markers
    from dolfinx.mesh import CellType

    initialized = gmsh.isInitialized()
    if not initialized:
        gmsh.initialize()
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.open(str(path))
        x = extract_geometry(gmsh.model)
        topologies, groups = extract_topology_and_markers(gmsh.model)
        cells = facets = None
        for element, topo in topologies.items():
            _, dim, order, n_nodes, _, _ = gmsh.model.mesh.getElementProperties(element)
            if dim == 3:
                kind = {4: "tetrahedron", 8: "hexahedron"}.get(n_nodes)
                if kind is None or order != 1:
                    raise ContinuumInputError(f"mesh.file {path}: only first-order tetrahedra or hexahedra are "
                                              f"supported, found gmsh element type {element}")
                perm = cell_perm_array(getattr(CellType, kind), n_nodes)
                cells = (np.asarray(topo["topology"])[:, perm], np.asarray(topo["cell_data"]), kind)
            elif dim == 2:
                facets = (np.asarray(topo["topology"]), np.asarray(topo["cell_data"]))
    finally:
        if not initialized:
            gmsh.finalize()
    if cells is None:
        raise ContinuumInputError(f"mesh.file {path}: no physical volume (3-D cells with a physical group)")
    if facets is None:
        facets = (np.zeros((0, 3 if cells[2] == "tetrahedron" else 4), dtype=np.int64), np.zeros(0, dtype=np.int32))
    bodies = {name: int(g.tag) for name, g in groups.items() if g.dim == 3}
    boundaries = {name: int(g.tag) for name, g in groups.items() if g.dim == 2}
    return RawMesh(np.asarray(x[:, :3], dtype=float), cells[0].astype(np.int64), cells[2],
                   cells[1].astype(np.int32), facets[0].astype(np.int64), facets[1].astype(np.int32),
                   bodies, boundaries)


def split_interfaces(raw: RawMesh, names: list[str]) -> RawMesh:
    """Let the displacement jump across each named internal surface (a new :class:`RawMesh`).

    Each must be a tagged surface between two different bodies, covering all of their contact;
    its vertices are duplicated for the cells of the body with the higher tag (the plus side)."""
    raw = RawMesh(raw.points.copy(), raw.cells.copy(), raw.cell_type, raw.cell_tags, raw.facets.copy(),
                  raw.facet_tags.copy(), dict(raw.bodies), dict(raw.boundaries), dict(raw.interfaces))
    body_name = {t: n for n, t in raw.bodies.items()}
    for name in names:
        if name not in raw.boundaries:
            raise ContinuumInputError(f"interface {name!r}: no such surface in the mesh; "
                                      f"surfaces: {sorted(raw.boundaries)}")
        tag = raw.boundaries[name]
        adjacency, _ = _facet_cells(raw)
        mine = raw.facets[raw.facet_tags == tag]
        pairs = set()
        for facet in mine:
            cells = adjacency.get(tuple(sorted(facet)), [])
            bodies = {int(raw.cell_tags[c]) for c in cells}
            if len(cells) != 2 or len(bodies) != 2:
                where = "on the outer boundary" if len(cells) == 1 else "inside one body"
                raise ContinuumInputError(f"interface {name!r} (tag {tag}) is not an internal surface "
                                          f"between two bodies: facet {facet.tolist()} lies {where}")
            pairs.add(tuple(sorted(bodies)))
        if len(pairs) != 1:
            labels = sorted(tuple(body_name.get(b, b) for b in p) for p in pairs)
            raise ContinuumInputError(f"interface {name!r} separates more than one pair of bodies: {labels}")
        minus, plus = pairs.pop()
        surface = {tuple(sorted(f)) for f in mine}
        for key, cells in adjacency.items():
            if len(cells) == 2 and {int(raw.cell_tags[c]) for c in cells} == {minus, plus} and key not in surface:
                raise ContinuumInputError(f"interface {name!r} does not cover all of the contact between bodies "
                                          f"{body_name.get(minus, minus)!r} and {body_name.get(plus, plus)!r}")
        # duplicate the surface's vertices for the plus body
        shared = np.unique(mine)
        lookup = np.arange(len(raw.points), dtype=np.int64)
        lookup[shared] = np.arange(len(raw.points), len(raw.points) + len(shared))
        plus_cells = raw.cell_tags == plus
        raw.cells[plus_cells] = lookup[raw.cells[plus_cells]]
        raw.points = np.vstack([raw.points, raw.points[shared]])
        # facets of plus cells (other than the interface itself) follow their cell
        plus_set = set(np.flatnonzero(plus_cells).tolist())
        for row in range(len(raw.facets)):
            if raw.facet_tags[row] == tag:
                continue
            cells = adjacency.get(tuple(sorted(raw.facets[row])), [])
            if cells and all(c in plus_set for c in cells):
                raw.facets[row] = lookup[raw.facets[row]]
        plus_tag = int(max(list(raw.boundaries.values()) + list(raw.facet_tags) + [0]) + 1)
        raw.facets = np.vstack([raw.facets, lookup[mine]])
        raw.facet_tags = np.concatenate([raw.facet_tags, np.full(len(mine), plus_tag, dtype=np.int32)])
        raw.boundaries[f"{name}+"] = plus_tag
        raw.interfaces[name] = Interface(name, tag, plus_tag, minus, plus)
    return raw
