"""Cochain layouts, the coboundary and the sheaf Laplacian.

Orientation convention (used everywhere in graphsheaf): for an edge ``e = (u, v)``,
``(δx)_e = target_map @ x_v - source_map @ x_u`` -- head minus tail, the sign of
``nx.incidence_matrix(G, oriented=True)``. The Laplacian ``L = δᵀδ`` does not depend
on the orientation; ``δx``, per-edge residuals and H^1 representatives do.
"""

import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._repr import short_repr
from .exceptions import SheafError
from .maps import is_state_dependent
from .solvers import accumulate_product
from .sheaves import (EdgeTable, _check_dim, _gc_paused, _is_node_order, _is_range, _validated_table,
                      edge_label)

__all__ = [
    "Boundary",
    "boundary_coordinates",
    "coboundary_matrix",
    "cochain_dim",
    "edge_offsets",
    "stalk_offsets",
    "to_assignment",
    "to_vector",
]


# --------------------------------------------------------------------------- layout

def _nodelist(G, nodelist):
    if nodelist is None:
        return list(G)
    nodelist = list(nodelist)
    if len(nodelist) == len(G) and _is_node_order(G, nodelist):
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


def _edgelist(G, edgelist):
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


def _dims(G, nodelist, dim):
    nodes = G._node
    try:
        return np.array([nodes[v][dim] for v in nodelist], dtype=np.int64).reshape(len(nodelist))
    except KeyError:
        missing = next(v for v in nodelist if dim not in nodes[v])
        raise SheafError(f"node {missing!r} has no {dim!r} attribute (its stalk dimension)") from None
    except (OverflowError, TypeError, ValueError):
        for v in nodelist:  # the validator's own check names the node and what is wrong
            _check_dim(G, v, dim)
        raise


def _starts(sizes):
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
    nodelist = _nodelist(G, nodelist)
    start = _starts(_dims(G, nodelist, dim)).tolist()
    with _gc_paused():  # one object per node: on a big graph the cyclic GC would dominate
        return {v: slice(start[i], start[i + 1]) for i, v in enumerate(nodelist)}


def _edge_dim(data, e, source_map):
    if source_map not in data:
        raise SheafError(f"edge {edge_label(e)} has no {source_map!r} attribute")
    return _map_rows(data[source_map])


def edge_offsets(G, edgelist=None, *, source_map="source_map"):
    """Return a dict edge -> slice of that edge's block in a 1-cochain vector.

    Edges are tuples as in ``list(G.edges)`` (with keys for multigraphs).

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph), dim=2)
    >>> gs.edge_offsets(G)
    {(0, 1): slice(0, 2, None), (1, 2): slice(2, 4, None)}
    """
    edgelist = _edgelist(G, edgelist)
    sizes = [_edge_dim(G.edges[e], e, source_map) for e in edgelist]
    start = _starts(np.asarray(sizes, dtype=np.int64))
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
    nodelist = _nodelist(G, nodelist)
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
        x = _numeric(assignment[v])
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
    nodelist = _nodelist(G, nodelist)
    return assignment_of(nodelist, _dims(G, nodelist, dim), vector)


def assignment_of(nodelist, dims, vector):
    """:func:`to_assignment` for callers that hold the node order and stalk dimensions
    (an edge table's), skipping the graph reading."""
    vector = _numeric(vector)
    dims = np.asarray(dims)
    start = _starts(dims)
    if vector.ndim not in (1, 2) or vector.shape[0] != start[-1]:
        raise SheafError(f"vector has shape {vector.shape}, but dim C^0 = {start[-1]}")
    with _gc_paused():
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
    nodelist = _nodelist(G, nodelist)
    return boundary_of(G, nodelist, _starts(_dims(G, nodelist, dim)), boundary, require_values)


