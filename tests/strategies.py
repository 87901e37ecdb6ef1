"""Hypothesis strategies for random sheaves."""
import networkx as nx
import numpy as np
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
