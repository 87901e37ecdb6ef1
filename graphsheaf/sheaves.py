"""Building sheaves and checking that a graph really is one.

A sheaf is a ``networkx.DiGraph`` (or ``MultiDiGraph``): node attribute ``dim``
(stalk dimension) and, on each edge ``(u, v)``, ``source_map`` of shape
``(d_e, dim[u])`` and ``target_map`` of shape ``(d_e, dim[v])``.
"""

import contextlib
import gc
import itertools
import numbers
import operator

import networkx as nx
import numpy as np
import scipy.sparse as sp

from ._addresses import addresses
from .exceptions import SheafError
from ._threads import available_workers, split_rows
from .maps import is_state_dependent

__all__ = ["EdgeTable", "constant_sheaf", "edge_label", "iter_edges", "random_sheaf", "validate_sheaf"]


def edge_label(e):
    """Readable name of an edge tuple for error messages: ``'a' -> 'b'`` (key k)."""
    if len(e) == 3:
        return f"{e[0]!r} -> {e[1]!r} (key {e[2]!r})"
    return f"{e[0]!r} -> {e[1]!r}"


def iter_edges(G, data=True):
    """Yield ``(edge, attrdict)`` with ``edge`` as in ``list(G.edges)`` (keys for multigraphs)."""
    if G.is_multigraph():
        for u, v, k, d in G.edges(keys=True, data=True):
            yield (u, v, k), d
    else:
        for u, v, d in G.edges(data=True):
            yield (u, v), d


def _map_shape(A):
    if is_state_dependent(A):
        shape = tuple(getattr(A, "shape", ()))
        return shape if len(shape) == 2 else None
    if sp.issparse(A):
        return A.shape
    arr = np.asarray(A)
    return arr.shape if arr.ndim == 2 else None


def _check_entries(A):
    """Return None when the constant map ``A`` is real and finite, else a description."""
    if sp.issparse(A):
        data = A.tocoo().data
    else:
        data = np.asarray(A)
    if data.dtype.kind == "O":
        try:
            data = data.astype(float)
        except (TypeError, ValueError):
            return "entries that are not numbers"
    elif data.dtype.kind not in "biufc":
        return f"non-numeric dtype {data.dtype}"
    if data.size and not np.all(np.isfinite(data)):
        bad = np.argwhere(~np.isfinite(np.asarray(data)))[0]
        return f"a non-finite entry (NaN or inf) at index {tuple(int(i) for i in bad)}"
    return None


def check_dim(G, node, dim):
    if dim not in G.nodes[node]:
        raise SheafError(f"node {node!r} has no {dim!r} attribute (its stalk dimension)")
    d = G.nodes[node][dim]
    if isinstance(d, bool) or not isinstance(d, numbers.Integral):
        if not isinstance(d, bool) and isinstance(d, numbers.Real) and float(d).is_integer():
            raise SheafError(f"node {node!r} has {dim}={d!r}, a float; stalk dimensions must be ints")
        raise SheafError(f"node {node!r} has {dim}={d!r}; stalk dimensions must be non-negative ints")
    if d < 0:
        raise SheafError(f"node {node!r} has negative {dim}={d}")
    if d >= 2**62:
        raise SheafError(f"node {node!r} has {dim}={d}: stalk dimensions must be integers from 0 "
                         "to 2^62")
    return int(d)


_MISSING = object()