def boundary_of(G, nodelist, start, boundary, require_values=False):
    """:func:`boundary_coordinates` for callers that hold the node order and block starts (an
    edge table's ``nodelist`` and ``node_start``), skipping the graph reading."""
    position = _positions(G, nodelist)
    if boundary is None:
        boundary = {}
    if not isinstance(boundary, dict):
        if isinstance(boundary, (str, bytes)) or not hasattr(boundary, "__iter__"):
            boundary = [boundary]
        boundary = {v: None for v in boundary}
    pieces = []  # (node, global indices, values or None)
    with _gc_paused():  # a few objects per pin: on a big graph the cyclic GC would dominate
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
        values = np.concatenate([p[2] for p in pieces], axis=0)[order]
    elif require_values:
        raise SheafError("this boundary spec gives no values; pass a dict node -> value")
    else:
        values = None
    return Boundary(index[order], values, batch)


def _positions(G, nodelist):
    """node -> its position in nodelist (None if absent), without a dict over every node when
    the nodes are 0..n-1 in order (grids and generated graphs at a million nodes)."""
    n = len(nodelist)
    if _is_range(nodelist):
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


def _complement(n, index):
    """The sorted indices 0..n-1 not in ``index`` (a mask: setdiff1d would sort n values)."""
    keep = np.ones(n, dtype=bool)
    keep[index] = False
    return np.flatnonzero(keep)


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
        coords, named = np.arange(d), False
    if named:  # the whole stalk (np.arange) needs no checks: thousands of pins stay cheap
        bad = coords[(coords < 0) | (coords >= d)]
        if bad.size:
            raise SheafError(f"boundary at node {node!r}: coordinate {int(bad[0])} is out of range "
                             f"for a stalk of dim {d}")
        if len(np.unique(coords)) != len(coords):
            raise SheafError(f"boundary at node {node!r} pins a coordinate twice")
    if vals is not None and not np.isfinite(vals).all():
        raise SheafError(f"boundary at node {node!r} has a non-finite value")
    return coords, vals


# ------------------------------------------------------------------ map evaluation

def _state_value(G, state, node, nodelist, dim):
    if state is None:
        return None
    if node not in state:
        raise SheafError(f"state has no value for node {node!r}")
    s = np.asarray(state[node], dtype=float)
    d = G.nodes[node][dim]
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim != 1 or s.shape[0] != d:
        if s.ndim == 2 and s.shape[0] == d:
            raise SheafError(
                f"state at node {node!r} carries {s.shape[1]} samples; a single sparse operator "
                "needs one state: pass one column, e.g. {v: x[:, m] for v, x in state.items()}")
        raise SheafError(f"state at node {node!r} has shape {s.shape}, expected ({d},)")
    return s


def _as_dict_state(G, state, nodelist, dim):
    if state is None or isinstance(state, dict):
        return state
    return to_assignment(G, state, nodelist, dim=dim)


def _map_rows(m):
    return int(m.shape[0]) if (is_state_dependent(m) or hasattr(m, "shape")) else int(np.shape(m)[0])


def edge_table(G, nodelist=None, edgelist=None, *, dim="dim", source_map="source_map",
               target_map="target_map", validate=True):
    """Return the (validated) :class:`~graphsheaf.sheaves.EdgeTable` of ``G``.

    The table carries ``dims`` (node stalk dims in nodelist order), ``edge_dims``,
    ``node_start`` and ``edge_start`` (block offsets). Internal building block.
    """
    nodelist = _nodelist(G, nodelist)
    if edgelist is not None:
        edgelist = _edgelist(G, edgelist)
    if validate:
        table = _validated_table(G, nodelist, edgelist, dim, source_map, target_map)
    else:
        table = EdgeTable(G, nodelist, edgelist, source_map, target_map)
        table.dims = _dims(G, nodelist, dim)
        if table.stack_a is not None:
            table.edge_dims = np.full(len(table.tails), table.stack_a.shape[1], dtype=np.int64)
        else:
            rows = np.array([_map_rows(m) for m in table.maps], dtype=np.int64)
            table.edge_dims = rows[table.codes_a] if rows.size else np.zeros(0, dtype=np.int64)
    table.nodelist = nodelist
    table.node_start = _starts(table.dims)
    table.edge_start = _starts(table.edge_dims)
    _check_size(table)
    return table


