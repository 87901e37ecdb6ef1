"""The edge table, the coboundary and the sheaf Laplacian (layouts: :mod:`graphsheaf.layout`).

Orientation convention (used everywhere in graphsheaf): for an edge ``e = (u, v)``,
``(δx)_e = target_map @ x_v - source_map @ x_u`` -- head minus tail, the sign of
``nx.incidence_matrix(G, oriented=True)``. The Laplacian ``L = δᵀδ`` does not depend
on the orientation; ``δx``, per-edge residuals and H^1 representatives do.
"""

import os

import numpy as np
import scipy.sparse as sp

from .exceptions import SheafError
from .maps import is_state_dependent
from .solvers import accumulate_product
from .laplacian_blocks import index_type, uniform_laplacian
from .layout import (Boundary, block_starts, boundary_coordinates, cochain_dim, edge_offsets,
                     edgelist_of, map_rows, nodelist_of, numeric, stalk_dims, stalk_offsets,
                     to_assignment, to_vector)
from .sheaves import EdgeTable, validated_table, edge_label

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


def edge_table(G, nodelist=None, edgelist=None, *, dim="dim", source_map="source_map",
               target_map="target_map", validate=True):
    """Return the (validated) :class:`~graphsheaf.sheaves.EdgeTable` of ``G``.

    The table carries ``dims`` (node stalk dims in nodelist order), ``edge_dims``,
    ``node_start`` and ``edge_start`` (block offsets). Internal building block.
    """
    nodelist = nodelist_of(G, nodelist)
    if edgelist is not None:
        edgelist = edgelist_of(G, edgelist)
    if validate:
        table = validated_table(G, nodelist, edgelist, dim, source_map, target_map)
    else:
        table = EdgeTable(G, nodelist, edgelist, source_map, target_map)
        table.dims = stalk_dims(G, nodelist, dim)
        stack = table.stored("a")[0]
        if stack is not None:
            table.edge_dims = np.full(len(table.tails), stack.shape[1], dtype=np.int64)
        else:
            rows = np.array([map_rows(m) for m in table.maps], dtype=np.int64)
            table.edge_dims = rows[table.codes_a] if rows.size else np.zeros(0, dtype=np.int64)
    table.nodelist = nodelist
    table.node_start = block_starts(table.dims)
    table.edge_start = block_starts(table.edge_dims)
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
        mats = [None if is_state_dependent(m) else (m if sp.issparse(m) else numeric(m))
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
            bounds = block_starts(np.bincount(inverse, minlength=len(uniq)))
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
    E, out = len(table.tails), []
    for side in "ab":
        stack = table.stack_a if side == "a" else table.stack_b
        if stack is None:  # one map shared by every edge of this side, or no stack at all
            first = (table.A if side == "a" else table.B)[0] if E else None
            if not E or not table.shared[side] or type(first) is not np.ndarray \
                    or first.ndim != 2 or first.dtype.kind not in "fiubc":
                return None
            stack = np.broadcast_to(numeric(first), (E,) + first.shape)
        out.append(numeric(stack))
    return tuple(out)


def _dense_shared_maps(table):
    """(A, B) broadcast when each side shares one map and neither has a zero entry, else
    None. Such sheaves (the constant sheaf of dim 1, one scalar weight) take the block path
    of the Laplacian, which writes L[Ω,Ω] and its neighbours directly: on a 1000×1000 grid
    0.3-0.6 s against 0.6-1.0 s for L through the per-map path and slicing. Maps with zeros
    stay on the per-map path, which drops a shared map's zeros (identity maps of dim 3:
    2.0 s against 0.7 s through the blocks)."""
    maps = uniform_maps(table)
    if maps is None or not all(np.all(X[0] != 0) for X in maps if len(X)):
        return None
    return maps


def _uniform_blocks(table):
    """:func:`uniform_maps` when at least one side is stacked (the per-map paths handle
    sheaves whose two sides each share one map); else None."""
    if table.stored("a")[0] is None and table.stored("b")[0] is None:
        return None
    return uniform_maps(table)


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
    return coboundary_of(G, table, state, dim, source_map, target_map)


def coboundary_of(G, table, state=None, dim="dim", source_map="source_map", target_map="target_map"):
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
                    data.append(sign * numeric(M.data))
                continue
            blocks, shared = ev.stack(side, idx)
            r, c, v = _block_coo(row0, col0, blocks, sign, shared)
            rows.append(r)
            cols.append(c)
            data.append(v)
    shape = (int(table.edge_start[-1]), int(table.node_start[-1]))
    return _coo_to_csr(rows, cols, data, shape)


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
    itype = index_type(shape[1], E * r * w)
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
    itype = index_type(*shape)
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


def laplacian_of(G, table, state=None, dim="dim", source_map="source_map", target_map="target_map",
                 split=None, workers=1):
    """L = δᵀδ of an already built edge table (callers that hold one skip re-reading the
    graph); internal building block of :func:`sheaf_laplacian`.

    ``split`` (a bool per node, True for the free ones) asks for the blocks
    ``(L[Ω,Ω], L[Ω,U], L[U,U], D)`` of whole free and pinned stalks instead, assembled
    directly (no slicing of L), with D the free nodes' diagonal blocks (n_free, d, d);
    it returns None where the stalks and maps are not uniform. ``workers``: threads for
    the block products, the gather of the blocks and their conversion to CSR when the
    stalks and maps are uniform and large.
    """
    # (in edge order, although L is a sum over edges: with the tails in adjacency order
    # the block keys come nearly sorted and the diagonal sums read sequentially; in the
    # stored memory order both are random, 10⁶ nodes: +1 s against the 0.5 s of gathering
    # the maps into edge order)
    ev = _Evaluated(G, table, state, dim, source_map, target_map)
    uniform = ev.uniform if ev.uniform is not None else _dense_shared_maps(table)
    if uniform is not None:
        A, B = uniform
        d = A.shape[2]
        if B.shape[2] == d and d > 0 and np.all(table.dims == d) \
                and not (np.iscomplexobj(A) or np.iscomplexobj(B)):
            return uniform_laplacian(table, A, B, split, workers)
    if split is not None:
        return None
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
            return coboundary_of(G, table, None, dim, source_map, target_map)
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
