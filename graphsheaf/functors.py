"""Pushforward and pullback of graph sheaves along graph homomorphisms.

A graph homomorphism is given as a dict ``f``: node -> node. An edge ``(u, v)`` maps to
the edge between ``f(u)`` and ``f(v)`` (in either orientation), or collapses onto the
vertex ``f(u)`` when ``f(u) == f(v)``.

Pushforward (Curry, *Sheaves, Cosheaves and Applications*, 2014, §4; the construction of
CellularSheaves.jl's ``pushforward_sheaf``): the stalk of ``f_*F`` at a vertex w is the
space of sections of F over the open set ``f⁻¹(star w)``. Edges of that set that cross out
of the fibre are determined by their vertex in the fibre, so this is ``H⁰`` of F
restricted to the fibre ``f⁻¹(w)`` (its vertices and collapsed edges). The stalk at an edge
ε is the direct sum of F's stalks at the edges mapped onto ε, and the restriction maps
read each crossing edge's value from the fibre's section. Consequently
``H⁰(H; f_*F) ≅ H⁰(G; F)``.

Pullback: ``(f^*F)(v) = F(f(v))`` and ``(f^*F)(e) = F(f(e))``, with F's maps (swapped when
the edge maps against the orientation) and identities on collapsed edges.
"""

from collections import defaultdict

import networkx as nx
import numpy as np

from .constructions import dense_map, edge_maps
from .exceptions import SheafError
from .sheaves import describe_edge, validate_sheaf

__all__ = ["pullback", "pushforward"]


def _check_map(F, f, what):
    if not hasattr(f, "items"):
        raise SheafError(f"{what}: the graph map f must be a dict node -> node, got {type(f).__name__}")
    missing = [v for v in F if v not in f]
    if missing:
        raise SheafError(f"{what}: the graph map f sends no image for node {missing[0]!r}")


def _fibre_basis(F, nodes, dim, source_map, target_map):
    """Orthonormal basis of H⁰ of F on the subgraph induced by ``nodes`` (rows in ``nodes``'
    stalk order), and each node's row offset."""
    from .cohomology import cohomology  # cohomology imports the layout modules this one feeds

    sub = F.subgraph(nodes)
    nodes = list(sub)  # the subgraph's own node order is the order of the basis rows
    dims = [int(F.nodes[v][dim]) for v in nodes]
    offsets = dict(zip(nodes, np.concatenate([[0], np.cumsum(dims)[:-1]]).astype(int)))
    if sub.number_of_edges() == 0:
        return np.eye(sum(dims)), offsets
    c = cohomology(sub, bases=True, dim=dim, source_map=source_map, target_map=target_map)
    return c.h0_basis, offsets