def _memory_bytes():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 2**40


def _check_size(table):
    """Refuse cochain spaces that cannot fit in memory (one float per coordinate) before
    anything of their size is allocated: a 300-byte file may declare dim 10¹²."""
    n0, n1 = int(table.node_start[-1]), int(table.edge_start[-1])
    limit = _memory_bytes() // 8
    if n0 > limit or n1 > limit:
        dims = np.asarray(table.dims)
        big = table.nodelist[int(np.argmax(dims))] if dims.size else None
        raise SheafError(f"dim C^0 = {n0:,}, dim C^1 = {n1:,}: one vector of that size needs more "
                         f"than this machine's memory (largest stalk: node {big!r}, "
                         f"dim {int(dims.max()) if dims.size else 0:,})")


class _Evaluated:
    """Maps of an edge table evaluated at a state: dense float arrays or sparse matrices."""

    def __init__(self, G, table, state, dim, source_map, target_map):
        self.table = table
        self.uniform = _uniform_blocks(table)
        if self.uniform is not None:  # every map dense and of one shape per side: no per-map work
            return
        state = _as_dict_state(G, state, table.nodelist, dim)
        mats = [None if is_state_dependent(m) else (m if sp.issparse(m) else _numeric(m))
                for m in table.maps]
        codes_a, codes_b = table.codes_a.copy(), table.codes_b.copy()
        stateful = [i for i, m in enumerate(table.maps) if is_state_dependent(m)]
        if stateful:
            flag = np.zeros(len(table.maps), dtype=bool)
            flag[stateful] = True
            for codes, maps, attr, end in ((codes_a, table.A, source_map, 0),
                                           (codes_b, table.B, target_map, 1)):
                for i in np.flatnonzero(flag[codes]):
                    e = table.edges[i]
                    m = maps[i]
                    if state is None:
                        raise SheafError(f"edge {edge_label(e)}: {attr} is state-dependent ({m!r});"
                                         " pass state= (a dict node -> value) to evaluate it")
                    s = _state_value(G, state, e[end], table.nodelist, dim)
                    codes[i] = len(mats)
                    mats.append(np.asarray(m.matrix(s), dtype=float))
        self.mats, self.codes_a, self.codes_b = mats, codes_a, codes_b

    def groups(self):
        """Yield the edge indices of groups whose dense blocks share shapes, then the
        edges with a sparse map."""
        t = self.table
        if self.uniform is not None:
            yield np.arange(len(t.tails))
            return
        n = len(self.mats)
        is_sparse = np.array([sp.issparse(m) for m in self.mats], dtype=bool)
        cols = np.array([-1 if m is None else m.shape[1] for m in self.mats],
                        dtype=np.int64).reshape(n)
        edge_sparse = is_sparse[self.codes_a] | is_sparse[self.codes_b] if n else np.zeros(0, bool)
        keys = np.stack([t.edge_dims, cols[self.codes_a] if n else t.edge_dims,
                         cols[self.codes_b] if n else t.edge_dims], axis=1)
        dense = np.flatnonzero(~edge_sparse)
        if dense.size and np.all(keys[dense] == keys[dense[0]]):
            yield dense
        elif dense.size:
            uniq, inverse = np.unique(keys[dense], axis=0, return_inverse=True)
            inverse = inverse.ravel()
            order = np.argsort(inverse, kind="stable")
            bounds = _starts(np.bincount(inverse, minlength=len(uniq)))
            for g in range(len(uniq)):
                yield dense[order[bounds[g]:bounds[g + 1]]]
        sparse_edges = np.flatnonzero(edge_sparse)
        if sparse_edges.size:
            yield sparse_edges

    def stack(self, side, idx):
        """Blocks (n, r, c) of side "a" (tails) or "b" for edges idx, and whether they are
        one shared map."""
        if self.uniform is not None:
            S = self.uniform[0 if side == "a" else 1]
            return (S if len(idx) == len(S) else S[idx]), False
        c = (self.codes_a if side == "a" else self.codes_b)[idx]
        if np.all(c == c[0]):
            return self.mats[c[0]][None], True
        return np.stack([self.mats[k] for k in c]), False

    def is_sparse_group(self, idx):
        if self.uniform is not None:
            return False
        return sp.issparse(self.mats[self.codes_a[idx[0]]]) or sp.issparse(self.mats[self.codes_b[idx[0]]])


