import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

import graphsheaf as gs


def two_nodes(du=2, dv=1):
    G = nx.DiGraph()
    G.add_node("a", dim=du)
    G.add_node("b", dim=dv)
    return G


def test_valid_sheaf_passes():
    G = two_nodes()
    G.add_edge("a", "b", source_map=np.ones((3, 2)), target_map=np.ones((3, 1)), kind="x")
    gs.validate_sheaf(G)


@pytest.mark.parametrize("value, words", [
    (None, "no 'dim' attribute"), (-1, "negative"), (2.0, "a float"), ("2", "non-negative ints"),
    (True, "non-negative ints"),
])
def test_bad_dim_names_node(value, words):
    G = two_nodes()
    if value is None:
        del G.nodes["a"]["dim"]
    else:
        G.nodes["a"]["dim"] = value
    with pytest.raises(gs.SheafError, match=words) as err:
        gs.validate_sheaf(G)
    assert "'a'" in str(err.value)


def test_missing_map_names_edge():
    G = two_nodes()
    G.add_edge("a", "b", source_map=np.ones((1, 2)))
    with pytest.raises(gs.SheafError, match=r"edge 'a' -> 'b' has no 'target_map'"):
        gs.validate_sheaf(G)


def test_non_2d_map():
    G = two_nodes()
    G.add_edge("a", "b", source_map=np.ones(2), target_map=np.ones((1, 1)))
    with pytest.raises(gs.SheafError, match=r"'a' -> 'b': source_map must be a 2-D matrix, got shape \(2,\)"):
        gs.validate_sheaf(G)


def test_row_counts_differ():
    G = two_nodes()
    G.add_edge("a", "b", source_map=np.ones((2, 2)), target_map=np.ones((3, 1)))
    with pytest.raises(gs.SheafError, match=r"shape \(2, 2\) and target_map has shape \(3, 1\)"):
        gs.validate_sheaf(G)


def test_column_count_mismatch_names_node_and_dim():
    G = two_nodes()
    G.add_edge("a", "b", source_map=np.ones((1, 2)), target_map=np.ones((1, 4)))
    with pytest.raises(gs.SheafError, match=r"target_map has shape \(1, 4\), but node 'b' has dim 1"):
        gs.validate_sheaf(G)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_entries(bad):
    G = two_nodes()
    A = np.ones((1, 2))
    A[0, 1] = bad
    G.add_edge("a", "b", source_map=A, target_map=np.ones((1, 1)))
    with pytest.raises(gs.SheafError, match=r"'a' -> 'b': source_map has a non-finite entry .* index \(0, 1\)"):
        gs.validate_sheaf(G)


def test_complex_entries_accepted_and_nonfinite_complex_refused():
    G = two_nodes()
    G.add_edge("a", "b", source_map=np.ones((1, 2)) * 1j, target_map=np.ones((1, 1)))
    gs.validate_sheaf(G)  # complex sheaves are sheaves (U(d) connections, magnetic Laplacians)
    assert gs.coboundary_matrix(G).toarray().tolist() == [[-1j, -1j, 1.0]]
    G.edges["a", "b"]["source_map"] = np.array([[1j, complex(np.nan, 0)]])
    with pytest.raises(gs.SheafError, match="non-finite"):
        gs.validate_sheaf(G)


def test_self_loop_message():
    G = two_nodes()
    G.add_edge("a", "a", source_map=np.ones((1, 2)), target_map=np.ones((1, 3)))
    with pytest.raises(gs.SheafError, match=r"self-loop on 'a': target_map has shape \(1, 3\), but node 'a' has dim 2"):
        gs.validate_sheaf(G)


def test_multigraph_error_names_key():
    G = nx.MultiDiGraph()
    G.add_node(0, dim=1)
    G.add_node(1, dim=1)
    G.add_edge(0, 1, key="k", source_map=np.ones((1, 1)), target_map=np.ones((1, 1)))
    G.add_edge(0, 1, key="bad", source_map=np.ones((1, 1)), target_map=np.ones((1, 2)))
    with pytest.raises(gs.SheafError, match=r"0 -> 1 \(key 'bad'\)"):
        gs.validate_sheaf(G)


