import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from hypothesis import given, settings
from hypothesis import strategies as st

import graphsheaf as gs

from .strategies import uniform_sheaves, unstacked


def test_offsets_and_vectors_round_trip():
    G = gs.random_sheaf(nx.path_graph(4), dims={0: 2, 1: 0, 2: 3, 3: 1}, edge_dims=1, rng=0)
    off = gs.stalk_offsets(G)
    assert off == {0: slice(0, 2), 1: slice(2, 2), 2: slice(2, 5), 3: slice(5, 6)}
    x = {0: [1, 2], 1: np.zeros(0), 2: [3, 4, 5], 3: [6]}
    v = gs.to_vector(G, x)
    np.testing.assert_array_equal(v, np.arange(1.0, 7.0))
    back = gs.to_assignment(G, v)
    assert all(np.array_equal(back[k], np.asarray(x[k], float)) for k in x)
    order = [3, 2, 1, 0]
    v2 = gs.to_vector(G, x, nodelist=order)
    np.testing.assert_array_equal(v2, [6, 3, 4, 5, 1, 2])


def test_to_vector_batched_and_errors():
    G = gs.constant_sheaf(nx.path_graph(2, create_using=nx.DiGraph), dim=2)
    v = gs.to_vector(G, {0: np.ones((2, 3)), 1: np.zeros((2, 3))})
    assert v.shape == (4, 3)
    with pytest.raises(gs.SheafError, match="no value for node 1"):
        gs.to_vector(G, {0: [1, 2]})
    with pytest.raises(gs.SheafError, match=r"node 1: value has shape \(3,\)"):
        gs.to_vector(G, {0: [1, 2], 1: [1, 2, 3]})
    with pytest.raises(gs.SheafError, match="not a node"):
        gs.to_vector(G, {0: [1, 2], 1: [1, 2], 7: [0]})
    with pytest.raises(gs.SheafError, match="samples"):
        gs.to_vector(G, {0: np.ones((2, 3)), 1: [1, 2]})
    with pytest.raises(gs.SheafError, match="dim C"):
        gs.to_assignment(G, np.ones(5))


def test_edge_offsets_multigraph_keys():
    g = nx.MultiDiGraph()
    g.add_edge(0, 1, key="a")
    g.add_edge(0, 1, key="b")
    G = gs.constant_sheaf(g, dim=2)
    assert gs.edge_offsets(G) == {(0, 1, "a"): slice(0, 2), (0, 1, "b"): slice(2, 4)}


def test_constant_1dim_coboundary_is_incidence_transpose():
    g = nx.gnm_random_graph(30, 70, seed=3, directed=True)
    G = gs.constant_sheaf(g)
    delta = gs.coboundary_matrix(G).toarray()
    inc = nx.incidence_matrix(g, oriented=True).toarray()
    np.testing.assert_array_equal(delta, inc.T)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_constant_laplacian_matches_networkx(d):
    g = nx.gnm_random_graph(40, 90, seed=d, directed=True)
    # drop reciprocal pairs so the undirected graph has the same edges
    g.remove_edges_from([(u, v) for u, v in list(g.edges) if u > v and g.has_edge(v, u)])
    G = gs.constant_sheaf(g, dim=d)
    L = gs.sheaf_laplacian(G).toarray()
    ref = nx.laplacian_matrix(g.to_undirected(), nodelist=list(g)).toarray()
    np.testing.assert_array_equal(L, np.kron(ref, np.eye(d)))


def test_laplacian_equals_delta_t_delta_with_sparse_and_mixed_maps():
    G = gs.random_sheaf(nx.gnm_random_graph(20, 40, seed=1), dims=lambda v: v % 4,
                        edge_dims=lambda u, v: (u + v) % 3, rng=1)
    e = list(G.edges)[3]
    G.edges[e]["source_map"] = sp.csr_array(G.edges[e]["source_map"])
    G.add_edge(5, 5, source_map=np.ones((2, 1)), target_map=np.eye(2, 1) * 3)  # self-loop
    delta = gs.coboundary_matrix(G)
    L = gs.sheaf_laplacian(G)
    assert sp.issparse(delta) and delta.format == "csr" and L.format == "csr"
    np.testing.assert_allclose(L.toarray(), (delta.T @ delta).toarray(), atol=1e-12)