def check_finite_cochain(X, table, what="cochain"):
    """Raise SheafError naming the first node of a C⁰ vector (or batch) that is not finite."""
    bad = ~np.isfinite(X)
    if bad.any():
        coord = int(np.flatnonzero(bad.reshape(X.shape[0], -1).any(axis=1))[0])
        node = table.nodelist[int(np.searchsorted(table.node_start, coord, side="right") - 1)]
        raise SheafError(f"{what} at node {node!r} is not finite (NaN or infinity)")


def uniform_maps(table):
    """Every edge's maps as two float stacks ``(A, B)`` of shapes (E, r, c_a), (E, r, c_b)
    when they are dense and of one shape per side (shared maps are broadcast, not
    copied); None otherwise. Read-only views; internal building block."""
    if table.stack_a is None and table.stack_b is None and len(table.tails):
        # both sides share one map each (a constant sheaf): broadcast them
        E, out = len(table.tails), []
        for maps, side in ((table.A, "a"), (table.B, "b")):
            first = maps[0]
            if not table._shared[side] or type(first) is not np.ndarray or first.ndim != 2 \
                    or first.dtype.kind not in "fiubc":
                return None
            out.append(np.broadcast_to(_numeric(first), (E,) + first.shape))
        return tuple(out)
    return _uniform_blocks(table)


def _uniform_blocks(table):
    """(A, B) as float arrays (E, r, c_a), (E, r, c_b) when at least one side is stacked and
    the other is stacked too or one shared dense ndarray; else None."""
    if table.stack_a is None and table.stack_b is None:
        return None
    E = len(table.tails)
    out = []
    for stack, maps, side in ((table.stack_a, table.A, "a"), (table.stack_b, table.B, "b")):
        if stack is None:
            first = maps[0]
            if not table._shared[side] or type(first) is not np.ndarray or first.ndim != 2 \
                    or first.dtype.kind not in "fiubc":
                return None
            stack = np.broadcast_to(first, (E,) + first.shape)
        out.append(_numeric(stack))
    return tuple(out)


def _numeric(m):
    """A constant map as a float array, or complex when its entries are complex."""
    m = np.asarray(m)
    return m.astype(complex if m.dtype.kind == "c" else float, copy=False)


def _block_coo(row0, col0, blocks, sign, shared):
    """COO triplets for blocks (n, r, c) placed at (row0[i], col0[i]).

    With ``shared`` the single block ``blocks[0]`` is placed at every position and its
    zeros are dropped; distinct blocks are laid out whole (their zeros are removed
    once, in the final CSR). Indices are 32-bit when they fit.
    """
    itype = np.int32 if max(int(row0.max(initial=0)), int(col0.max(initial=0))) < 2**31 - 2**20 \
        else np.int64
    row0, col0 = row0.astype(itype, copy=False), col0.astype(itype, copy=False)
    if shared:
        block = blocks[0]
        nz_r, nz_c = np.nonzero(block)
        vals = sign * block[nz_r, nz_c]
        rows = (row0[:, None] + nz_r.astype(itype)[None, :]).ravel()
        cols = (col0[:, None] + nz_c.astype(itype)[None, :]).ravel()
        return rows, cols, np.broadcast_to(vals, (len(row0), len(vals))).ravel()
    n, r, c = blocks.shape
    rows = np.broadcast_to(row0[:, None, None] + np.arange(r, dtype=itype)[None, :, None], (n, r, c))
    cols = np.broadcast_to(col0[:, None, None] + np.arange(c, dtype=itype)[None, None, :], (n, r, c))
    return rows.ravel(), cols.ravel(), (sign * blocks).ravel()


