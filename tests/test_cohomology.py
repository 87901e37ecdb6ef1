from fractions import Fraction

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings

import graphsheaf as gs

from .strategies import random_sheaves


def twisted_cycle(n, sign=-1.0):
    G = gs.constant_sheaf(nx.cycle_graph(n))
    e = list(G.edges)[-1]
    G.edges[e]["target_map"] = np.array([[sign]])
    return G


@pytest.mark.parametrize("method", ["dense", "sparse", "exact"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_constant_sheaf_on_cycle(method, d):
    n = 300 if method == "sparse" else 7
    c = gs.cohomology(gs.constant_sheaf(nx.cycle_graph(n), dim=d), method=method, bases=True)
    assert (c.h0, c.h1) == (d, d)
    assert c.h0_basis.shape == (n * d, d) and c.h1_basis.shape == (n * d, d)


@pytest.mark.parametrize("method", ["dense", "sparse", "exact"])
def test_twisted_cycle_has_no_cohomology(method):
    c = gs.cohomology(twisted_cycle(300 if method == "sparse" else 6), method=method)
    assert (c.h0, c.h1) == (0, 0)


@pytest.mark.parametrize("g", [nx.path_graph(6), nx.balanced_tree(2, 3), nx.star_graph(5)])
def test_trees_have_no_h1(g):
    G = gs.random_sheaf(g, dims=2, edge_dims=2, rng=0)
    assert gs.cohomology(G).h1 == 0
    assert gs.cohomology(gs.constant_sheaf(g, dim=2)).h0 == 2


def test_disconnected_graph_adds_up_and_isolated_nodes():
    g = nx.disjoint_union(nx.cycle_graph(4), nx.path_graph(3))
    g.add_node("lonely")
    G = gs.constant_sheaf(g, dim=2)
    G.add_node("zero", dim=0)
    c = gs.cohomology(G)
    assert c.h0 == 2 + 2 + 2 and c.h1 == 2
    # basis vectors live on a single component each and are orthonormal
    np.testing.assert_allclose(c.h0_basis.T @ c.h0_basis, np.eye(6), atol=1e-12)


def test_zero_dimensional_stalks_and_edge_stalks():
    G = nx.DiGraph()
    G.add_node(0, dim=0)
    G.add_node(1, dim=2)
    G.add_edge(0, 1, source_map=np.zeros((3, 0)), target_map=np.zeros((3, 2)))
    G.add_edge(1, 1, source_map=np.zeros((0, 2)), target_map=np.zeros((0, 2)))
    c = gs.cohomology(G)
    assert (c.h0, c.h1) == (2, 3)


def test_bases_are_kernel_and_cokernel():
    G = gs.random_sheaf(nx.cycle_graph(5), dims=2, edge_dims=1, rng=4)
    c = gs.cohomology(G)
    D = gs.coboundary_matrix(G).toarray()
    np.testing.assert_allclose(D @ c.h0_basis, 0, atol=1e-10)
    np.testing.assert_allclose(D.T @ c.h1_basis, 0, atol=1e-10)
    assert c.h0 - c.h1 == gs.cochain_dim(G, 0) - gs.cochain_dim(G, 1)
    assert c.gap > 1e6 and c.sigma_zero <= c.tol < c.sigma_nonzero


def test_relative_cohomology_drops_pinned_coordinates():
    G = gs.constant_sheaf(nx.cycle_graph(5), dim=2)
    c = gs.cohomology(G, relative_to=[0])
    assert c.h0 == 0 and c.h1 == 2  # 8 free coordinates, 10 edge rows, rank 8
    assert np.all(c.h0_basis.shape == (10, 0))
    c = gs.cohomology(G, relative_to={0: {0}})
    assert c.h0 == 1 and np.allclose(c.h0_basis[0], 0)
    c = gs.cohomology(G, relative_to={0: [1.0, 2.0]})  # values are ignored
    assert c.h0 == 0
    for rel in ([0], {0: {1}}, {0: None, 2: {0}}):
        c = gs.cohomology(G, relative_to=rel)
        assert c.h0 - c.h1 == (10 - c.n_pinned) - 10


def test_exact_mode_with_fractions_and_rejects_irrationals():
    G = gs.constant_sheaf(nx.cycle_graph(3))
    e = (0, 1)
    G.edges[e]["target_map"] = np.array([[Fraction(1, 3)]], dtype=object)  # x1 = 3 x0
    G.edges[1, 2]["target_map"] = np.array([[3]])  # 3 x2 = x1, so x2 = x0 as edge (0, 2) asks
    c = gs.cohomology(G, method="exact")
    assert (c.h0, c.h1) == (1, 1)  # trivial holonomy
    G.edges[e]["target_map"] = np.array([[Fraction(1, 2)]], dtype=object)
    assert gs.cohomology(G, method="exact").h0 == 0
    G.edges[e]["target_map"] = np.array([["x"]], dtype=object)
    with pytest.raises(gs.SheafError):
        gs.cohomology(G, method="exact")


def test_exact_mode_sees_what_floats_blur():
    # holonomy 1 + 1e-17 is 1 in floats but the stored maps are exactly rational
    G = gs.constant_sheaf(nx.cycle_graph(3))
    G.edges[0, 1]["target_map"] = np.array([[Fraction(10**17 + 1, 10**17)]],
                                                       dtype=object)
    assert gs.cohomology(G, method="exact").h0 == 0


def test_sparse_matches_dense_on_random_sheaf():
    G = gs.random_sheaf(nx.gnm_random_graph(400, 500, seed=0), dims=2, edge_dims=1, rng=0)
    d, s = gs.cohomology(G, method="dense"), gs.cohomology(G, method="sparse", bases=True)
    assert (d.h0, d.h1) == (s.h0, s.h1)
    D = gs.coboundary_matrix(G)
    np.testing.assert_allclose(D @ s.h0_basis, 0, atol=1e-7)


def test_bad_method():
    with pytest.raises(ValueError, match="method"):
        gs.cohomology(gs.constant_sheaf(nx.path_graph(2)), method="magic")


@settings(max_examples=60, deadline=None)
@given(random_sheaves())
def test_index_theorem(G):
    c = gs.cohomology(G)
    assert c.h0 - c.h1 == gs.cochain_dim(G, 0) - gs.cochain_dim(G, 1)


@settings(max_examples=40, deadline=None)
@given(random_sheaves())
def test_h0_is_kernel_dimension(G):
    c = gs.cohomology(G)
    D = gs.coboundary_matrix(G).toarray()
    n = D.shape[1]
    rank = np.linalg.matrix_rank(D) if D.size else 0
    assert c.h0 == n - rank
    if c.h0:
        np.testing.assert_allclose(D @ c.h0_basis, 0, atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(random_sheaves(integer=True, max_dim=3))
def test_exact_agrees_with_floats_on_integer_sheaves(G):
    e, f = gs.cohomology(G, method="exact"), gs.cohomology(G)
    assert (e.h0, e.h1) == (f.h0, f.h1)


@pytest.mark.parametrize("maps", ["constant", "random", "wide"])
def test_probed_kernels_match_the_dense_svd(monkeypatch, maps):
    import sys

    coh = sys.modules["graphsheaf.cohomology"]  # the module (gs.cohomology is the function)
    monkeypatch.setattr(coh, "DIRECT_FILL_LIMIT", 0)  # every sparse block is probed
    g = nx.gnm_random_graph(120, 200, seed=3, directed=True)
    if maps == "constant":
        G = gs.constant_sheaf(g, dim=2)
    elif maps == "random":
        G = gs.random_sheaf(g, dims=2, edge_dims=2, rng=0)
    else:  # more coordinates than edge rows: the cokernel side is probed
        G = gs.random_sheaf(g, dims=3, edge_dims=1, rng=0)
    probed = gs.cohomology(G, method="sparse")
    dense = gs.cohomology(G, method="dense")
    assert "probe" in probed.method.split("+")
    assert (probed.h0, probed.h1) == (dense.h0, dense.h1)
    for a, b in ((probed.h0_basis, dense.h0_basis), (probed.h1_basis, dense.h1_basis)):
        np.testing.assert_allclose(a @ a.T, b @ b.T, atol=1e-6)  # same subspace


# ---------------------------------------------------------------- issue 15: right at scale

def _rotation(rng, d, orthogonal=True):
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return Q * np.sign(np.diag(R)) if orthogonal else rng.standard_normal((d, d)) + 3 * np.eye(d)


def _connection(G, d, rng, orthogonal=True):
    S = nx.DiGraph()
    S.add_nodes_from(G, dim=d)
    for u, v in G.edges:
        S.add_edge(u, v, source_map=_rotation(rng, d, orthogonal), target_map=_rotation(rng, d, orthogonal))
    return S


def test_path_of_300000_nodes_is_decided_by_transport():
    # the old threshold sqrt(n eps) σ_max exceeded σ_min(δ) ≈ π/n here and answered (2, 1)
    c = gs.cohomology(gs.constant_sheaf(nx.path_graph(300_000, create_using=nx.DiGraph)))
    assert (c.h0, c.h1) == (1, 0) and c.method == "transport" and c.h0_basis is None


@pytest.mark.parametrize("twist, expected", [(1.0, (1, 1)), (-1.0, (0, 0))])
def test_long_cycles_twisted_and_not(twist, expected):
    n = 100_000
    G = gs.constant_sheaf(nx.cycle_graph(n, create_using=nx.DiGraph))
    G.edges[n - 1, 0]["target_map"] = twist * np.eye(1)
    c = gs.cohomology(G, bases=False)
    assert (c.h0, c.h1) == expected and c.method == "transport"


def test_grid_and_tree_dimensions_by_transport():
    grid = nx.convert_node_labels_to_integers(nx.grid_2d_graph(200, 200))
    G = gs.constant_sheaf(nx.DiGraph([(u, v) for u, v in grid.edges]))
    c = gs.cohomology(G, bases=False)
    assert (c.h0, c.h1) == (1, 1 - (200 * 200 - 2 * 200 * 199)) and c.method == "transport"
    T = gs.constant_sheaf(nx.bfs_tree(nx.random_labeled_tree(5000, seed=3), 0), dim=2)
    c = gs.cohomology(T, bases=False)
    assert (c.h0, c.h1) == (2, 0)


@pytest.mark.parametrize("seed", range(12))
def test_transport_agrees_with_the_dense_svd(seed):
    # local systems: O(d) connections on random graphs (with pins), and trees with
    # non-orthogonal invertible maps, decided both ways
    rng = np.random.default_rng(seed)
    d = 1 + seed % 3
    if seed % 2:
        G = nx.gnm_random_graph(14, 13 + seed, seed=seed, directed=True)
        S = _connection(G, d, rng)
        if seed % 4 == 1:  # flat connection: every map the identity, plus one twist
            for e in S.edges:
                S.edges[e]["source_map"] = S.edges[e]["target_map"] = np.eye(d)
            e = next(iter(S.edges))
            S.edges[e]["target_map"] = -np.eye(d)
    else:
        S = _connection(nx.bfs_tree(nx.random_labeled_tree(15, seed=seed), 0), d, rng,
                        orthogonal=False)
    pins = [None, [0], {3: {0: 1.0}}][seed % 3]
    fast = gs.cohomology(S, bases=False, relative_to=pins, method="transport" if pins is None or
                         seed % 2 else "auto")
    slow = gs.cohomology(S, relative_to=pins, method="dense")
    assert (fast.h0, fast.h1) == (slow.h0, slow.h1)


def test_bases_only_where_they_are_cheap_and_sparse_counts_on_grids():
    small = gs.cohomology(gs.constant_sheaf(nx.cycle_graph(5)))
    assert small.h0_basis.shape == (5, 1)  # bases=None computes them for small sheaves
    S = _connection(nx.grid_2d_graph(25, 25), 1, np.random.default_rng(0), orthogonal=False)
    c = gs.cohomology(S)  # 625 nodes, not a local system decided by transport: counts only
    assert c.h0_basis is None and "dense" not in c.method
    ref = gs.cohomology(S, method="dense", bases=False)
    assert (c.h0, c.h1) == (ref.h0, ref.h1)


def test_close_rank_decisions_warn_and_bad_tolerances_are_refused():
    G = gs.constant_sheaf(nx.path_graph(300_000, create_using=nx.DiGraph))
    with pytest.warns(gs.RankDecisionWarning, match="close to its threshold"):
        gs.cohomology(G, bases=False, method="sparse")
    for tol in (-1.0, np.nan, np.inf):
        with pytest.raises(gs.SheafError, match="tol"):
            gs.cohomology(gs.constant_sheaf(nx.cycle_graph(4)), tol=tol)


def test_exact_mode_on_long_paths_and_trees():
    # elimination used to scan every pivot row for each new pivot: quadratic (25 s at 20,000)
    P = gs.constant_sheaf(nx.path_graph(20_000, create_using=nx.DiGraph))
    assert (gs.cohomology(P, method="exact", bases=False).h0, 1) == (1, 1)
    T = gs.constant_sheaf(nx.bfs_tree(nx.random_labeled_tree(5_000, seed=0), 0), dim=2)
    c = gs.cohomology(T, method="exact", bases=False)
    assert (c.h0, c.h1) == (2, 0)
    small = gs.constant_sheaf(nx.cycle_graph(30), dim=2)
    ce, cd = gs.cohomology(small, method="exact", bases=True), gs.cohomology(small, bases=True)
    assert (ce.h0, ce.h1) == (cd.h0, cd.h1) == (2, 2)
    D = gs.coboundary_matrix(small)
    np.testing.assert_allclose(D @ ce.h0_basis, 0, atol=1e-12)
    np.testing.assert_allclose(D.T @ ce.h1_basis, 0, atol=1e-12)
