"""Cohomology of local systems by transport along a spanning forest.

When every stalk of a connected component has one dimension d and every restriction map
is an invertible d × d matrix (constant sheaves, signed and twisted cycles, O(d) and
SO(d) connections, ...), a global section is fixed by its value at one root vertex:
along a tree edge ``x_child = T x_parent`` with ``T = B⁻¹A`` (``A⁻¹B`` against the
orientation). Then

* ``H⁰`` of the component is the common kernel, in the root's stalk, of the holonomy
  constraints ``B_e T_head - A_e T_tail`` of the edges off the tree, and of the pinned
  coordinates ``(T_v)_{i,:}`` (relative cohomology);
* ``h¹ = h⁰ - (free coordinates - edge coordinates)`` by the index theorem.

The rank decision is made on a d-column matrix whose entries are products of the maps,
so it is exact for identity and signed-permutation maps and well conditioned whenever
the transports are orthogonal -- where a singular-value threshold on δ itself fails on
long paths (σ_min(δ) ~ π/n). A component is taken this way only when its transports are
orthogonal to 1e-10, or when it is a tree without pins (then ``h⁰ = d``, ``h¹ = 0``
needs only invertible maps); every other component is left to the numerical methods.
Transports are composed by pointer doubling: ⌈log₂ depth⌉ batched matrix products.
"""

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components

__all__ = ["forest_cohomology"]

#: maps whose condition number exceeds this are not treated as invertible
MAX_CONDITION = 1e10
#: transports farther than this from orthogonal (max entry of TᵀT - I) leave the component
#: to the numerical methods
ORTHOGONAL_TOL = 1e-10


def components(table):
    """(number of components, component label of every node) of the sheaf's graph."""
    n = len(table.nodelist)
    E = len(table.tails)
    adj = sp.coo_array((np.ones(E, dtype=np.int8), (table.tails, table.heads)), shape=(n, n))
    return connected_components(adj.tocsr(), directed=True, connection="weak")


def forest_cohomology(table, maps, free, labels, n_comp):
    """Per component, ``(h0, h1, sigma_zero, sigma_nonzero, tol)`` by transport, or None.

    Parameters
    ----------
    table : EdgeTable (with node_start, edge_start)
    maps : (A, B) stacks of shape (E, d, d), or None
    free : bool array over C⁰ (False on pinned coordinates)
    labels : component label of every node (from :func:`components`)

    Returns
    -------
    list with one entry per component: a tuple, or None where the component is not a
    local system this method decides soundly.
    """
    out = [None] * n_comp
    dims = np.asarray(table.dims)
    if maps is None or dims.size == 0:
        return out
    A, B = maps
    d = int(dims[0])
    if d == 0 or A.shape[1:] != (d, d) or B.shape[1:] != (d, d) or np.any(dims != d):
        return out
    n, E = dims.size, len(table.tails)
    edge_comp = labels[table.tails]
    ok = np.ones(n_comp, dtype=bool)
    if E:
        bad = ~((_cond(A) < MAX_CONDITION) & (_cond(B) < MAX_CONDITION))
        ok[np.unique(edge_comp[bad])] = False
    parent, tree_edge, forward = _spanning_forest(table, labels, n_comp)
    # transport from the parent to each node along its tree edge (identity at the roots)
    M = np.broadcast_to(np.eye(d), (n, d, d)).copy()
    child = np.flatnonzero(tree_edge >= 0)
    if child.size:
        e = tree_edge[child]
        f = forward[child]
        num = np.where(f[:, None, None], A[e], B[e])  # x_child = den⁻¹ num x_parent
        den = np.where(f[:, None, None], B[e], A[e])
        usable = ok[labels[child]]
        with np.errstate(all="ignore"):
            M[child[usable]] = np.linalg.solve(den[usable], num[usable])
    T = _compose(M, parent)
    has_pins = np.zeros(n_comp, dtype=bool)
    pinned = np.flatnonzero(~free)
    node_of_coord = np.repeat(np.arange(n), d)
    has_pins[np.unique(labels[node_of_coord[pinned]])] = True
    is_tree = np.bincount(edge_comp, minlength=n_comp) == np.bincount(labels, minlength=n_comp) - 1
    if n:
        dev = np.abs(np.einsum("nji,njk->nik", T, T) - np.eye(d)).max(axis=(1, 2))
        orth = np.ones(n_comp, dtype=bool)
        orth[np.unique(labels[~(dev <= ORTHOGONAL_TOL)])] = False
    else:
        orth = np.ones(n_comp, dtype=bool)
    sound = ok & (orth | (is_tree & ~has_pins))
    # constraint rows: holonomy of the edges off the tree, and the pinned coordinates
    off = np.ones(E, dtype=bool)
    off[tree_edge[tree_edge >= 0]] = False
    off = np.flatnonzero(off & sound[edge_comp])
    R_edges = B[off] @ T[table.heads[off]] - A[off] @ T[table.tails[off]]
    pin_rows = T.reshape(n * d, d)[pinned]
    row_comp = np.concatenate([np.repeat(edge_comp[off], d), labels[node_of_coord[pinned]]])
    rows = np.concatenate([R_edges.reshape(-1, d), pin_rows])
    scale = max(float(np.abs(A).max(initial=0)), float(np.abs(B).max(initial=0)), 1e-300) * d
    order = np.argsort(row_comp, kind="stable")
    bounds = np.searchsorted(row_comp[order], np.arange(n_comp + 1))
    free_per = np.bincount(labels[node_of_coord], weights=free, minlength=n_comp)
    edge_rows = np.bincount(edge_comp, minlength=n_comp) * d
    eps = np.finfo(float).eps
    for c in np.flatnonzero(sound):
        S = rows[order[bounds[c]:bounds[c + 1]]]
        t = max(S.shape[0], d) * eps * scale
        if S.shape[0]:
            s = np.linalg.svd(S, compute_uv=False)
            r = int(np.sum(s > t))
            sz = float(s[r]) if r < s.size else 0.0
            snz = float(s[r - 1]) if r else np.inf
        else:
            r, sz, snz = 0, 0.0, np.inf
        h0 = d - r
        h1 = h0 - int(round(free_per[c])) + int(edge_rows[c])
        out[c] = (h0, h1, sz, snz, float(t))
    return out