def coboundary_matrix(G, nodelist=None, edgelist=None, *, state=None, dim="dim",
                      source_map="source_map", target_map="target_map", validate=True):
    """Return the coboundary δ: C^0 -> C^1 as a scipy sparse CSR array.

    For an edge ``e = (u, v)``: ``(δx)_e = target_map @ x_v - source_map @ x_u``
    (head minus tail). Rows follow ``edgelist`` blocks, columns ``nodelist`` blocks.

    Parameters
    ----------
    G : networkx.DiGraph or MultiDiGraph
        A sheaf.
    nodelist : list, optional
        Order of node blocks; defaults to ``list(G)``.
    edgelist : list, optional
        Order of edge blocks; defaults to ``list(G.edges)`` (keys for multigraphs).
    state : dict, optional
        Assignment node -> value (one sample) at which state-dependent maps are evaluated.
    dim, source_map, target_map : str
        Attribute names.
    validate : bool, default True
        Check the sheaf first (see :func:`validate_sheaf`).

    Returns
    -------
    scipy.sparse.csr_array of shape (dim C^1, dim C^0)

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    >>> gs.coboundary_matrix(G).toarray().tolist()
    [[-1.0, 1.0, 0.0], [0.0, -1.0, 1.0]]
    """
    table = edge_table(G, nodelist, edgelist, dim=dim, source_map=source_map,
                       target_map=target_map, validate=validate)
    return _coboundary_of(G, table, state, dim, source_map, target_map)


def _coboundary_of(G, table, state=None, dim="dim", source_map="source_map", target_map="target_map"):
    """δ of an already built edge table (callers that hold one skip re-reading the graph)."""
    return _assemble_coboundary(table, _Evaluated(G, table, state, dim, source_map, target_map))


def _assemble_coboundary(table, ev):
    """δ as CSR from evaluated maps: COO triplets per block-shape group, one conversion."""
    if ev.uniform is not None:
        return _coboundary_uniform(table, *ev.uniform)
    rows, cols, data = [], [], []
    for idx in ev.groups():
        row0 = table.edge_start[idx]
        for side, ends, sign in (("a", table.tails, -1.0), ("b", table.heads, 1.0)):
            col0 = table.node_start[ends[idx]]
            if ev.is_sparse_group(idx):
                codes = ev.codes_a if side == "a" else ev.codes_b
                for r0, c0, k in zip(row0, col0, codes[idx]):
                    M = sp.coo_array(ev.mats[k])
                    rows.append(r0 + M.row)
                    cols.append(c0 + M.col)
                    data.append(sign * _numeric(M.data))
                continue
            blocks, shared = ev.stack(side, idx)
            r, c, v = _block_coo(row0, col0, blocks, sign, shared)
            rows.append(r)
            cols.append(c)
            data.append(v)
    shape = (int(table.edge_start[-1]), int(table.node_start[-1]))
    return _coo_to_csr(rows, cols, data, shape)


def _index_type(*extents):
    """int32 when every extent fits, else int64."""
    return np.int32 if max(extents, default=0) < 2**31 - 1 else np.int64