def test_flipping_an_edge_negates_its_rows_and_keeps_L():
    G = gs.random_sheaf(nx.cycle_graph(5), dims=2, edge_dims=3, rng=2)
    delta = gs.coboundary_matrix(G).toarray()
    L = gs.sheaf_laplacian(G).toarray()
    H = G.copy()
    d = H.edges[1, 2]
    H.remove_edge(1, 2)
    H.add_edge(2, 1, source_map=d["target_map"], target_map=d["source_map"])
    edgelist = [(2, 1) if e == (1, 2) else e for e in G.edges]
    delta_f = gs.coboundary_matrix(H, edgelist=edgelist).toarray()
    rows = gs.edge_offsets(G)[(1, 2)]
    expected = delta.copy()
    expected[rows] *= -1
    np.testing.assert_array_equal(delta_f, expected)
    np.testing.assert_allclose(gs.sheaf_laplacian(H).toarray(), L, atol=1e-12)


def test_nodelist_and_edgelist_orders():
    G = gs.random_sheaf(nx.path_graph(3), dims=[1, 2, 1].__getitem__, edge_dims=1, rng=3)
    nl = [2, 0, 1]
    el = [(1, 2), (0, 1)]
    D = gs.coboundary_matrix(G, nodelist=nl, edgelist=el).toarray()
    D0 = gs.coboundary_matrix(G).toarray()
    P_cols = np.r_[3, 0, 1, 2]  # node 2 (col 3), node 0 (col 0), node 1 (cols 1, 2)
    np.testing.assert_array_equal(D, D0[[1, 0]][:, P_cols])
    with pytest.raises(gs.SheafError, match="every node"):
        gs.coboundary_matrix(G, nodelist=[0, 1])
    with pytest.raises(gs.SheafError, match="not an edge"):
        gs.coboundary_matrix(G, edgelist=[(0, 2), (1, 2)])


def test_state_dependent_maps_need_state():
    G = nx.DiGraph()
    G.add_node("z", dim=2)
    G.add_node("a", dim=2)
    G.add_edge("z", "a", source_map=gs.ReLUGate(2), target_map=np.eye(2))
    with pytest.raises(gs.SheafError, match=r"edge 'z' -> 'a': source_map is state-dependent"):
        gs.coboundary_matrix(G)
    D = gs.coboundary_matrix(G, state={"z": [-1.0, 2.0], "a": [0.0, 0.0]}).toarray()
    np.testing.assert_array_equal(D, [[0, 0, 1, 0], [0, -1, 0, 1]])
    L = gs.sheaf_laplacian(G, state={"z": [-1.0, 2.0], "a": [0.0, 0.0]}).toarray()
    np.testing.assert_array_equal(L, D.T @ D)
    with pytest.raises(gs.SheafError, match="carries 3 samples"):
        gs.coboundary_matrix(G, state={"z": np.ones((2, 3)), "a": np.ones((2, 3))})


def test_boundary_specs():
    G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph), dim=2)
    b = gs.boundary_coordinates(G, {2: {1: 5.0}, 0: [1.0, 2.0]})
    assert b.index.tolist() == [0, 1, 5] and b.values.tolist() == [1.0, 2.0, 5.0]
    b = gs.boundary_coordinates(G, [1])
    assert b.index.tolist() == [2, 3] and b.values is None
    b = gs.boundary_coordinates(G, {0: {0}, 1: None})
    assert b.index.tolist() == [0, 2, 3]
    b = gs.boundary_coordinates(G, {0: np.ones((2, 4)), 1: {0: 3.0}})
    assert b.values.shape == (3, 4) and np.all(b.values[2] == 3.0)
    with pytest.raises(gs.SheafError, match="'q', which is not a node"):
        gs.boundary_coordinates(G, {"q": [1]})
    with pytest.raises(gs.SheafError, match="coordinate 2 is out of range"):
        gs.boundary_coordinates(G, {0: {2: 1.0}})
    with pytest.raises(gs.SheafError, match=r"node 1: value has shape \(3,\)"):
        gs.boundary_coordinates(G, {1: [1, 2, 3]})
    with pytest.raises(gs.SheafError, match="non-finite"):
        gs.boundary_coordinates(G, {1: [1, np.nan]})
    with pytest.raises(gs.SheafError, match="batch size"):
        gs.boundary_coordinates(G, {0: np.ones((2, 3)), 1: np.ones((2, 4))})