def _cond(X):
    """Condition numbers of a stack of square maps (once for a map shared by every edge)."""
    if X.shape[0] > 1 and X.strides[0] == 0:  # one map broadcast to every edge (a constant sheaf)
        return np.full(X.shape[0], _cond(np.ascontiguousarray(X[:1]))[0])
    if X.shape[1] == 1:
        return np.where(X[:, 0, 0] != 0, 1.0, np.inf)
    with np.errstate(all="ignore"):
        c = np.linalg.cond(X)
    return np.where(np.isfinite(c), c, np.inf)


def _spanning_forest(table, labels, n_comp):
    """BFS forest: parent of every node (itself at a root), the edge to its parent (-1 at a
    root) and whether that edge points from the parent to the node."""
    n = len(labels)
    tails, heads = table.tails, table.heads
    # one BFS from a virtual vertex joined to one root per component reaches every node
    roots = np.zeros(n_comp, dtype=np.int64)
    roots[labels[::-1]] = np.arange(n)[::-1]  # the first node of every component
    u = np.concatenate([tails, heads, np.full(n_comp, n)])
    v = np.concatenate([heads, tails, roots])
    adj = sp.csr_array((np.ones(u.size, dtype=np.int8), (u, v)), shape=(n + 1, n + 1))
    _, pred = breadth_first_order(adj, n, directed=True, return_predecessors=True)
    parent = pred[:n].astype(np.int64)
    is_root = parent == n
    parent[is_root] = np.flatnonzero(is_root)
    # the edge joining each node to its parent: look the unordered pair up among the edges
    key = np.minimum(tails, heads) * n + np.maximum(tails, heads)
    order = np.argsort(key, kind="stable")
    child = np.flatnonzero(~is_root)
    want = np.minimum(child, parent[child]) * n + np.maximum(child, parent[child])
    pos = np.searchsorted(key[order], want)
    tree_edge = -np.ones(n, dtype=np.int64)
    tree_edge[child] = order[pos]
    forward = np.zeros(n, dtype=bool)
    forward[child] = tails[tree_edge[child]] == parent[child]
    return parent, tree_edge, forward


def _compose(M, parent):
    """``T_v = M_v M_{p(v)} ... M_root`` for every node by pointer doubling (M_root = I).

    Invariant: ``T_v`` is the product of the factors from v up to (not including) ``Q_v``;
    each round doubles the distance, until every ``Q_v`` is a root.
    """
    T, Q = M.copy(), parent.copy()
    while np.any(Q != Q[Q]):
        T = T @ T[Q]
        Q = Q[Q]
    return T