def _coboundary_uniform(table, A, B):
    """δ written straight into CSR arrays when all maps on a side share one shape.

    Every row of edge e holds the c_a entries of its tail block then the c_b entries of
    its head block (swapped where the head comes first, so indices are sorted): the
    arrays are exactly the nonzeros, with no COO stage and no sort.
    """
    E, r, ca = A.shape
    cb = B.shape[2]
    shape = (int(table.edge_start[-1]), int(table.node_start[-1]))
    w = ca + cb
    itype = _index_type(shape[1], E * r * w)
    if E * r * w == 0:
        return sp.csr_array(shape)
    tail0 = table.node_start[table.tails].astype(itype)
    head0 = table.node_start[table.heads].astype(itype)
    cols = np.empty((E, w), dtype=itype)
    np.add(tail0[:, None], np.arange(ca, dtype=itype), out=cols[:, :ca])
    np.add(head0[:, None], np.arange(cb, dtype=itype), out=cols[:, ca:])
    data = np.empty((E, r, w), dtype=np.result_type(A, B))
    np.negative(A, out=data[:, :, :ca])
    data[:, :, ca:] = B
    swap = np.flatnonzero(tail0 > head0)
    if swap.size:
        perm = (np.arange(w) + ca) % w  # head block first
        cols[swap] = cols[swap][:, perm]
        data[swap] = data[swap][:, :, perm]
    indices = (cols if r == 1 else np.repeat(cols, r, axis=0)).reshape(-1)
    del cols
    indptr = np.arange(0, E * r * w + 1, w, dtype=itype)
    out = sp.csr_array((data.reshape(-1), indices, indptr), shape=shape)
    if np.any(tail0 == head0):  # a self-loop puts both blocks in the same columns
        out.sum_duplicates()
    else:
        out.has_canonical_format = True
    out.eliminate_zeros()
    return out


def _coo_to_csr(rows, cols, data, shape):
    # 32-bit indices whenever they fit: half the index memory, faster conversion
    itype = _index_type(*shape)
    if rows:
        rows = np.concatenate(rows).astype(itype, copy=False)
        cols = np.concatenate(cols).astype(itype, copy=False)
        data = np.concatenate(data)
    else:
        rows = cols = np.zeros(0, dtype=itype)
        data = np.zeros(0)
    out = sp.coo_array((data, (rows, cols)), shape=shape).tocsr()
    out.sum_duplicates()
    out.eliminate_zeros()
    return out


def laplacian_of(G, table, state=None, dim="dim", source_map="source_map", target_map="target_map"):
    """L = δᵀδ of an already built edge table (callers that hold one skip re-reading the
    graph); internal building block of :func:`sheaf_laplacian`."""
    ev = _Evaluated(G, table, state, dim, source_map, target_map)
    if ev.uniform is not None:
        A, B = ev.uniform
        d = A.shape[2]
        if B.shape[2] == d and d > 0 and np.all(table.dims == d) \
                and not (np.iscomplexobj(A) or np.iscomplexobj(B)):
            return _laplacian_uniform(table, A, B)
    rows, cols, data = [], [], []
    for idx in ev.groups():
        t0, h0 = table.node_start[table.tails[idx]], table.node_start[table.heads[idx]]
        if ev.is_sparse_group(idx):
            for i, (a, b) in enumerate(zip(ev.codes_a[idx], ev.codes_b[idx])):
                A, B = sp.csr_array(ev.mats[a]), sp.csr_array(ev.mats[b])
                for X, Y, r0, c0, sign in ((A, A, t0[i], t0[i], 1.0), (B, B, h0[i], h0[i], 1.0),
                                           (A, B, t0[i], h0[i], -1.0), (B, A, h0[i], t0[i], -1.0)):
                    M = sp.coo_array(X.conj().T @ Y)
                    rows.append(r0 + M.row)
                    cols.append(c0 + M.col)
                    data.append(sign * M.data)
            continue
        A, shared_a = ev.stack("a", idx)
        B, shared_b = ev.stack("b", idx)
        shared = shared_a and shared_b
        if not shared:  # broadcast a shared side so the per-edge products line up
            A = np.broadcast_to(A, (len(idx),) + A.shape[1:])
            B = np.broadcast_to(B, (len(idx),) + B.shape[1:])
        for X, Y, r0, c0, sign in ((A, A, t0, t0, 1.0), (B, B, h0, h0, 1.0),
                                   (A, B, t0, h0, -1.0), (B, A, h0, t0, -1.0)):
            block = np.einsum("nij,nik->njk", X.conj() if np.iscomplexobj(X) else X, Y)
            r, c, v = _block_coo(r0, c0, block, sign, shared)
            rows.append(r)
            cols.append(c)
            data.append(v)
    n = int(table.node_start[-1])
    return _coo_to_csr(rows, cols, data, (n, n))