def test_cochain_dim():
    G = gs.random_sheaf(nx.path_graph(3), dims=2, edge_dims=3, rng=0)
    assert gs.cochain_dim(G, 0) == 6 and gs.cochain_dim(G, 1) == 6
    with pytest.raises(ValueError):
        gs.cochain_dim(G, 2)


@settings(max_examples=60, deadline=None)
@given(uniform_sheaves())
def test_stacked_assembly_equals_the_per_map_path(G):
    H = unstacked(G)
    D, D_ref = gs.coboundary_matrix(G), gs.coboundary_matrix(H)
    np.testing.assert_array_equal(D.toarray(), D_ref.toarray())
    assert D.has_canonical_format and not np.any(D.data == 0)
    L, L_ref = gs.sheaf_laplacian(G), gs.sheaf_laplacian(H)
    np.testing.assert_allclose(L.toarray(), L_ref.toarray(), atol=1e-12)
    np.testing.assert_allclose(L.toarray(), (D.T @ D).toarray(), atol=1e-12)
    assert not np.any(L.data == 0)


def test_stacked_maps_report_the_bad_edge():
    G = gs.random_sheaf(nx.gnm_random_graph(30, 60, seed=1, directed=True), dims=2, edge_dims=2, rng=0)
    u, v = list(G.edges)[17]
    G.edges[u, v]["target_map"][1, 0] = np.nan
    with pytest.raises(gs.SheafError, match=rf"edge {u} -> {v}: target_map has a non-finite entry"):
        gs.sheaf_laplacian(G)
    G.edges[u, v]["target_map"] = np.ones((2, 2))
    G.add_node(99, dim=3)
    G.add_edge(99, 0, source_map=np.ones((2, 2)), target_map=np.ones((2, 2)))
    with pytest.raises(gs.SheafError, match=r"edge 99 -> 0: source_map has shape \(2, 2\), but node 99 has dim 3"):
        gs.coboundary_matrix(G)


@settings(max_examples=60, deadline=None)
@given(uniform_sheaves(), st.integers(0, 2**32 - 1))
def test_split_laplacian_blocks_are_the_slices_of_L(G, seed):
    # the harmonic extension's direct assembly of L[Ω,Ω], L[Ω,U], L[U,U] for whole pinned
    # stalks equals slicing the assembled L (parallel, antiparallel edges and self-loops)
    from graphsheaf.linalg import edge_table, laplacian_of
    table = edge_table(G)
    blocks = laplacian_of(G, table, split=np.random.default_rng(seed).random(len(G)) < 0.7)
    L = laplacian_of(G, table).toarray()
    dims = np.diff(table.node_start)
    if blocks is None:  # maps not stackable into one float stack: the caller slices L instead
        return
    free_nodes = np.random.default_rng(seed).random(len(G)) < 0.7
    coords = np.repeat(free_nodes, dims)
    f, b = np.flatnonzero(coords), np.flatnonzero(~coords)
    for got, want in zip(blocks, (L[np.ix_(f, f)], L[np.ix_(f, b)], L[np.ix_(b, b)])):
        assert got.shape == want.shape
        np.testing.assert_allclose(got.toarray(), want, atol=1e-12)
    d = int(dims[0]) if dims.size else 0
    diagonal = blocks[3]  # the free nodes' diagonal blocks, as a block-Jacobi needs them
    want = [L[np.ix_(r, r)] for r in (table.node_start[v] + np.arange(d)
                                      for v in np.flatnonzero(free_nodes))]
    np.testing.assert_allclose(diagonal, np.array(want).reshape(diagonal.shape), atol=1e-12)


