"""Cochain layouts: where each stalk sits in a cochain vector, assignments to and from
vectors, and boundary specs parsed into pinned coordinates.

The node order is ``nodelist`` (default ``list(G)``), the edge order ``edgelist`` (default
``list(G.edges)``, keys included for multigraphs); labels are never sorted. The helpers
without an underscore and outside ``__all__`` (``nodelist_of``, ``stalk_dims``,
``block_starts``, ``numeric``, ``complement``, ...) are shared with the other modules of
the package.
"""

import functools
from dataclasses import dataclass

import numpy as np

from ._repr import short_repr
from .exceptions import SheafError
from .maps import is_state_dependent
from .sheaves import check_dim, gc_paused, is_node_order, is_range, edge_label

__all__ = [
    "Boundary",
    "boundary_coordinates",
    "cochain_dim",
    "edge_offsets",
    "stalk_offsets",
    "to_assignment",
    "to_vector",
]

def map_rows(m):
    """Rows (the edge stalk dimension) of a constant or state-dependent map."""
    return int(m.shape[0]) if (is_state_dependent(m) or hasattr(m, "shape")) else int(np.shape(m)[0])


def numeric(m):
    """A constant map as a float array, or complex when its entries are complex."""
    m = np.asarray(m)
    return m.astype(complex if m.dtype.kind == "c" else float, copy=False)


# --------------------------------------------------------------------------- layout

def nodelist_of(G, nodelist):
    if nodelist is None:
        return list(G)
    nodelist = list(nodelist)
    if len(nodelist) == len(G) and is_node_order(G, nodelist):
        return nodelist  # G's own order (checked by identity, at C level): nothing to validate
    if len(nodelist) != G.number_of_nodes() or len(set(nodelist)) != len(nodelist) \
            or any(v not in G for v in nodelist):
        missing = [v for v in G if v not in set(nodelist)]
        extra = [v for v in nodelist if v not in G]
        raise SheafError(
            "nodelist must list every node of G exactly once"
            + (f"; missing {missing[:5]!r}" if missing else "")
            + (f"; not in G: {extra[:5]!r}" if extra else "")
            + ("; it has duplicates" if len(set(nodelist)) != len(nodelist) else ""))
    return nodelist


def edgelist_of(G, edgelist):
    if edgelist is None:
        return list(G.edges)
    edgelist = [tuple(e) for e in edgelist]
    width = 3 if G.is_multigraph() else 2
    bad = [e for e in edgelist if len(e) != width or not G.has_edge(*e)]
    if bad:
        raise SheafError(f"edgelist names {edge_label(bad[0])}, which is not an edge of G"
                         + (" (multigraph edges need their key)" if width == 3 else ""))
    if len(edgelist) != G.number_of_edges() or len(set(edgelist)) != len(edgelist):
        raise SheafError("edgelist must list every edge of G exactly once")
    return edgelist


def stalk_dims(G, nodelist, dim):
    nodes = G._node  # networkx's node-attribute dict (private): 0.10 s per 10⁶ nodes, G.nodes[v] 0.17 s
    try:
        return np.array([nodes[v][dim] for v in nodelist], dtype=np.int64).reshape(len(nodelist))
    except KeyError:
        missing = next(v for v in nodelist if dim not in nodes[v])
        raise SheafError(f"node {missing!r} has no {dim!r} attribute (its stalk dimension)") from None
    except (OverflowError, TypeError, ValueError):
        for v in nodelist:  # the validator's own check names the node and what is wrong
            check_dim(G, v, dim)
        raise


def block_starts(sizes):
    out = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=out[1:])
    return out


def stalk_offsets(G, nodelist=None, *, dim="dim"):
    """Return a dict node -> slice of that node's block in a 0-cochain vector.

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph), dim=2)
    >>> gs.stalk_offsets(G)
    {0: slice(0, 2, None), 1: slice(2, 4, None), 2: slice(4, 6, None)}
    """
    nodelist = nodelist_of(G, nodelist)
    start = block_starts(stalk_dims(G, nodelist, dim)).tolist()
    with gc_paused():  # one object per node: on a big graph the cyclic GC would dominate
        return {v: slice(start[i], start[i + 1]) for i, v in enumerate(nodelist)}


