"""New sheaves from old ones on the same graph: restriction to a subgraph, direct sum,
tensor product, dual, and connection sheaves.

Every function returns a new graph (the inputs are never modified) whose node and edge
attributes other than the stalk dimension and the maps are copied from the first input.
Maps must be constant (state-dependent maps such as ReLU gates are refused, naming the
edge); sparse maps are taken densely.
"""

import networkx as nx
import numpy as np
import scipy.sparse as sp

from .exceptions import SheafError
from .maps import is_state_dependent
from .sheaves import describe_edge, iter_edges, validate_sheaf

__all__ = ["connection_sheaf", "direct_sum", "dual", "random_connection_sheaf", "restrict",
           "tensor_product"]


def dense_map(M, where):
    """A constant restriction map as a dense 2-D ndarray (refusing state-dependent maps)."""
    if is_state_dependent(M):
        raise SheafError(f"{where}: needs constant restriction maps, got the state-dependent {M!r}")
    return M.toarray() if sp.issparse(M) else np.asarray(M)


def edge_maps(G, source_map="source_map", target_map="target_map"):
    """Yield ``(edge, data, A, B)`` with both maps as dense arrays, in ``G.edges`` order."""
    for e, d in iter_edges(G):
        where = describe_edge(e)
        yield e, d, dense_map(d[source_map], f"{where} ({source_map})"), \
            dense_map(d[target_map], f"{where} ({target_map})")


def empty_like(G):
    H = G.__class__()
    H.graph.update(G.graph)
    return H


def _add_edge(H, e, attrs):
    if len(e) == 3:
        H.add_edge(e[0], e[1], key=e[2], **attrs)
    else:
        H.add_edge(e[0], e[1], **attrs)


def restrict(F, nodes, *, dim="dim", source_map="source_map", target_map="target_map"):
    """Return the restriction of ``F`` to the subgraph induced by ``nodes`` (a new sheaf).

    Stalks and maps are kept; edges with an end outside ``nodes`` are dropped. This is
    the pullback along the inclusion of the induced subgraph.

    Parameters
    ----------
    F : networkx.DiGraph or MultiDiGraph
        A sheaf.
    nodes : iterable
        Nodes of ``F`` to keep.

    Returns
    -------
    networkx.DiGraph or MultiDiGraph

    Examples
    --------
    >>> import networkx as nx, graphsheaf as gs
    >>> F = gs.constant_sheaf(nx.cycle_graph(4))
    >>> gs.cohomology(gs.restrict(F, [0, 1, 2])).h1   # the cycle is cut open
    0
    """
    validate_sheaf(F, dim=dim, source_map=source_map, target_map=target_map)
    nodes = list(nodes)
    missing = [v for v in nodes if v not in F]
    if missing:
        raise SheafError(f"restrict: node {missing[0]!r} is not in the sheaf")
    return F.subgraph(nodes).copy()


def _same_graph(F, G, what):
    if F.is_multigraph() != G.is_multigraph():
        raise SheafError(f"{what}: one sheaf is on a multigraph and the other is not")
    if set(F) != set(G):
        extra = next(iter(set(F) ^ set(G)))
        raise SheafError(f"{what}: node {extra!r} is in one sheaf only; both need the same graph")
    fe, ge = set(F.edges), set(G.edges)
    if fe != ge:
        e = next(iter(fe ^ ge))
        raise SheafError(f"{what}: {describe_edge(e)} is in one sheaf only (same edges, same "
                         "orientation needed)")