def test_split_laplacian_blocks_of_a_connection_sheaf_with_loops_and_parallel_edges():
    from graphsheaf.linalg import edge_table, laplacian_of
    rng = np.random.default_rng(5)
    G = nx.MultiDiGraph()
    G.add_nodes_from(range(12), dim=3)
    for u, v in list(zip(rng.integers(0, 12, 40), rng.integers(0, 12, 40))) + [(3, 3), (4, 5), (5, 4)]:
        G.add_edge(int(u), int(v), source_map=np.linalg.qr(rng.standard_normal((3, 3)))[0],
                   target_map=np.linalg.qr(rng.standard_normal((3, 3)))[0])
    table = edge_table(G)
    free_nodes = rng.random(12) < 0.6
    blocks = laplacian_of(G, table, split=free_nodes)
    L = laplacian_of(G, table).toarray()
    # the blocks sharing a position (up to four on one pair here) summed: L = δᵀδ
    pairs = np.unique(np.sort(np.c_[table.tails, table.heads], axis=1), axis=0, return_counts=True)[1]
    assert pairs.max() >= 3
    D = gs.coboundary_matrix(G).toarray()
    np.testing.assert_allclose(L, D.T @ D, atol=1e-12)
    coords = np.repeat(free_nodes, 3)
    f, b = np.flatnonzero(coords), np.flatnonzero(~coords)
    for got, want in zip(blocks, (L[np.ix_(f, f)], L[np.ix_(f, b)], L[np.ix_(b, b)])):
        np.testing.assert_allclose(got.toarray(), want, atol=1e-12)


@pytest.mark.parametrize("maps", [(np.array([[2.0]]), np.array([[-0.5]])),
                                  (np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([[0.5, 1.0], [1.0, 4.0]])),
                                  (np.eye(2), np.eye(2))])
def test_laplacian_of_shared_maps_is_the_coboundary_gram(maps):
    # one map shared by every edge on each side: dense ones take the block path (broadcast),
    # ones with zeros (identities) the per-map path; either way L = δᵀδ, and the split
    # blocks are its slices (parallel and antiparallel edges, a self-loop)
    from graphsheaf.linalg import edge_table, laplacian_of
    a, b = maps
    d = a.shape[1]
    G = nx.MultiDiGraph()
    G.add_nodes_from(range(9), dim=d)
    for u, v in [(0, 1), (1, 2), (2, 0), (0, 1), (1, 0), (4, 4), (5, 6), (6, 7), (7, 8), (3, 8)]:
        G.add_edge(u, v, source_map=a, target_map=b)
    D = gs.coboundary_matrix(G).toarray()
    L = gs.sheaf_laplacian(G).toarray()
    np.testing.assert_allclose(L, D.T @ D, atol=1e-12)
    table = edge_table(G)
    free_nodes = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1], dtype=bool)
    blocks = laplacian_of(G, table, split=free_nodes)
    assert (blocks is not None) == bool(np.all(a != 0) and np.all(b != 0))
    if blocks is not None:
        coords = np.repeat(free_nodes, d)
        f, p = np.flatnonzero(coords), np.flatnonzero(~coords)
        for got, want in zip(blocks, (L[np.ix_(f, f)], L[np.ix_(f, p)], L[np.ix_(p, p)])):
            np.testing.assert_allclose(got.toarray(), want, atol=1e-12)