def _laplacian_uniform(table, A, B):
    """L for stalks all of dim d and maps (E, r, d): d×d blocks summed per node pair, then
    one block-sparse (BSR) array converted to CSR, so the work and memory stay near the
    size of the nonzeros."""
    E, _, d = A.shape
    n = len(table.dims)
    t, h = table.tails, table.heads
    itype = _index_type(n * d, E)
    # diagonal blocks: Σ AᵀA over edges leaving the node + Σ BᵀB over edges entering it
    diag = np.empty((n, d * d))
    AtA = np.einsum("nij,nik->njk", A, A).reshape(E, d * d)
    BtB = np.einsum("nij,nik->njk", B, B).reshape(E, d * d)
    for k in range(d * d):  # d² weighted bincounts, each vectorised over the edges
        diag[:, k] = np.bincount(t, AtA[:, k], n) + np.bincount(h, BtB[:, k], n)
    del AtA, BtB
    AtB = np.einsum("nij,nik->njk", A, B)
    loops = t == h
    if loops.any():  # a self-loop's cross terms -AᵀB - BᵀA land on its own diagonal block
        l = np.flatnonzero(loops)
        cross = (AtB[l] + AtB[l].transpose(0, 2, 1)).reshape(len(l), d * d)
        for k in range(d * d):
            diag[:, k] -= np.bincount(t[l], cross[:, k], n)
        keep = ~loops
        t, h, AtB = t[keep], h[keep], AtB[keep]
    m = len(t)
    # block (row, col) keys: the diagonal, then (t, h) for -AᵀB, then (h, t) for -BᵀA
    key = np.empty(n + 2 * m, dtype=np.int64)
    key[:n] = np.arange(n, dtype=np.int64) * (n + 1)
    np.multiply(t, n, out=key[n:n + m])
    key[n:n + m] += h
    np.multiply(h, n, out=key[n + m:])
    key[n + m:] += t
    order = np.argsort(key, kind="stable")
    key = key[order]
    # gather the blocks in sorted order straight from their three sources
    blocks = np.empty((len(order), d, d))
    src = order < n
    blocks[src] = diag.reshape(n, d, d)[order[src]]
    src = (order >= n) & (order < n + m)
    blocks[src] = -AtB[order[src] - n]
    src = order >= n + m
    blocks[src] = -AtB[order[src] - n - m].transpose(0, 2, 1)
    del src, order, diag, AtB
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    if len(starts) < len(key):  # parallel or antiparallel edges share a block: sum them
        blocks = np.add.reduceat(blocks, starts, axis=0)
        key = key[starts]
    rows = key // n
    indptr = np.zeros(n + 1, dtype=itype)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    indices = (key - rows * n).astype(itype)
    del key, rows
    L = sp.bsr_array((blocks, indices, indptr), shape=(n * d, n * d)).tocsr()
    L.eliminate_zeros()
    return L