def _combine(sheaves, what, node_dim, combine_maps, dim, source_map, target_map):
    for S in sheaves:
        validate_sheaf(S, dim=dim, source_map=source_map, target_map=target_map)
    first = sheaves[0]
    for S in sheaves[1:]:
        _same_graph(first, S, what)
    H = empty_like(first)
    for v, data in first.nodes(data=True):
        H.add_node(v, **data)
        H.nodes[v][dim] = node_dim([S.nodes[v][dim] for S in sheaves])
    per_sheaf = [{e: (A, B) for e, _, A, B in edge_maps(S, source_map, target_map)}
                 for S in sheaves]
    for e, data in iter_edges(first):
        A = combine_maps([m[e][0] for m in per_sheaf])
        B = combine_maps([m[e][1] for m in per_sheaf])
        _add_edge(H, e, dict(data, **{source_map: A, target_map: B}))
    return H


def _block_diag(mats):
    rows = sum(M.shape[0] for M in mats)
    cols = sum(M.shape[1] for M in mats)
    out = np.zeros((rows, cols), dtype=np.result_type(float, *mats))
    r = c = 0
    for M in mats:
        out[r:r + M.shape[0], c:c + M.shape[1]] = M
        r, c = r + M.shape[0], c + M.shape[1]
    return out


def direct_sum(*sheaves, dim="dim", source_map="source_map", target_map="target_map"):
    """Return the direct sum F₁ ⊕ F₂ ⊕ … of sheaves on the same graph.

    Stalks are concatenated (first sheaf's coordinates first) and maps are block
    diagonal, so ``H^k(F ⊕ G) = H^k(F) ⊕ H^k(G)``.

    Examples
    --------
    >>> import networkx as nx, numpy as np, graphsheaf as gs
    >>> F = gs.constant_sheaf(nx.cycle_graph(4))
    >>> T = gs.constant_sheaf(nx.cycle_graph(4)); T.edges[0, 3]["target_map"] = -np.eye(1)
    >>> c = gs.cohomology(gs.direct_sum(F, T))
    >>> c.h0, c.h1
    (1, 1)
    """
    if not sheaves:
        raise SheafError("direct_sum needs at least one sheaf")
    return _combine(sheaves, "direct_sum", sum, _block_diag, dim, source_map, target_map)


def tensor_product(*sheaves, dim="dim", source_map="source_map", target_map="target_map"):
    """Return the tensor product F₁ ⊗ F₂ ⊗ … of sheaves on the same graph.

    Stalks are tensor products (dimension the product; coordinates in Kronecker order,
    the first factor's index slowest) and maps are Kronecker products ``A₁ ⊗ A₂``.

    Examples
    --------
    >>> import networkx as nx, numpy as np, graphsheaf as gs
    >>> T = gs.constant_sheaf(nx.cycle_graph(4)); T.edges[0, 3]["target_map"] = -np.eye(1)
    >>> gs.cohomology(gs.tensor_product(T, T)).h0   # (-1) ⊗ (-1) = +1: the twist cancels
    1
    """
    if not sheaves:
        raise SheafError("tensor_product needs at least one sheaf")

    def kron(mats):
        out = mats[0]
        for M in mats[1:]:
            out = np.kron(out, M)
        return np.asarray(out, dtype=np.result_type(float, out))

    return _combine(sheaves, "tensor_product", lambda ds: int(np.prod(ds)), kron,
                    dim, source_map, target_map)