@pytest.mark.parametrize("workers", [2, 3, 7])
def test_threaded_assembly_and_products_equal_the_single_threaded_ones(monkeypatch, workers):
    # the conversion to CSR and the products split over row ranges in threads (and the
    # blocks' products in chunks): same arrays and the same sums (each row is summed by one
    # thread, in the same order)
    import graphsheaf.laplacian_blocks as lb
    import graphsheaf.solvers as solvers
    from graphsheaf.linalg import edge_table, laplacian_of
    G = gs.random_sheaf(nx.gnm_random_graph(300, 900, seed=2, directed=True), dims=3,
                        edge_dims=3, rng=1)
    table = edge_table(G)
    free_nodes = np.random.default_rng(0).random(300) < 0.9
    one = laplacian_of(G, table, split=free_nodes) + (laplacian_of(G, table),)
    import graphsheaf._threads as threads
    monkeypatch.setattr(lb, "THREADED_NNZ", 0)
    monkeypatch.setattr(solvers, "THREADED_NNZ", 0)
    monkeypatch.setitem(threads.split_rows.__kwdefaults__, "at_least", 0)
    monkeypatch.setattr(lb, "_CHUNK", 7)  # the products XᵀX in many chunks, the last short
    many = laplacian_of(G, table, split=free_nodes, workers=workers) + \
        (laplacian_of(G, table, workers=workers),)
    for a, b in zip(one, many):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
            continue
        for attr in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    L = one[-1]
    rng = np.random.default_rng(1)
    for k in (None, 1, 4):
        shape = (L.shape[0],) if k is None else (L.shape[0], k)
        x, y = rng.standard_normal(shape), rng.standard_normal(shape)
        y1, y2 = y.copy(), y.copy()
        solvers.accumulate_product(L)(x, y1)
        solvers.accumulate_product(L, workers=workers)(x, y2)
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_allclose(y2, y + L @ x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("threaded", [False, True])
def test_edge_table_reads_maps_in_memory_order_and_returns_them_in_edge_order(monkeypatch,
                                                                              threaded):
    # maps created in an order unrelated to the adjacency order (edges added in reverse and
    # their arrays allocated first): the table still lists them as G.edges does
    import graphsheaf._threads as threads
    from graphsheaf.linalg import edge_table
    if threaded:  # the gather back into edge order split over threads at any size
        monkeypatch.setitem(threads.split_rows.__kwdefaults__, "at_least", 0)
        monkeypatch.setattr(gs.sheaves, "available_workers", lambda: 3)
    rng = np.random.default_rng(3)
    pairs = [(int(u), int(v)) for u, v in zip(rng.integers(0, 50, 400), rng.integers(0, 50, 400))
             if u != v]
    mats = [rng.standard_normal((2, 2)) for _ in range(2 * len(pairs))]
    G = nx.DiGraph()
    G.add_nodes_from(range(50), dim=2)
    for i, (u, v) in reversed(list(enumerate(pairs))):
        G.add_edge(u, v, source_map=mats[2 * i], target_map=mats[2 * i + 1])
    table = edge_table(G)
    edges = list(G.edges)
    assert [(table.nodelist[a], table.nodelist[b]) for a, b in zip(table.tails, table.heads)] == edges
    for i, (u, v) in enumerate(edges):
        assert table.A[i] is G.edges[u, v]["source_map"] and table.B[i] is G.edges[u, v]["target_map"]
        np.testing.assert_array_equal(table.stack_a[i], G.edges[u, v]["source_map"])
        np.testing.assert_array_equal(table.stack_b[i], G.edges[u, v]["target_map"])
    # before the gather, the stack as read has edge e's map in row inverse[e]
    fresh = edge_table(G)
    stack, inverse = fresh.stored("b")
    assert inverse is not None and not np.array_equal(inverse, np.arange(len(edges)))
    for e, (u, v) in enumerate(edges):
        np.testing.assert_array_equal(stack[inverse[e]], G.edges[u, v]["target_map"])
    assert fresh.stack_b is not None and fresh.stored("b")[1] is None  # one copy kept
    # the Laplacian is δᵀδ
    D = gs.coboundary_matrix(G)
    np.testing.assert_allclose(gs.sheaf_laplacian(G).toarray(), (D.T @ D).toarray(),
                               rtol=1e-12, atol=1e-12)
    # a bad entry is reported at the first such edge in edge order, whatever the stored order
    bad = [edges[-1], edges[len(edges) // 2]]
    for u, v in bad:
        G.edges[u, v]["target_map"] = np.array([[np.nan, 0.0], [0.0, 1.0]])
    with pytest.raises(gs.SheafError, match=rf"edge {bad[1][0]} -> {bad[1][1]}: target_map"):
        edge_table(G)


def test_threaded_products_work_in_a_forked_child(monkeypatch):
    # the shared thread pool does not survive a fork: a child made after the parent used it
    # must not wait on threads that do not exist there
    import multiprocessing

    import graphsheaf.solvers as solvers
    monkeypatch.setattr(solvers, "THREADED_NNZ", 0)
    L = gs.sheaf_laplacian(gs.random_sheaf(nx.gnm_random_graph(200, 600, seed=0, directed=True),
                                           dims=2, edge_dims=2, rng=0))
    x = np.random.default_rng(0).standard_normal(L.shape[0])
    y = np.zeros_like(x)
    solvers.accumulate_product(L, workers=2)(x, y)  # the parent's pool now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(_threaded_product_in_child, (L, x)).get(timeout=60)
    np.testing.assert_array_equal(got, y)


def _threaded_product_in_child(L, x):
    import graphsheaf.solvers as solvers
    solvers.THREADED_NNZ = 0
    y = np.zeros_like(x)
    solvers.accumulate_product(L, workers=2)(x, y)
    return y


def test_split_rows_covers_every_row_once():
    from graphsheaf._threads import split_rows
    for n, workers in ((0, 3), (1, 3), (10, 3), (1000, 7)):
        hits = np.zeros(n, dtype=int)

        def mark(s, hits=hits):
            hits[s] += 1
        split_rows(mark, n, workers, at_least=0)
        assert (hits == 1).all()


def test_addresses_of_list_items_are_their_ids(monkeypatch):
    from graphsheaf import _addresses
    items = [{}, np.zeros(2), "a", 10**30, None] * 50
    np.testing.assert_array_equal(_addresses.addresses(items), [id(x) for x in items])
    assert _addresses.addresses([]).shape == (0,)
    # where the list layout check fails, the ids are mapped one by one
    monkeypatch.setattr(_addresses, "_list_items_offset", lambda: None)
    np.testing.assert_array_equal(_addresses.addresses(items), [id(x) for x in items])


def test_pcg_hands_back_the_final_product():
    # product_out receives A X at the returned X: the product of the final residual check
    from graphsheaf.solvers import jacobi, pcg
    rng = np.random.default_rng(3)
    Q = rng.standard_normal((40, 40))
    A = Q @ Q.T + 40 * np.eye(40)
    B = rng.standard_normal((40, 3))
    out = np.full((40, 3), np.nan)
    X, its, relres = pcg(lambda P: A @ P, B, jacobi(np.diag(A)), product_out=out)
    np.testing.assert_allclose(out, A @ X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(B - out, axis=0) / np.linalg.norm(B, axis=0), relres,
                               rtol=1e-6, atol=1e-14)
    assert relres.max() <= 1e-10 and its > 0


@pytest.mark.parametrize("k", [1, 3])
def test_pcg_paths_agree_with_a_direct_solve(k):
    # one column moves by BLAS axpys, several by NumPy; a preconditioner taking ``out``
    # writes into one buffer, a plain callable returns fresh arrays: all solve A X = B
    from graphsheaf.solvers import BlockJacobi, jacobi, pcg
    rng = np.random.default_rng(k)
    Q = rng.standard_normal((60, 60))
    A = Q @ Q.T + 5 * np.eye(60)
    B = rng.standard_normal((60, k))
    want = np.linalg.solve(A, B)
    node_of, local_of = np.repeat(np.arange(20), 3), np.tile(np.arange(3), 20)
    blocks = BlockJacobi.from_matrix(sp.csr_array(A), node_of, local_of)
    plain = jacobi(np.diag(A))
    for precond in (jacobi(np.diag(A)), lambda R: plain(R), blocks, lambda R: blocks(R), None):
        X, its, relres = pcg(lambda P: A @ P, B, precond, rtol=1e-12)
        np.testing.assert_allclose(X, want, rtol=1e-8, atol=1e-10)
        assert relres.max() <= 1e-12
    # the preconditioners themselves: out= gives what the plain call gives (block inverses,
    # diagonal blocks as one scaling, stalks of mixed dimension)
    R = rng.standard_normal((60, k))
    diagonal = BlockJacobi.from_matrix(sp.csr_array(np.diag(np.diag(A))), node_of, local_of)
    mixed = BlockJacobi.from_matrix(sp.csr_array(A), np.repeat(np.arange(30), 2)[:60],
                                    np.tile(np.arange(2), 30))
    mixed_dims = BlockJacobi.from_matrix(sp.csr_array(A), np.r_[np.repeat(np.arange(20), 2),
                                                                np.repeat(np.arange(20, 40), 1)],
                                         np.r_[np.tile(np.arange(2), 20), np.zeros(20, int)])
    assert diagonal.scale is not None and not mixed_dims.whole
    for f in (plain, blocks, diagonal, mixed, mixed_dims):
        out = np.empty_like(R)
        assert f(R, out=out) is out
        np.testing.assert_array_equal(out, f(R))