class EdgeTable:
    """Edges of a sheaf with their maps, in a fixed order, for fast vectorised work.

    ``tails``/``heads`` are node positions in ``nodelist``, ``A``/``B`` the map
    objects and ``edges`` the edge tuples (built on first use). Each *distinct* map
    object is classified once (``codes_a``/``codes_b`` index into ``maps``), so a sheaf
    whose edges share one map (a constant sheaf) costs one check, not one per edge.

    When every map on one side is a plain numeric ndarray of one shape (random maps on a
    large graph), that side is also held as one stacked array of shape (E, rows, cols),
    built in one C-level pass; vectorised consumers use it and never look at the maps one
    by one (``maps`` and the codes are then built only if asked for). The stack is read in
    the maps' memory order (:meth:`stored`, for checks of every map); ``stack_a`` and
    ``stack_b`` are the same in edge order, gathered on first use.
    ``shared[side]`` is True when every edge of that side holds one and the same object.
    """

    def __init__(self, G, nodelist, edgelist, source_map, target_map):
        self.derived = {}  # what solvers compute from the table once (e.g. its node graph)
        with gc_paused():  # building ~|E| small objects: the cyclic GC would dominate
            self._build(G, nodelist, edgelist, source_map, target_map)

    def _build(self, G, nodelist, edgelist, source_map, target_map):
        # nodes 0..n-1 listed in order: a node is its own position and no index is needed
        ranged = is_range(nodelist)
        index = None if ranged and edgelist is None and not G.is_multigraph() else \
            {v: i for i, v in enumerate(nodelist)}
        self.node_index = index  # node -> position in nodelist, when it was needed (else None)
        self.ranged = ranged  # the nodes are 0..n-1 in order (a node is its own position)
        self._G, self._edges = G, edgelist
        if edgelist is None:
            # networkx's private adjacency dict read directly, in G.edges's order: the edge
            # dicts of 10⁶ edges in 0.17 s, against 0.41 s through G.edges(data=True) and
            # 0.69 s through the public G.adj views
            adj = G._adj
            if type(adj) is not dict:  # a graph view (G.subgraph, nx.reverse_view): materialise
                adj = {u: ({v: dict(kd) for v, kd in nbrs.items()} if G.is_multigraph()
                           else dict(nbrs)) for u, nbrs in G.adj.items()}
            chain = itertools.chain.from_iterable
            if G.is_multigraph():
                datas = [d for nbrs in adj.values() for kd in nbrs.values() for d in kd.values()]
                heads = [index[v] for nbrs in adj.values() for v, kd in nbrs.items() for _ in kd]
                counts = [sum(len(kd) for kd in nbrs.values()) for nbrs in adj.values()]
            else:  # C-level iteration: this loop runs once per edge of large graphs
                datas = list(chain(map(dict.values, adj.values())))
                counts = list(map(len, adj.values()))
                if ranged:
                    heads = np.fromiter(chain(adj.values()), dtype=np.int64, count=len(datas))
                else:
                    heads = list(map(index.__getitem__, chain(adj.values())))
            tail_pos = np.fromiter(adj if index is None else map(index.__getitem__, adj),
                                   dtype=np.int64, count=len(adj))
            self.tails = np.repeat(tail_pos, counts)
            self.heads = np.asarray(heads, dtype=np.int64)
        else:
            E = G.edges
            datas = [E[e] for e in edgelist]
            self.tails = np.array([index[e[0]] for e in edgelist], dtype=np.int64)
            self.heads = np.array([index[e[1]] for e in edgelist], dtype=np.int64)
        # Read the edge dicts and their maps in memory order, then put the results back in
        # edge order: adjacency order visits objects created in insertion order at random
        # addresses, and on 3·10⁶ edges the cache misses cost more than everything else
        # (13.2 s -> 5 s for the two 3×3 map stacks of a 10⁶-node graph, benchmarks/README.md).
        order = _memory_order(datas, source_map, target_map)
        self._inverse = None  # position in memory order of each edge (None: same order)
        if order is not None:
            datas = list(map(datas.__getitem__, order.tolist()))
            self._inverse = np.empty(len(order), dtype=np.int64)
            self._inverse[order] = np.arange(len(order))
        self._columns = {"a": _column(datas, source_map), "b": _column(datas, target_map)}
        self._edge_ordered = {}
        self._attrs = (source_map, target_map)
        self.shared = {side: _all_same(maps) for side, maps in self._columns.items()}
        # each side's stack as read (rows in memory order), until it is gathered into edge order
        self._stored = {side: None if self.shared[side] else _stacked(self._columns[side])
                        for side in "ab"}
        self._stored_inverse = {"a": self._inverse, "b": self._inverse}
        self._maps = None

    def stored(self, side):
        """``(stack, inverse)``: side ``"a"`` (source maps) or ``"b"`` as one (E, rows, cols)
        array with edge e's map in row ``inverse[e]`` (``inverse`` None: in edge order), or
        ``(None, None)`` when that side is not stacked. For work that does not depend on the
        order of the edges (checks of every map), which then never gathers the stack."""
        return self._stored[side], self._stored_inverse[side]

    def _stack(self, side):
        stack, inverse = self.stored(side)
        if inverse is not None and stack is not None:  # gathered once; only that copy is kept
            self._stored[side], self._stored_inverse[side] = _in_edge_order(stack, inverse), None
        return self._stored[side]

    @property
    def stack_a(self):
        """The source maps as one (E, rows, cols) array in edge order, or None (gathered
        on first use from the stack as read, see :meth:`stored`)."""
        return self._stack("a")

    @property
    def stack_b(self):
        """The target maps as one array in edge order, or None (see ``stack_a``)."""
        return self._stack("b")

    def _side(self, side):
        """The map objects of one side in edge order (built on first use)."""
        if side not in self._edge_ordered:
            col = self._columns[side]
            if self.shared[side] or self._inverse is None:
                self._edge_ordered[side] = col
            else:
                self._edge_ordered[side] = list(map(col.__getitem__, self._inverse.tolist()))
        return self._edge_ordered[side]

    @property
    def A(self):
        """Source maps (tails), in edge order."""
        return self._side("a")

    @property
    def B(self):
        """Target maps (heads), in edge order."""
        return self._side("b")

    def side_codes(self, side):
        """Codes of side ``"a"`` (tails, source maps) or ``"b"``, built on first use."""
        if self._maps is None:
            self._maps, self._codes_of = [], {}
        if side not in self._codes_of:
            maps, attr = (self.A, self._attrs[0]) if side == "a" else (self.B, self._attrs[1])
            with gc_paused():
                self._codes_of[side] = self._codes(maps, attr)
        return self._codes_of[side]

    @property
    def maps(self):
        """Distinct map objects; ``codes_a``/``codes_b`` index into this list."""
        self.side_codes("a")
        self.side_codes("b")
        return self._maps

    @property
    def codes_a(self):
        return self.side_codes("a")

    @property
    def codes_b(self):
        return self.side_codes("b")

    @property
    def has_state_maps(self):
        """True when some edge carries a state-dependent map."""
        if self._stored["a"] is not None and self._stored["b"] is not None:
            return False
        return any(is_state_dependent(m) for m in self.maps)

    @property
    def edges(self):
        if self._edges is None:
            self._edges = list(self._G.edges)
        return self._edges

    def _codes(self, maps, attr):
        if not maps:
            return np.zeros(0, dtype=np.int64)
        first = maps[0]
        if self.shared["a" if maps is self.A else "b"]:  # one shared map object
            if first is _MISSING:
                raise SheafError(f"{describe_edge(self.edges[0])} has no {attr!r} attribute")
            self._maps.append(first)
            return np.full(len(maps), len(self._maps) - 1, dtype=np.int64)
        pos = {}
        for m in maps:
            if id(m) not in pos:
                pos[id(m)] = len(self._maps) + len(pos)
                if m is _MISSING:
                    i = next(i for i, x in enumerate(maps) if x is _MISSING)
                    raise SheafError(f"{describe_edge(self.edges[i])} has no {attr!r} attribute")
        self._maps.extend({id(m): m for m in maps}.values())
        return np.fromiter((pos[id(m)] for m in maps), dtype=np.int64, count=len(maps))