class CoboundaryOperator:
    """δ and δᵀ as callables that also handle state-dependent maps and batches.

    Constant maps go into one sparse matrix; each state-dependent map is applied
    through its ``apply``/``rapply`` protocol at the current state, so a batch of M
    samples with M different activation patterns is handled in one call (vectorised
    over samples, looping only over the state-dependent edges).

    Parameters
    ----------
    G : sheaf
    nodelist, edgelist : optional orders
    validate : bool

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    >>> op = CoboundaryOperator(G)
    >>> op.matvec(np.array([0.0, 1.0, 3.0])).tolist()
    [1.0, 2.0]
    """

    def __init__(self, G, nodelist=None, edgelist=None, *, dim="dim", source_map="source_map",
                 target_map="target_map", validate=True):
        table = edge_table(G, nodelist, edgelist, dim=dim, source_map=source_map,
                           target_map=target_map, validate=validate)
        self.table = table
        self.shape = (int(table.edge_start[-1]), int(table.node_start[-1]))
        self.stateful_ends = []  # (rows slice, cols slice, node, map, sign)
        if table.has_state_maps:
            stateful = np.array([is_state_dependent(m) for m in table.maps], dtype=bool)
            ns, es = table.node_start, table.edge_start
            for codes, ends, maps, _end, sign in ((table.codes_a, table.tails, table.A, 0, -1.0),
                                                 (table.codes_b, table.heads, table.B, 1, 1.0)):
                for i in np.flatnonzero(stateful[codes]):
                    node = table.nodelist[ends[i]]
                    self.stateful_ends.append((slice(es[i], es[i + 1]),
                                               slice(ns[ends[i]], ns[ends[i] + 1]),
                                               node, maps[i], sign, table.edges[i]))
        self.const = self._constant_part(G, dim, source_map, target_map)
        self.G = G
        self._products = None  # in-place const / constᵀ products, made on first use

    def _constant_part(self, G, dim, source_map, target_map):
        table = self.table
        if not self.stateful_ends:
            return _coboundary_of(G, table, None, dim, source_map, target_map)
        # evaluate every state-dependent map as a zero matrix of its shape
        state = {v: np.zeros(int(d)) for v, d in zip(table.nodelist, table.dims)}
        ev = _Evaluated(G, table, state, dim, source_map, target_map)
        stateful = {id(m) for *_, m, _s, _e in self.stateful_ends}
        for k, m in enumerate(table.maps):
            if id(m) in stateful:
                ev.mats[k] = np.zeros(m.shape)
        # stateful entries were appended per edge: zero those too
        for k in range(len(table.maps), len(ev.mats)):
            ev.mats[k] = np.zeros_like(ev.mats[k])
        return _assemble_coboundary(table, ev)

    def _into(self, transpose, X, out):
        """out = const X (or constᵀ X) in place."""
        if self._products is None:
            self._products = (accumulate_product(self.const),
                              accumulate_product(self.const, transpose=True))
        out.fill(0.0)
        self._products[transpose](X, out)
        return out

    @property
    def is_linear(self):
        """True when no map depends on the state."""
        return not self.stateful_ends

    def _state_blocks(self, state, X):
        if state is None:
            if self.stateful_ends:
                e = self.stateful_ends[0][5]
                raise SheafError(f"edge {edge_label(e)} has a state-dependent map; pass state=")
            return None
        if isinstance(state, dict):
            state = to_vector(self.G, {v: state[v] for v in self.table.nodelist if v in state},
                              self.table.nodelist) if self.stateful_ends else None
        return state

    def matvec(self, X, state=None, out=None):
        """Return δX for X of shape (n,) or (n, M); ``state`` (dict or vector) for state maps.

        ``out``: an array of the result's shape to write into (the constant part then goes
        in place through the compiled kernels; an iteration needs no temporary).
        """
        Y = self.const @ X if out is None else self._into(False, X, out)
        S = self._state_blocks(state, X)
        for rows, cols, _node, m, sign, _e in self.stateful_ends:
            Y[rows] += sign * m.apply(_match(S[cols], X[cols]), X[cols])
        return Y

    def rmatvec(self, Y, state=None, X_shape=None, out=None):
        """Return δᵀY for Y of shape (m,) or (m, M); ``out`` as in :meth:`matvec`."""
        Z = self.const.T @ Y if out is None else self._into(True, Y, out)
        S = self._state_blocks(state, Y)
        for rows, cols, _node, m, sign, _e in self.stateful_ends:
            Z[cols] += sign * m.rapply(_match(S[cols], Y[rows]), Y[rows])
        return Z


def _match(s, x):
    """Broadcast a single state (d,) over a batch x of shape (d, M)."""
    if s.ndim == 1 and x.ndim == 2:
        return np.repeat(s[:, None], x.shape[1], axis=1)
    return s