def _edge_dim(data, e, source_map):
    if source_map not in data:
        raise SheafError(f"edge {edge_label(e)} has no {source_map!r} attribute")
    return map_rows(data[source_map])


def edge_offsets(G, edgelist=None, *, source_map="source_map"):
    """Return a dict edge -> slice of that edge's block in a 1-cochain vector.

    Edges are tuples as in ``list(G.edges)`` (with keys for multigraphs).

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph), dim=2)
    >>> gs.edge_offsets(G)
    {(0, 1): slice(0, 2, None), (1, 2): slice(2, 4, None)}
    """
    edgelist = edgelist_of(G, edgelist)
    sizes = [_edge_dim(G.edges[e], e, source_map) for e in edgelist]
    start = block_starts(np.asarray(sizes, dtype=np.int64))
    return {e: slice(int(start[i]), int(start[i + 1])) for i, e in enumerate(edgelist)}


def cochain_dim(G, k, *, dim="dim", source_map="source_map"):
    """Return dim C^k for k = 0 (sum of stalk dims) or k = 1 (sum of edge stalk dims).

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.cycle_graph(3), dim=2)
    >>> gs.cochain_dim(G, 0), gs.cochain_dim(G, 1)
    (6, 6)
    """
    if k == 0:
        return int(sum(d for _, d in G.nodes(data=dim, default=0)))
    if k == 1:
        return int(sum(_edge_dim(d, e[:2], source_map) for *e, d in G.edges(data=True)))
    raise ValueError(f"a graph sheaf has cochains in degrees 0 and 1 only, got k={k}")


def _batch_of(value):
    return None if value.ndim == 1 else value.shape[1]


def to_vector(G, assignment, nodelist=None, *, dim="dim"):
    """Stack an assignment (dict node -> stalk value) into a 0-cochain vector.

    Values have shape (dim,) or (dim, M) (M samples); the result has shape (n,) or
    (n, M) with node blocks in ``nodelist`` order. Every node with a nonzero stalk
    must be present.

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(2, create_using=nx.DiGraph), dim=2)
    >>> gs.to_vector(G, {0: [1, 2], 1: [3, 4]}).tolist()
    [1.0, 2.0, 3.0, 4.0]
    """
    nodelist = nodelist_of(G, nodelist)
    if not isinstance(assignment, dict):
        raise SheafError(f"an assignment must be a dict node -> value, got {type(assignment).__name__}")
    extra = [v for v in assignment if v not in G]
    if extra:
        raise SheafError(f"assignment has a value for {extra[0]!r}, which is not a node of G")
    blocks, batch = [], None
    for v in nodelist:
        d = G.nodes[v][dim]
        if v not in assignment:
            if d == 0:
                blocks.append(None)
                continue
            raise SheafError(f"assignment has no value for node {v!r} (dim {d})")
        x = numeric(assignment[v])
        if x.ndim == 0 or x.ndim > 2 or x.shape[0] != d:
            raise SheafError(f"node {v!r}: value has shape {x.shape}, expected ({d},) or ({d}, M)")
        b = _batch_of(x)
        if batch is None:
            batch = b
        elif b != batch:
            raise SheafError(f"node {v!r}: value has shape {x.shape}, but other values carry "
                             f"{'no batch axis' if batch is None else f'{batch} samples'}")
        blocks.append(x)
    tail = () if batch is None else (batch,)
    blocks = [np.zeros((0,) + tail) if x is None else x for x in blocks]
    if not blocks:
        return np.zeros((0,) + tail)
    return np.concatenate(blocks, axis=0)


def to_assignment(G, vector, nodelist=None, *, dim="dim"):
    """Split a 0-cochain vector of shape (n,) or (n, M) into a dict node -> value.

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(2, create_using=nx.DiGraph), dim=2)
    >>> {v: x.tolist() for v, x in gs.to_assignment(G, np.arange(4.0)).items()}
    {0: [0.0, 1.0], 1: [2.0, 3.0]}
    """
    nodelist = nodelist_of(G, nodelist)
    return assignment_of(nodelist, stalk_dims(G, nodelist, dim), vector)