def _all_same(maps):
    """True when every entry is one and the same object (compared at C level)."""
    return bool(maps) and all(map(operator.is_, maps, itertools.repeat(maps[0])))


def _memory_order(datas, *attrs):
    """A permutation listing the edge dicts ``datas`` by address, or None when it would not
    pay. In CPython ``id`` is the address, and objects created one after another (an edge
    dict and its maps) sit next to each other. Any order gives the same results; this one
    only makes reading many distinct map objects cache-friendly. When a sample of edges
    shares its map objects (a constant sheaf), there is nothing to stack: None."""
    if len(datas) < 2:
        return None
    sample = datas[:: max(1, len(datas) // 64)]
    if all(len({id(d.get(a)) for d in sample}) == 1 for a in attrs):
        return None
    return np.argsort(addresses(datas), kind="stable")


def _in_edge_order(stack, inverse):
    """``stack`` (rows in memory order) back in edge order (``inverse[e]``: edge e's row);
    None stays None, and so does a stack already in edge order (``inverse`` None)."""
    if stack is None or inverse is None:
        return stack
    # a gather on 2-D rows (np.take) is several times faster than a 3-D fancy-index scatter;
    # on large tables it is split over the cores (exact: each row is one copy)
    flat = stack.reshape(len(stack), -1)
    out = np.empty_like(flat)
    split_rows(lambda s: np.take(flat, inverse[s], axis=0, out=out[s], mode="clip"), len(flat),
               available_workers())
    return out.reshape(stack.shape)


def _stacked(maps):
    """All maps as one (E, r, c) array when they are numeric 2-D arrays of one shape, else None.

    Called only for a side whose edges do not share one map object (those keep the
    shared-map paths). NumPy discovers the common shape itself: ragged shapes, sparse or
    state-dependent maps and missing attributes make it fail or give an object array,
    and the per-map paths take over.
    """
    if len(maps) < 2:
        return None
    try:
        stack = np.array(maps)
    except (ValueError, TypeError):
        return None
    if stack.ndim != 3 or stack.dtype.kind not in "fiubc":
        return None
    return stack


def is_node_order(G, nodelist):
    """True when nodelist lists G's nodes in G's own order (checked by identity, at C level)."""
    return all(map(operator.is_, G.nodes, nodelist))


def is_range(nodelist):
    n = len(nodelist)
    # a few positions first: most node lists that are not 0..n-1 differ early, and the
    # full comparison builds a list of n ints (0.045 s at 10⁶ nodes)
    return (n > 0 and type(nodelist[0]) is int and type(nodelist[-1]) is int
            and all(nodelist[i] == i for i in (0, min(1, n - 1), n // 2, n - 1))
            and nodelist == list(range(n)))


def _column(datas, attr):
    """[d[attr] for d in datas], with a marker where the attribute is missing."""
    try:
        return list(map(operator.itemgetter(attr), datas))
    except KeyError:
        return [d.get(attr, _MISSING) for d in datas]


@contextlib.contextmanager
def gc_paused():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def describe_edge(e):
    return f"self-loop on {e[0]!r}" if e[0] == e[1] else f"edge {edge_label(e)}"


def validate_sheaf(G, *, dim="dim", source_map="source_map", target_map="target_map"):
    """Check that ``G`` is a well-formed sheaf; raise :class:`SheafError` otherwise.

    Checks that ``G`` is directed, that every node has an integer ``dim >= 0``, that
    every edge has both maps, that they are 2-D with equal row counts (the edge stalk
    dimension) and column counts matching the dims of the tail and head, and that
    constant maps are real and finite. State-dependent maps (see
    :mod:`graphsheaf.maps`) are checked by their ``shape``. The message names the node
    or edge at fault and the shapes involved.

    Parameters
    ----------
    G : networkx.DiGraph or MultiDiGraph
    dim, source_map, target_map : str
        Attribute names.

    Returns
    -------
    None

    Examples
    --------
    >>> G = nx.DiGraph()
    >>> G.add_node("a", dim=2); G.add_node("b", dim=1)
    >>> G.add_edge("a", "b", source_map=np.ones((1, 3)), target_map=np.ones((1, 1)))
    >>> gs.validate_sheaf(G)
    Traceback (most recent call last):
    ...
    graphsheaf.exceptions.SheafError: edge 'a' -> 'b': source_map has shape (1, 3), but node 'a' has dim 2
    """
    validated_table(G, list(G) if isinstance(G, nx.Graph) else None, None,
                     dim, source_map, target_map)


def _classify_maps(maps):
    """Shapes (rows, cols; -1 when not 2-D) and entry problems of distinct map objects.

    Plain 2-D ndarrays take a fast path: their finiteness is checked in one pass over
    all of them; only when that fails are they examined one by one for the message.
    """
    shapes = np.full((len(maps), 2), -1, dtype=np.int64)
    problems = [None] * len(maps)
    floats = []
    for i, m in enumerate(maps):
        if type(m) is np.ndarray and m.ndim == 2 and m.dtype.kind in "fiubc":
            shapes[i] = m.shape
            if m.dtype.kind in "fc":
                floats.append(i)
            continue
        shape = _map_shape(m)
        if shape is not None:
            shapes[i] = shape
            if not is_state_dependent(m):
                problems[i] = _check_entries(m)
    if floats:
        flat = np.concatenate([maps[i].ravel() for i in floats])
        if not np.isfinite(flat).all():
            for i in floats:
                problems[i] = _check_entries(maps[i])
    return shapes, problems


def _side_shapes(table, side):
    """Per-edge (rows, cols) of one side's maps and whether their entries are bad."""
    stack, inverse = table.stored(side)
    n = len(table.tails)
    if stack is not None:
        shapes = np.broadcast_to(np.array(stack.shape[1:], dtype=np.int64), (n, 2))
        if stack.dtype.kind in "fc" and stack.size:
            bad = ~np.isfinite(stack).all(axis=(1, 2))
            if inverse is not None:  # back in edge order: errors name the first bad edge
                bad = bad[inverse]
        else:
            bad = np.zeros(n, dtype=bool)
        return shapes, bad
    codes = table.side_codes(side)
    if table.shared[side]:  # one map object: classify it once
        shapes, problems = _classify_maps([table._maps[codes[0]]])
        bad = problems[0] is not None
        return np.broadcast_to(shapes[0], (n, 2)), np.full(n, bad)
    distinct, local = np.unique(codes, return_inverse=True)
    shapes, problems = _classify_maps([table._maps[i] for i in distinct])
    entry_bad = np.array([p is not None for p in problems], dtype=bool)
    local = local.ravel()
    return shapes[local], (entry_bad[local] if entry_bad.size else np.zeros(n, dtype=bool))


def validated_table(G, nodelist, edgelist, dim, source_map, target_map):
    """Validate ``G`` and return its :class:`EdgeTable` and node dims (in nodelist order)."""
    if not isinstance(G, nx.Graph):
        raise SheafError(f"expected a networkx DiGraph or MultiDiGraph, got {type(G).__name__}")
    if not G.is_directed():
        raise SheafError(
            "a sheaf needs oriented edges: got an undirected graph; use gs.constant_sheaf or "
            "gs.random_sheaf (which orient edges as they iterate) or build a DiGraph")
    nodes = G.nodes
    # networkx's node-attribute dict read directly (a private attribute, measured: on 10⁶
    # nodes 0.035 s against 0.044 s for G.nodes(data=True) and 0.17 s for G.nodes[v] per node)
    attrs = G._node.values() if len(nodelist) == len(G._node) and is_node_order(G, nodelist) \
        else map(G._node.__getitem__, nodelist)
    raw = list(map(dict.get, attrs, itertools.repeat(dim)))
    try:
        dims = np.array(raw, dtype=np.int64) if set(map(type, raw)) == {int} else None
    except OverflowError:  # an int beyond int64: checked node by node below
        dims = None
    if dims is None or (dims.size and dims.min() < 0):
        dims = np.array([check_dim(G, v, dim) for v in nodelist], dtype=np.int64)
    table = EdgeTable(G, nodelist, edgelist, source_map, target_map)
    sa, bad_a = _side_shapes(table, "a")
    sb, bad_b = _side_shapes(table, "b")
    bad = ((sa[:, 0] < 0) | (sb[:, 0] < 0) | (sa[:, 1] != dims[table.tails])
           | (sb[:, 1] != dims[table.heads]) | (sa[:, 0] != sb[:, 0]) | bad_a | bad_b)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        e = table.edges[i]
        where = describe_edge(e)
        for attr, m, end in ((source_map, table.A[i], 0), (target_map, table.B[i], 1)):
            shape = _map_shape(m)
            if shape is None:
                got = getattr(m, "shape", None) if is_state_dependent(m) else np.shape(m)
                raise SheafError(f"{where}: {attr} must be a 2-D matrix, got shape {got}")
            d = int(nodes[e[end]][dim])
            if shape[1] != d:
                raise SheafError(f"{where}: {attr} has shape {tuple(shape)}, "
                                 f"but node {e[end]!r} has dim {d}")
            if not is_state_dependent(m):
                problem = _check_entries(m)
                if problem is not None:
                    raise SheafError(f"{where}: {attr} has {problem}")
        raise SheafError(f"{where}: {source_map} has shape {tuple(_map_shape(table.A[i]))} and "
                         f"{target_map} has shape {tuple(_map_shape(table.B[i]))}; their row "
                         "counts (the edge stalk dimension) differ")
    table.dims = dims
    table.edge_dims = sa[:, 0]
    return table


def constant_sheaf(graph, dim=1, *, create_using=None):
    """Return the constant sheaf of dimension ``dim`` on a copy of ``graph``.

    Every stalk is R^dim and every restriction map is the identity. Undirected
    graphs are oriented as their edges iterate (``u -> v`` for each ``(u, v)`` of
    ``graph.edges``); multigraphs become ``MultiDiGraph`` with their keys kept.
    Node and edge attributes of ``graph`` are copied.

    Parameters
    ----------
    graph : networkx graph
    dim : int, default 1
    create_using : graph class, optional
        ``nx.DiGraph`` or ``nx.MultiDiGraph``; defaults to the one matching ``graph``.

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.cycle_graph(4), dim=2)
    >>> sorted(G.nodes[0].items()), G.edges[0, 1]["source_map"].tolist()
    ([('dim', 2)], [[1.0, 0.0], [0.0, 1.0]])
    """
    dim = int(dim)
    if dim < 0:
        raise SheafError(f"dim must be >= 0, got {dim}")
    I = np.eye(dim)
    I.setflags(write=False)  # shared by every edge: read-only so it cannot be mutated in place
    return _oriented_copy(graph, lambda v: dim, lambda u, v: (I, I), create_using)


def _oriented_copy(graph, node_dim, edge_maps, create_using):
    multi = graph.is_multigraph()
    cls = create_using or (nx.MultiDiGraph if multi else nx.DiGraph)
    G = cls()
    G.graph.update(graph.graph)
    for v, data in graph.nodes(data=True):
        G.add_node(v, **data)
        G.nodes[v]["dim"] = node_dim(v)
    if multi:
        edges = ((u, v, k, d) for u, v, k, d in graph.edges(keys=True, data=True))
    else:
        edges = ((u, v, None, d) for u, v, d in graph.edges(data=True))
    for u, v, k, d in edges:
        A, B = edge_maps(u, v)
        attrs = dict(d, source_map=A, target_map=B)
        if G.is_multigraph() and k is not None:
            G.add_edge(u, v, key=k, **attrs)
        else:
            G.add_edge(u, v, **attrs)
    return G


def random_sheaf(graph, dims, edge_dims, rng=None, *, create_using=None):
    """Return a sheaf on a copy of ``graph`` with Gaussian random restriction maps.

    Parameters
    ----------
    graph : networkx graph
        Undirected graphs are oriented as their edges iterate.
    dims : int, dict or callable
        Stalk dimension of every node: one int, a dict node -> int, or ``f(node)``.
    edge_dims : int, dict or callable
        Edge stalk dimensions: one int, a dict edge -> int, or ``f(u, v)``.
    rng : int or numpy.random.Generator, optional
        Seed or generator.

    Examples
    --------
    >>> G = gs.random_sheaf(nx.path_graph(3), dims=2, edge_dims=1, rng=0)
    >>> G.edges[0, 1]["source_map"].shape, G.edges[0, 1]["target_map"].shape
    ((1, 2), (1, 2))
    """
    rng = np.random.default_rng(rng)
    node_dim = _as_function(dims, "dims")
    edge_dim = _as_function(edge_dims, "edge_dims", edge=True)
    def maps(u, v):
        de = edge_dim(u, v)
        return (rng.standard_normal((de, node_dim(u))), rng.standard_normal((de, node_dim(v))))
    return _oriented_copy(graph, node_dim, maps, create_using)


def _as_function(spec, name, edge=False):
    if callable(spec):
        return spec
    if isinstance(spec, dict):
        if edge:
            def f(u, v):
                if (u, v) in spec:
                    return int(spec[(u, v)])
                if (v, u) in spec:
                    return int(spec[(v, u)])
                raise SheafError(f"{name} has no entry for edge {u!r} -> {v!r}")
            return f
        def g(v):
            if v not in spec:
                raise SheafError(f"{name} has no entry for node {v!r}")
            return int(spec[v])
        return g
    value = int(spec)
    if value < 0:
        raise SheafError(f"{name} must be >= 0, got {value}")
    return (lambda u, v: value) if edge else (lambda v: value)
