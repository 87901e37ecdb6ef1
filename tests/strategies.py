"""Hypothesis strategies for random sheaves."""
import networkx as nx
import numpy as np
import scipy.sparse as sp
from hypothesis import strategies as st


@st.composite
def random_sheaves(draw, max_nodes=7, max_dim=4, multigraph=None, integer=False, self_loops=True):
    """A random DiGraph/MultiDiGraph sheaf: dims 0..max_dim, edge dims 0..max_dim, random maps."""
    n = draw(st.integers(1, max_nodes))
    multi = draw(st.booleans()) if multigraph is None else multigraph
    G = nx.MultiDiGraph() if multi else nx.DiGraph()
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    for v in range(n):
        G.add_node(v, dim=int(draw(st.integers(0, max_dim))))
    m = draw(st.integers(0, 2 * n))
    for _ in range(m):
        u = int(rng.integers(n))
        v = int(rng.integers(n))
        if u == v and not self_loops:
            continue
        if not multi and G.has_edge(u, v):
            continue
        de = int(rng.integers(0, max_dim + 1))
        if integer:
            A = rng.integers(-2, 3, size=(de, G.nodes[u]["dim"]))
            B = rng.integers(-2, 3, size=(de, G.nodes[v]["dim"]))
        else:
            A = rng.standard_normal((de, G.nodes[u]["dim"]))
            B = rng.standard_normal((de, G.nodes[v]["dim"]))
            # sometimes make maps rank-deficient so that cohomology is interesting
            if de and rng.random() < 0.3:
                A[-1] = 0.0
        G.add_edge(u, v, source_map=A, target_map=B)
    return G


@st.composite
def uniform_sheaves(draw, max_nodes=8):
    """A sheaf whose maps on each side share one shape (the stacked fast paths).

    Parallel, antiparallel and self-loop edges occur; with ``bipartite`` tails have
    dim d_a and heads dim d_b (so the two sides' shapes differ); maps are sometimes
    integer, and the head side is sometimes one map object shared by every edge.
    """
    n = draw(st.integers(2, max_nodes))
    multi = draw(st.booleans())
    bipartite = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    da, db, r = (int(draw(st.integers(0, 3))) for _ in range(3))
    if not bipartite:
        db = da
    G = nx.MultiDiGraph() if multi else nx.DiGraph()
    tails = range(n // 2) if bipartite else range(n)
    heads = range(n // 2, n) if bipartite else range(n)
    for v in range(n):
        G.add_node(v, dim=db if (bipartite and v >= n // 2) else da)
    integer = draw(st.booleans())
    shared_head = rng.standard_normal((r, db)) if draw(st.booleans()) else None
    for _ in range(draw(st.integers(2, 3 * n))):
        u, v = int(rng.choice(tails)), int(rng.choice(heads))
        if integer:
            A, B = rng.integers(-2, 3, size=(r, da)), rng.integers(-2, 3, size=(r, db))
        else:
            A, B = rng.standard_normal((r, da)), rng.standard_normal((r, db))
        G.add_edge(u, v, source_map=A, target_map=B if shared_head is None else shared_head)
    return G


def unstacked(G):
    """A copy of G with every map a scipy sparse array, so assembly takes the per-map path
    instead of the stacked one."""
    H = G.copy()
    for *_, d in H.edges(data=True):
        d["source_map"] = sp.csr_array(np.asarray(d["source_map"], dtype=float))
        d["target_map"] = sp.csr_array(np.asarray(d["target_map"], dtype=float))
    return H