def dual(F, *, tol=1e-12, dim="dim", source_map="source_map", target_map="target_map"):
    """Return the dual (contragredient) sheaf F* of a sheaf with invertible maps.

    Stalks become their duals and every restriction map ``A`` becomes ``(A⁻¹)ᵀ`` (the
    conjugate transpose for complex maps), the unique maps for which the pairing of a
    stalk with its dual is preserved: ``⟨A x, (A⁻¹)ᵀ y⟩ = ⟨x, y⟩``. So global sections
    of F and of F* pair to a locally constant function, ``h⁰(F*) = h⁰(F)`` and
    ``h¹(F*) = h¹(F)``, and an orthogonal (O(d)) connection sheaf is its own dual.

    The dual of a sheaf whose maps are not invertible is a cosheaf (maps pointing from
    edges to vertices), which a graph sheaf cannot hold: such a sheaf is refused,
    naming the edge.

    Examples
    --------
    >>> import networkx as nx, numpy as np, graphsheaf as gs
    >>> F = gs.constant_sheaf(nx.path_graph(2)); F.edges[0, 1]["source_map"] = np.array([[2.0]])
    >>> gs.dual(F).edges[0, 1]["source_map"].tolist()
    [[0.5]]
    """
    validate_sheaf(F, dim=dim, source_map=source_map, target_map=target_map)
    H = F.copy()
    for e, _, A, B in edge_maps(F, source_map, target_map):
        new = []
        for M, attr in ((A, source_map), (B, target_map)):
            if M.shape[0] != M.shape[1] or (M.size and np.linalg.cond(M) > 1 / tol):
                raise SheafError(
                    f"dual: {describe_edge(e)}: {attr} of shape {M.shape} is not invertible; the dual "
                    "of such a sheaf is a cosheaf, which a graph sheaf cannot hold")
            new.append(np.linalg.inv(M).conj().T if M.size else M.astype(float))
        H.edges[e][source_map], H.edges[e][target_map] = new
    return H


def connection_sheaf(G, maps, *, dim=None, orthogonal=False, atol=1e-8):
    """Return the connection sheaf on ``G`` with the given transports.

    Every stalk is ℝ^d; an edge ``(u, v)`` with transport ``R`` (a d × d matrix carrying
    the tail's frame into the head's) gets ``source_map = R`` and ``target_map = I``, so
    ``(δx)_e = x_v − R x_u`` and a global section is a choice of vectors related by the
    transports. A pair ``(A, B)`` in ``maps`` sets both maps directly. Undirected graphs
    are oriented as their edges iterate.

    Parameters
    ----------
    G : networkx graph
    maps : dict
        Edge ``(u, v)`` (``(u, v, key)`` for multigraphs) -> transport ``R`` or a pair
        ``(A, B)``. An edge given as ``(v, u)`` instead uses ``R⁻¹`` (its inverse transport).
    dim : int, optional
        Stalk dimension; read from the maps by default.
    orthogonal : bool, default False
        Require every transport to be orthogonal (an O(d) connection; unitary for
        complex maps), to ``atol``.

    Examples
    --------
    >>> import networkx as nx, numpy as np, graphsheaf as gs
    >>> flip = np.diag([1.0, -1.0])
    >>> S = gs.connection_sheaf(nx.cycle_graph(3), {(0, 1): np.eye(2), (1, 2): np.eye(2),
    ...                                             (0, 2): flip})
    >>> gs.cohomology(S).h0    # holonomy diag(1, -1) fixes one direction
    1
    """
    multi = G.is_multigraph()
    H = (nx.MultiDiGraph if multi else nx.DiGraph)()
    H.graph.update(G.graph)
    H.add_nodes_from(G.nodes(data=True))
    edges = list(G.edges(keys=True, data=True)) if multi else \
        [(u, v, None, d) for u, v, d in G.edges(data=True)]
    d = dim
    for u, v, k, data in edges:
        spec, flipped = _transport_for(maps, u, v, k, G.is_directed())
        if isinstance(spec, tuple) and len(spec) == 2:
            A, B = (np.asarray(spec[0]), np.asarray(spec[1]))
        else:
            R = np.asarray(spec)
            if R.ndim != 2 or R.shape[0] != R.shape[1]:
                raise SheafError(f"connection_sheaf: the transport of edge {u!r} -> {v!r} must be a "
                                 f"square matrix, got shape {R.shape}")
            if flipped:
                R = np.linalg.inv(R)
            A, B = R, np.eye(R.shape[0], dtype=R.dtype)
        if d is None:
            d = A.shape[1]
        for M in (A, B):
            if M.shape != (d, d):
                raise SheafError(f"connection_sheaf: edge {u!r} -> {v!r} has a map of shape "
                                 f"{M.shape}; every stalk is R^{d}")
            if orthogonal and not np.allclose(M.conj().T @ M, np.eye(d), atol=atol):
                raise SheafError(f"connection_sheaf: the transport of edge {u!r} -> {v!r} is not "
                                 "orthogonal")
        attrs = dict(data, source_map=A, target_map=B)
        if multi:
            H.add_edge(u, v, key=k, **attrs)
        else:
            H.add_edge(u, v, **attrs)
    for v in H:
        H.nodes[v]["dim"] = int(d or 0)
    validate_sheaf(H)  # non-finite or non-numeric transports are named here
    return H


