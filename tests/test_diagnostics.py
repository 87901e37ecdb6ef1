import networkx as nx
import numpy as np
import pytest
import scipy.linalg as la
from hypothesis import given, settings

import graphsheaf as gs

from .strategies import random_sheaves


def test_energies_sum_and_group():
    G = gs.random_sheaf(nx.cycle_graph(5), dims=2, edge_dims=2, rng=0)
    for i, e in enumerate(G.edges):
        G.edges[e]["kind"] = "odd" if i % 2 else "even"
    x = {v: np.random.default_rng(v).standard_normal(2) for v in G}
    E = gs.edge_energies(G, x)
    assert set(E) == set(G.edges)
    assert abs(sum(E.values()) - gs.dirichlet_energy(G, x)) < 1e-12
    groups = gs.group_energies(G, E)
    assert set(groups) == {"odd", "even"} and abs(sum(groups.values()) - sum(E.values())) < 1e-12
    by_tail = gs.group_energies(G, E, by=lambda e, d: e[0])
    assert abs(sum(by_tail.values()) - sum(E.values())) < 1e-12
    with pytest.raises(gs.SheafError, match="not an edge"):
        gs.group_energies(G, {(0, 3): 1.0})


def test_residuals_follow_head_minus_tail():
    G = gs.random_sheaf(nx.path_graph(3), dims=2, edge_dims=1, rng=1)
    x = {v: np.arange(2.0) + v for v in G}
    R = gs.edge_residuals(G, x)
    d = G.edges[0, 1]
    np.testing.assert_allclose(R[(0, 1)], d["target_map"] @ x[1] - d["source_map"] @ x[0])


def test_batched_energies_are_per_sample():
    G = gs.random_sheaf(nx.cycle_graph(4), dims=2, edge_dims=2, rng=2)
    X = np.random.default_rng(0).standard_normal((8, 3))
    e = gs.dirichlet_energy(G, X)
    assert e.shape == (3,)
    assert abs(e[1] - gs.dirichlet_energy(G, X[:, 1])) < 1e-12
    E = gs.edge_energies(G, X)
    assert all(v.shape == (3,) for v in E.values())


@pytest.mark.parametrize("n", [30, 2500])
def test_spectral_gap_dense_and_sparse(n):
    G = gs.constant_sheaf(nx.cycle_graph(n))
    expected = 2 - 2 * np.cos(2 * np.pi / n)  # smallest nonzero Laplacian eigenvalue of C_n
    assert abs(gs.spectral_gap(G) / expected - 1) < 1e-6
    pinned = gs.spectral_gap(G, [0])
    L = gs.sheaf_laplacian(G)
    if n <= 30:
        assert abs(pinned - la.eigvalsh(L.toarray()[1:, 1:])[0]) < 1e-12


@settings(max_examples=50, deadline=None)
@given(random_sheaves())
def test_laplacian_psd_and_energy_identity(G):
    D = gs.coboundary_matrix(G)
    L = gs.sheaf_laplacian(G).toarray()
    np.testing.assert_allclose(L, (D.T @ D).toarray(), atol=1e-10)
    if L.size:
        assert la.eigvalsh(L)[0] > -1e-9 * max(1.0, np.abs(L).max())
    x = np.random.default_rng(0).standard_normal(L.shape[0])
    e = gs.dirichlet_energy(G, x)
    assert abs(e - 0.5 * x @ L @ x) < 1e-8 * max(1.0, abs(e))
    assert abs(sum(gs.edge_energies(G, x).values()) - e) < 1e-8 * max(1.0, abs(e))