def assignment_of(nodelist, dims, vector):
    """:func:`to_assignment` for callers that hold the node order and stalk dimensions
    (an edge table's), skipping the graph reading."""
    vector = numeric(vector)
    dims = np.asarray(dims)
    start = block_starts(dims)
    if vector.ndim not in (1, 2) or vector.shape[0] != start[-1]:
        raise SheafError(f"vector has shape {vector.shape}, but dim C^0 = {start[-1]}")
    with gc_paused():
        if dims.size and np.all(dims == dims[0]) and dims[0] > 0:
            # one stalk dimension: every node's block is a row of one reshaped copy, made at C level
            rows = vector.copy().reshape((len(nodelist), int(dims[0])) + vector.shape[1:])
            return dict(zip(nodelist, rows))
        start = start.tolist()
        return {v: vector[start[i]:start[i + 1]].copy() for i, v in enumerate(nodelist)}


# ------------------------------------------------------------------------ boundaries

@dataclass(frozen=True)
class Boundary:
    """Pinned coordinates of a 0-cochain, parsed from a boundary spec.

    ``index`` holds global C^0 indices (sorted), ``values`` their values with shape
    (len(index),) or (len(index), M), or None when the spec carried no values.
    """

    def __repr__(self):
        return short_repr(self)

    index: np.ndarray
    values: object
    batch: object


def boundary_coordinates(G, boundary, nodelist=None, *, dim="dim", require_values=False):
    """Parse a boundary spec into global C^0 indices and values.

    A boundary spec is either an iterable of nodes (each pinned whole, no values) or a
    dict mapping a node to

    - an array-like of shape (dim,) or (dim, M): the whole stalk pinned to that value;
    - a dict ``{coordinate: value}``: only those coordinates pinned (value a scalar or
      an array of M samples);
    - a ``set``, ``frozenset`` or ``range`` of coordinates, or ``None`` (whole stalk):
      pinned coordinates without values (enough for relative cohomology).

    Returns
    -------
    Boundary

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph), dim=2)
    >>> b = gs.boundary_coordinates(G, {0: [1.0, 2.0], 2: {1: 5.0}})
    >>> b.index.tolist(), b.values.tolist()
    ([0, 1, 5], [1.0, 2.0, 5.0])
    """
    nodelist = nodelist_of(G, nodelist)
    return boundary_of(G, nodelist, block_starts(stalk_dims(G, nodelist, dim)), boundary, require_values)


def boundary_of(G, nodelist, start, boundary, require_values=False, index=None, ranged=None):
    """:func:`boundary_coordinates` for callers that hold the node order and block starts (an
    edge table's ``nodelist`` and ``node_start``, and its ``node_index`` dict when it has
    one, or its ``ranged`` flag), skipping the graph reading."""
    position = positions(G, nodelist, ranged=ranged) if index is None else index.get
    if boundary is None:
        boundary = {}
    if not isinstance(boundary, dict):
        if isinstance(boundary, (str, bytes)) or not hasattr(boundary, "__iter__"):
            boundary = [boundary]
        boundary = {v: None for v in boundary}
    pieces = []  # (node, global indices, values or None)
    with gc_paused():  # a few objects per pin: on a big graph the cyclic GC would dominate
        for node, spec in boundary.items():
            i = position(node)
            if i is None:
                raise SheafError(f"boundary names {node!r}, which is not a node of G")
            lo, hi = int(start[i]), int(start[i + 1])
            coords, vals = _parse_node_pin(node, spec, hi - lo)
            if coords.size:
                pieces.append((node, lo + coords, vals))
    valued = [p for p in pieces if p[2] is not None]
    if valued and len(valued) != len(pieces):
        bare = next(p for p in pieces if p[2] is None)
        raise SheafError(f"boundary at node {bare[0]!r} has no values while other nodes have")
    batches = {p[2].shape[1] for p in valued if p[2].ndim == 2}
    if len(batches) > 1:
        raise SheafError("boundary values disagree on the batch size: "
                         + ", ".join(f"{p[0]!r} has shape {p[2].shape}" for p in valued
                                     if p[2].ndim == 2))
    batch = batches.pop() if batches else None
    if batch is not None:  # unbatched values (constants) are shared by every sample
        pieces = [(node, idx, v if v.ndim == 2 else np.repeat(v[:, None], batch, axis=1))
                  for node, idx, v in pieces]
    if not pieces:
        tail = () if batch is None else (batch,)
        return Boundary(np.zeros(0, dtype=np.int64), np.zeros((0,) + tail), batch)
    index = np.concatenate([p[1] for p in pieces])
    order = np.argsort(index, kind="stable")
    if valued:
        values = np.concatenate([p[2] for p in pieces], axis=0)
        if not np.isfinite(values).all():  # one check for every pin (2 µs a pin one by one)
            node = next(p[0] for p in pieces if not np.isfinite(p[2]).all())
            raise SheafError(f"boundary at node {node!r} has a non-finite value")
        values = values[order]
    elif require_values:
        raise SheafError("this boundary spec gives no values; pass a dict node -> value")
    else:
        values = None
    return Boundary(index[order], values, batch)