def pushforward(F, f, *, target=None, dim="dim", source_map="source_map",
                target_map="target_map"):
    """Return the pushforward ``f_*F`` of the sheaf F along the graph map ``f``.

    Parameters
    ----------
    F : networkx.DiGraph or MultiDiGraph
        A sheaf on a graph G.
    f : dict
        Node of G -> node of the target graph. Every edge of G must map onto an edge of
        the target (either orientation) or collapse (both ends to one node).
    target : networkx graph, optional
        The target graph H (undirected graphs are oriented as their edges iterate); its
        nodes and edges with empty preimage get stalks of dimension 0. By default H is
        the image of G: the nodes ``f(v)`` and an edge per pair of images joined by a
        crossing edge, oriented as the first such edge.

    Returns
    -------
    networkx.DiGraph
        The sheaf ``f_*F`` on H. Node attribute ``"fiber"`` lists the nodes of G mapped
        there and ``"fiber_basis"`` is the orthonormal basis (rows: the fibre's stalks in
        that order) of the fibre's sections that the stalk's coordinates refer to: a
        global section x of F is ``y_w = fiber_basisᵀ x|fiber`` on ``f_*F``.

    Examples
    --------
    Folding a 6-cycle onto a triangle keeps the global sections:

    >>> import networkx as nx, graphsheaf as gs
    >>> F = gs.constant_sheaf(nx.cycle_graph(6))
    >>> P = gs.pushforward(F, {v: v % 3 for v in range(6)})
    >>> gs.cohomology(P).h0 == gs.cohomology(F).h0 == 1
    True
    """
    validate_sheaf(F, dim=dim, source_map=source_map, target_map=target_map)
    _check_map(F, f, "pushforward")
    fibres = defaultdict(list)
    for v in F:
        fibres[f[v]].append(v)
    H = nx.DiGraph()
    if target is not None:
        if target.is_multigraph():
            raise SheafError("pushforward: the target must be a simple graph (a DiGraph or Graph): "
                             "a multigraph's parallel edges leave the image of an edge ambiguous")
        H.add_nodes_from(target.nodes)
        H.add_edges_from(target.edges)
        bad = next((w for w in fibres if w not in H), None)
        if bad is not None:
            raise SheafError(f"pushforward: f sends node {fibres[bad][0]!r} to {bad!r}, which is "
                             "not a node of the target")
    else:
        H.add_nodes_from(fibres)
    groups = defaultdict(list)  # target edge -> [(tail-side map, head-side map, u side, v side)]
    for e, _, A, B in edge_maps(F, source_map, target_map):
        p, q = f[e[0]], f[e[1]]
        if p == q:
            continue  # collapsed: part of the fibre's sections
        if target is None and not H.has_edge(p, q) and not H.has_edge(q, p):
            H.add_edge(p, q)
        if H.has_edge(p, q):
            groups[(p, q)].append((A, e[0], B, e[1]))
        elif H.has_edge(q, p):
            groups[(q, p)].append((B, e[1], A, e[0]))
        else:
            raise SheafError(f"pushforward: {describe_edge(e)} maps to {p!r} -> {q!r}, which is not an "
                             "edge of the target: f is not a graph homomorphism")
    bases = {w: _fibre_basis(F, fibres[w], dim, source_map, target_map) for w in fibres}
    for w in H:
        K, _ = bases.get(w, (np.zeros((0, 0)), {}))
        H.nodes[w].update({dim: int(K.shape[1]), "fiber": list(fibres.get(w, [])),
                           "fiber_basis": K})
    for p, q in H.edges:
        Kp, off_p = bases.get(p, (np.zeros((0, 0)), {}))
        Kq, off_q = bases.get(q, (np.zeros((0, 0)), {}))
        rows_p, rows_q = [], []
        for Ma, a, Mb, b in groups.get((p, q), []):
            rows_p.append(_restricted(Ma, Kp[off_p[a]:off_p[a] + Ma.shape[1]]))
            rows_q.append(_restricted(Mb, Kq[off_q[b]:off_q[b] + Mb.shape[1]]))
        H.edges[p, q][source_map] = np.vstack(rows_p) if rows_p else np.zeros((0, Kp.shape[1]))
        H.edges[p, q][target_map] = np.vstack(rows_q) if rows_q else np.zeros((0, Kq.shape[1]))
    return H


def _restricted(M, K):
    """``M K``: a crossing edge's map on the fibre's sections (K orthonormal columns).

    Entries at the level of the product's rounding (c·ε·max|M|·64, c the inner length) are
    set to exactly 0: a map that kills the fibre's sections must come out as the zero map,
    not as noise whose numerical rank the cohomology of ``f_*F`` cannot decide.
    """
    X = M @ K
    if X.size and np.issubdtype(X.dtype, np.inexact):
        noise = 64 * np.finfo(X.dtype).eps * max(M.shape[1], 1) * float(np.abs(M).max(initial=0.0))
        X[np.abs(X) <= noise] = 0
    return X