def test_undirected_and_non_graph_rejected():
    with pytest.raises(gs.SheafError, match="undirected"):
        gs.validate_sheaf(nx.path_graph(3))
    with pytest.raises(gs.SheafError, match="DiGraph"):
        gs.validate_sheaf({"not": "a graph"})


def test_state_dependent_map_checked_by_shape():
    G = two_nodes(2, 2)
    G.add_edge("a", "b", source_map=gs.ReLUGate(3), target_map=np.eye(2))
    with pytest.raises(gs.SheafError, match=r"source_map has shape \(3, 3\), but node 'a' has dim 2"):
        gs.validate_sheaf(G)


def test_sparse_maps_accepted_and_checked():
    G = two_nodes()
    G.add_edge("a", "b", source_map=sp.csr_array(np.ones((1, 2))), target_map=np.ones((1, 1)))
    gs.validate_sheaf(G)
    G.edges["a", "b"]["source_map"] = sp.csr_array(np.array([[np.nan, 1.0]]))
    with pytest.raises(gs.SheafError, match="non-finite"):
        gs.validate_sheaf(G)


def test_every_public_function_validates():
    G = two_nodes()
    G.add_edge("a", "b", source_map=np.ones((1, 3)), target_map=np.ones((1, 1)))
    for f in (gs.coboundary_matrix, gs.sheaf_laplacian, gs.cohomology, gs.spectral_gap):
        with pytest.raises(gs.SheafError, match="source_map has shape"):
            f(G)
    with pytest.raises(gs.SheafError, match="source_map has shape"):
        gs.harmonic_extension(G, {"a": [0.0, 0.0]})
    with pytest.raises(gs.SheafError, match="source_map has shape"):
        gs.dirichlet_energy(G, {"a": [0.0, 0.0], "b": [0.0]})


def test_constant_sheaf_orients_undirected_edges_as_they_iterate():
    g = nx.cycle_graph(4)
    G = gs.constant_sheaf(g, dim=3)
    assert list(G.edges) == list(g.edges)
    assert all(G.nodes[v]["dim"] == 3 for v in G)
    for _, _, d in G.edges(data=True):
        np.testing.assert_array_equal(d["source_map"], np.eye(3))
        np.testing.assert_array_equal(d["target_map"], np.eye(3))


def test_constant_sheaf_keeps_multigraph_keys_and_attributes():
    g = nx.MultiGraph()
    g.add_edge("x", "y", key="first", weight=2)
    g.add_edge("x", "y", key="second")
    g.graph["name"] = "m"
    G = gs.constant_sheaf(g)
    assert isinstance(G, nx.MultiDiGraph)
    assert set(G.edges(keys=True)) == {("x", "y", "first"), ("x", "y", "second")}
    assert G.edges["x", "y", "first"]["weight"] == 2
    assert G.graph["name"] == "m"


def test_random_sheaf_shapes_and_seed():
    G = gs.random_sheaf(nx.path_graph(4), dims={0: 1, 1: 2, 2: 0, 3: 3}, edge_dims=2, rng=5)
    gs.validate_sheaf(G)
    assert G.edges[1, 2]["source_map"].shape == (2, 2)
    assert G.edges[1, 2]["target_map"].shape == (2, 0)
    H = gs.random_sheaf(nx.path_graph(4), dims={0: 1, 1: 2, 2: 0, 3: 3}, edge_dims=2, rng=5)
    np.testing.assert_array_equal(G.edges[0, 1]["source_map"], H.edges[0, 1]["source_map"])


def test_relu_gate_protocol():
    R = gs.ReLUGate(3)
    s = np.array([[-1.0, 2.0], [0.0, -3.0], [1.0, 0.0]])
    y = np.arange(6.0).reshape(3, 2)
    expected = np.stack([R.matrix(s[:, m]) @ y[:, m] for m in range(2)], axis=1)
    np.testing.assert_array_equal(R.apply(s, y), expected)
    np.testing.assert_array_equal(R.rapply(s, y), expected)
    assert R.matrix(np.zeros(3)).trace() == 3  # tie rule: z = 0 is active
    assert gs.ReLUGate(3, strict=True).matrix(np.zeros(3)).trace() == 0