def positions(G, nodelist, ranged=None):
    """node -> its position in nodelist (None if absent), without a dict over every node when
    the nodes are 0..n-1 in order (grids and generated graphs at a million nodes; ``ranged``
    says so when the caller knows, 0.04 s of checking at 10⁶ nodes)."""
    n = len(nodelist)
    if is_range(nodelist) if ranged is None else ranged:
        def position(v):
            if type(v) in (int, np.int64, np.int32) and 0 <= v < n:
                return int(v)
            try:
                return int(v) if (v == int(v) and v in G and 0 <= int(v) < n) else None
            except (TypeError, ValueError, OverflowError):
                return None
        return position
    index = {v: i for i, v in enumerate(nodelist)}
    return index.get


def complement(n, index):
    """The sorted indices 0..n-1 not in ``index`` (a mask: setdiff1d would sort n values)."""
    keep = np.ones(n, dtype=bool)
    keep[index] = False
    return np.flatnonzero(keep)


def _whole(d):
    """np.arange(d), made once per stalk dimension up to 4,096 (read-only: shared by every
    pin; larger stalks get their own, so the cache stays small)."""
    return _small_whole(d) if d <= 4096 else np.arange(d)


@functools.lru_cache(maxsize=64)
def _small_whole(d):
    a = np.arange(d)
    a.flags.writeable = False
    return a


def _parse_node_pin(node, spec, d):
    """Return (coordinates, values or None) pinned at one node."""
    named = True  # coordinates given by the caller (checked) rather than the whole stalk
    if spec is None or isinstance(spec, (set, frozenset, range)):
        named = spec is not None
        if spec is not None and not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool)
                                        for c in spec):
            raise SheafError(f"boundary at node {node!r}: coordinates must be integers, got "
                             f"{sorted(map(repr, spec))[:5]}")
        coords = np.arange(d) if spec is None else np.fromiter(spec, dtype=np.int64)
        vals = None
    elif isinstance(spec, dict):
        keys = list(spec)
        if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in keys):
            bad = next(c for c in keys
                       if not isinstance(c, (int, np.integer)) or isinstance(c, bool))
            raise SheafError(f"boundary at node {node!r}: coordinate {bad!r} is not an integer")
        coords = np.fromiter(keys, dtype=np.int64, count=len(keys))
        vals = [np.asarray(spec[c], dtype=float) for c in spec]
        shapes = {x.shape for x in vals}
        if len(shapes) > 1 or any(x.ndim > 1 for x in vals):
            raise SheafError(f"boundary at node {node!r}: coordinate values must all be scalars "
                             f"or all 1-D arrays of M samples, got shapes {sorted(shapes)}")
        vals = np.stack(vals) if vals else np.zeros(0)
    else:
        vals = np.asarray(spec, dtype=float)
        if vals.ndim == 0 or vals.ndim > 2 or vals.shape[0] != d:
            raise SheafError(f"boundary at node {node!r}: value has shape {vals.shape}, "
                             f"expected ({d},) or ({d}, M)")
        coords, named = _whole(d), False
    if named:  # the whole stalk (np.arange) needs no checks: thousands of pins stay cheap
        bad = coords[(coords < 0) | (coords >= d)]
        if bad.size:
            raise SheafError(f"boundary at node {node!r}: coordinate {int(bad[0])} is out of range "
                             f"for a stalk of dim {d}")
        if len(np.unique(coords)) != len(coords):
            raise SheafError(f"boundary at node {node!r} pins a coordinate twice")
    return coords, vals