def _transport_for(maps, u, v, k, directed):
    keys = [(u, v), (v, u)] if k is None else [(u, v, k), (v, u, k)]
    if keys[0] in maps:
        return maps[keys[0]], False
    if not directed and keys[1] in maps:
        return maps[keys[1]], True
    raise SheafError(f"connection_sheaf: maps has no transport for edge {u!r} -> {v!r}")


def random_rotations(n, d, group="SO", rng=None):
    """``n`` Haar-random d × d matrices from O(d) or SO(d), shape (n, d, d).

    QR of Gaussian matrices with the signs of R's diagonal moved into Q (Mezzadri 2007,
    "How to generate random matrices from the classical compact groups"); for SO(d) the
    first column of the matrices with determinant −1 is negated.
    """
    if group not in ("SO", "O"):
        raise ValueError(f"group must be 'SO' or 'O', got {group!r}")
    rng = np.random.default_rng(rng)
    Q, R = np.linalg.qr(rng.standard_normal((n, d, d)))
    Q = Q * np.sign(np.diagonal(R, axis1=1, axis2=2))[:, None, :]
    if group == "SO" and d:
        neg = np.linalg.det(Q) < 0
        Q[neg, :, 0] *= -1
    return Q


def random_connection_sheaf(G, d, group="SO", rng=None, *, consistent=False, noise=0.0):
    """Return a connection sheaf on ``G`` with Haar-random O(d) or SO(d) transports.

    Parameters
    ----------
    G : networkx graph
        Undirected graphs are oriented as their edges iterate.
    d : int
        Stalk dimension.
    group : {"SO", "O"}
    rng : int or numpy.random.Generator, optional
    consistent : bool, default False
        Draw a random frame ``g_v`` per node and set every transport to ``g_v g_uᵀ``
        (a flat connection: every connected component has an H⁰ of dimension d, spanned
        by ``x_v = g_v c``). The frames are stored as node attribute ``"frame"``.
    noise : float, default 0.0
        With ``consistent=True``: perturb each transport by ``noise`` times a Gaussian
        matrix and project it back onto the group (the setting of rotation
        synchronisation).

    Examples
    --------
    >>> import networkx as nx, graphsheaf as gs
    >>> S = gs.random_connection_sheaf(nx.cycle_graph(6), 3, rng=0, consistent=True)
    >>> gs.cohomology(S).h0
    3
    """
    rng = np.random.default_rng(rng)
    multi = G.is_multigraph()
    edges = list(G.edges(keys=True)) if multi else list(G.edges)
    if consistent:
        nodes = list(G)
        frames = dict(zip(nodes, random_rotations(len(nodes), d, group, rng)))
        R = np.array([frames[e[1]] @ frames[e[0]].T for e in edges]).reshape(len(edges), d, d)
        if noise:
            R = _project(R + noise * rng.standard_normal(R.shape), group)
    else:
        R = random_rotations(len(edges), d, group, rng)
    S = connection_sheaf(G, dict(zip(edges, R)), dim=d)
    if consistent:
        nx.set_node_attributes(S, frames, "frame")
    return S


def _project(M, group):
    """Nearest orthogonal matrices (polar factor), with det +1 for SO."""
    U, _, Vt = np.linalg.svd(M)
    if group == "SO":
        flip = np.linalg.det(U @ Vt) < 0
        U[flip, :, -1] *= -1
    return U @ Vt