def _default_domain(F, f):
    """Every pair (u, v) whose images are joined by an edge of F, plus pairs with one image."""
    pre = defaultdict(list)
    for v, w in f.items():
        pre[w].append(v)
    D = nx.DiGraph()
    D.add_nodes_from(f)
    for a, b in F.edges():
        if a != b:
            D.add_edges_from((u, v) for u in pre.get(a, ()) for v in pre.get(b, ()))
    return D


def pullback(F, f, domain=None, *, dim="dim", source_map="source_map", target_map="target_map"):
    """Return the pullback ``f^*F`` of the sheaf F (on H) along a graph map ``f``: G -> H.

    Parameters
    ----------
    F : networkx.DiGraph
        A sheaf on the graph H. (On a MultiDiGraph, pairs of nodes joined by several
        edges are ambiguous images and are refused.)
    f : dict
        Node of G -> node of H.
    domain : networkx graph, optional
        The graph G (undirected graphs are oriented as their edges iterate). By default
        the largest graph on ``f``'s keys that f maps into H: an edge ``u -> v``
        whenever ``f(u) -> f(v)`` is an edge of F.

    Returns
    -------
    networkx.DiGraph or MultiDiGraph (as ``domain``)

    Examples
    --------
    The double cover of a cycle untwists a −1 twist:

    >>> import networkx as nx, numpy as np, graphsheaf as gs
    >>> M = gs.constant_sheaf(nx.cycle_graph(3)); M.edges[0, 2]["target_map"] = -np.eye(1)
    >>> C6 = nx.cycle_graph(6)
    >>> gs.cohomology(M).h0, gs.cohomology(gs.pullback(M, {v: v % 3 for v in C6}, C6)).h0
    (0, 1)
    """
    validate_sheaf(F, dim=dim, source_map=source_map, target_map=target_map)
    if not hasattr(f, "items"):
        raise SheafError(f"pullback: the graph map f must be a dict node -> node, got {type(f).__name__}")
    G = _default_domain(F, f) if domain is None else domain
    missing = [v for v in G if v not in f]
    if missing:
        raise SheafError(f"pullback: the graph map f sends no image for node {missing[0]!r}")
    bad = next((v for v in G if f[v] not in F), None)
    if bad is not None:
        raise SheafError(f"pullback: f sends node {bad!r} to {f[bad]!r}, which is not in the sheaf")
    cls = nx.MultiDiGraph if G.is_multigraph() else nx.DiGraph
    P = cls()
    for v, data in G.nodes(data=True):
        P.add_node(v, **data)
        P.nodes[v][dim] = int(F.nodes[f[v]][dim])
    edges = G.edges(keys=True, data=True) if G.is_multigraph() else \
        ((u, v, None, d) for u, v, d in G.edges(data=True))
    for u, v, k, data in edges:
        a, b = f[u], f[v]
        if a == b and not F.has_edge(a, b):
            d = int(F.nodes[a][dim])
            A = B = np.eye(d)
        else:
            A, B = _maps_between(F, a, b, (u, v), source_map, target_map)
        attrs = dict(data, **{source_map: A, target_map: B})
        if k is None:
            P.add_edge(u, v, **attrs)
        else:
            P.add_edge(u, v, key=k, **attrs)
    return P


def _maps_between(F, a, b, e, source_map, target_map):
    for x, y, swap in ((a, b, False), (b, a, True)):
        if F.has_edge(x, y):
            if F.is_multigraph():
                datas = list(F[x][y].values())
                if len(datas) > 1:
                    raise SheafError(f"pullback: {describe_edge(e)} maps onto {len(datas)} parallel edges "
                                     f"{x!r} -> {y!r}; the image is ambiguous")
                d = datas[0]
            else:
                d = F.edges[x, y]
            where = describe_edge((x, y))
            A = dense_map(d[source_map], f"{where} ({source_map})")
            B = dense_map(d[target_map], f"{where} ({target_map})")
            return (B, A) if swap else (A, B)
    raise SheafError(f"pullback: {describe_edge(e)} maps to {a!r} -> {b!r}, which is not an edge of the "
                     "sheaf: f is not a graph homomorphism")

