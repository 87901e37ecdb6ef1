import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import graphsheaf as gs

from .strategies import random_sheaves


def dense_reference(G, boundary):
    L = gs.sheaf_laplacian(G).toarray()
    b = gs.boundary_coordinates(G, boundary)
    free = np.setdiff1d(np.arange(L.shape[0]), b.index)
    x = np.zeros((L.shape[0],) + b.values.shape[1:])
    x[b.index] = b.values
    x[free] = np.linalg.solve(L[np.ix_(free, free)], -L[np.ix_(free, b.index)] @ b.values)
    return x


@pytest.mark.parametrize("method", ["dense", "sparse", "cg"])
def test_matches_dense_solve(method):
    G = gs.random_sheaf(nx.grid_2d_graph(4, 4), dims=2, edge_dims=2, rng=1)
    boundary = {(0, 0): [1.0, -1.0], (3, 3): {0: 2.0}, (0, 3): [0.5, 0.25]}
    x = gs.harmonic_extension(G, boundary, method=method)
    np.testing.assert_allclose(gs.to_vector(G, x), dense_reference(G, boundary), atol=1e-9)
    np.testing.assert_array_equal(x[(0, 0)], [1.0, -1.0])  # pinned values unchanged
    assert x[(3, 3)][0] == 2.0


def test_many_right_hand_sides_in_one_call():
    G = gs.random_sheaf(nx.cycle_graph(8), dims=3, edge_dims=3, rng=2)
    rng = np.random.default_rng(0)
    B = rng.standard_normal((3, 5))
    x = gs.harmonic_extension(G, {0: B, 4: {1: np.arange(5.0)}})
    for m in range(5):
        xm = gs.harmonic_extension(G, {0: B[:, m], 4: {1: float(m)}})
        for v in G:
            np.testing.assert_allclose(x[v][:, m], xm[v], atol=1e-10)
    assert x.energy.shape == (5,)


def test_extension_is_energy_minimiser_and_has_zero_free_gradient():
    G = gs.random_sheaf(nx.grid_2d_graph(3, 3), dims=2, edge_dims=2, rng=3)
    boundary = {(0, 0): [1.0, 0.0], (2, 2): [0.0, 1.0]}
    x = gs.harmonic_extension(G, boundary)
    v = gs.to_vector(G, x)
    L = gs.sheaf_laplacian(G)
    free = np.setdiff1d(np.arange(len(v)), gs.boundary_coordinates(G, boundary).index)
    np.testing.assert_allclose((L @ v)[free], 0, atol=1e-10)
    assert abs(x.energy - gs.dirichlet_energy(G, x)) < 1e-12


def test_global_section_is_reproduced_with_zero_energy():
    G = gs.constant_sheaf(nx.cycle_graph(6), dim=2)
    x = gs.harmonic_extension(G, {0: [3.0, -1.0]})
    for v in G:
        np.testing.assert_allclose(x[v], [3.0, -1.0], atol=1e-12)
    assert x.energy < 1e-20 and x.undetermined.shape[1] == 0


def test_nonunique_raises_naming_directions():
    g = nx.disjoint_union(nx.path_graph(3), nx.path_graph(2))
    G = gs.constant_sheaf(g)
    with pytest.raises(gs.NonUniqueExtensionError, match=r"dimension 1 .*nodes 3, 4") as err:
        gs.harmonic_extension(G, {0: [1.0]})
    assert err.value.basis.shape == (5, 1)


@pytest.mark.parametrize("method", ["dense", "sparse", "cg"])
def test_allow_nonunique_gives_minimum_norm(method):
    g = nx.disjoint_union(nx.path_graph(3), nx.path_graph(2))
    G = gs.constant_sheaf(g)
    x = gs.harmonic_extension(G, {0: [1.0]}, allow_nonunique=True, method=method)
    np.testing.assert_allclose([x[v][0] for v in G], [1, 1, 1, 0, 0], atol=1e-8)
    N = x.undetermined
    assert N.shape == (5, 1)
    np.testing.assert_allclose(np.abs(N[:, 0]), [0, 0, 0, 2 ** -0.5, 2 ** -0.5], atol=1e-8)


def test_boundary_without_values_is_rejected():
    G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    with pytest.raises(gs.SheafError, match="no values"):
        gs.harmonic_extension(G, [0])


def test_state_dependent_extension_batched_state():
    G = nx.DiGraph()
    G.add_node("x", dim=1)
    G.add_node("z", dim=2)
    G.add_node("a", dim=2)
    G.add_edge("x", "z", source_map=np.array([[1.0], [-1.0]]), target_map=np.eye(2))
    G.add_edge("z", "a", source_map=gs.ReLUGate(2), target_map=np.eye(2))
    X = np.array([[2.0, -3.0]])
    state = {"x": X, "z": np.array([[2.0, -3.0], [-2.0, 3.0]]), "a": np.zeros((2, 2))}
    ext = gs.harmonic_extension(G, {"x": X}, state=state)
    np.testing.assert_allclose(ext["a"], [[2.0, 0.0], [0.0, 3.0]])  # ReLU of z per sample


def test_restricted_laplacian_blocks():
    G = gs.random_sheaf(nx.path_graph(4), dims=2, edge_dims=1, rng=0)
    L = gs.sheaf_laplacian(G).toarray()
    L_ff, L_fb, free, pinned = gs.restricted_laplacian(G, {0: [0, 0], 3: {1: 0}})
    np.testing.assert_allclose(L_ff.toarray(), L[np.ix_(free, free)], atol=1e-12)
    np.testing.assert_allclose(L_fb.toarray(), L[np.ix_(free, pinned)], atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(random_sheaves(max_nodes=6, max_dim=3))
def test_extension_minimises_energy_property(G):
    nodes = [v for v in G if G.nodes[v]["dim"] > 0]
    if not nodes:
        return
    rng = np.random.default_rng(len(nodes))
    boundary = {nodes[0]: rng.standard_normal(G.nodes[nodes[0]]["dim"])}
    x = gs.harmonic_extension(G, boundary, allow_nonunique=True)
    v = gs.to_vector(G, x)
    L = gs.sheaf_laplacian(G).toarray()
    free = np.setdiff1d(np.arange(len(v)), gs.boundary_coordinates(G, boundary).index)
    grad = (L @ v)[free]
    np.testing.assert_allclose(grad, 0, atol=1e-7 * max(1.0, np.abs(L).max() * np.abs(v).max()))
    # minimum norm: no component along undetermined directions
    np.testing.assert_allclose(x.undetermined.T @ v, 0, atol=1e-7 * max(1, np.abs(v).max()))


def test_cg_detects_a_free_direction():
    g = nx.disjoint_union(nx.path_graph(3), nx.path_graph(2))
    with pytest.raises(gs.NonUniqueExtensionError, match=r"at least 1 .*nodes 3, 4") as err:
        gs.harmonic_extension(gs.constant_sheaf(g), {0: [1.0]}, method="cg")
    # the direction found is constant on the unpinned component, zero elsewhere
    d = err.value.basis[:, 0]
    np.testing.assert_allclose(np.abs(d), [0, 0, 0, 2 ** -0.5, 2 ** -0.5], atol=1e-6)


def test_auto_chooses_lu_for_a_band_and_cg_for_a_random_graph():
    path = gs.constant_sheaf(nx.path_graph(1500), dim=2)
    x = gs.harmonic_extension(path, {0: [1.0, 0.0], 1499: [0.0, 1.0]})
    assert x.method == "lu" and x.fill_estimate <= gs.solvers.DIRECT_FILL_LIMIT
    assert x.fill_estimate <= 4 * 2 * 2 * 1500  # a band: the factor is a few times L's nonzeros
    g = nx.gnm_random_graph(1000, 3000, seed=0, directed=True)
    g.remove_nodes_from(list(nx.isolates(g)))  # an isolated node is never determined
    S = gs.random_sheaf(g, dims=3, edge_dims=3, rng=1)
    boundary = {v: np.ones(3) for v in list(S)[::100]}
    x = gs.harmonic_extension(S, boundary, method="auto")
    lu = gs.harmonic_extension(S, boundary, method="sparse")
    assert x.method == "cg" and "expander" in x.reason  # no band: CG, no factor even estimated
    cg = gs.harmonic_extension(S, boundary, method="cg")
    assert cg.method == "cg" and cg.iterations > 0
    np.testing.assert_allclose(gs.to_vector(S, cg), gs.to_vector(S, lu), atol=1e-7)
    assert abs(cg.energy - lu.energy) <= 1e-9 * lu.energy


def test_cg_batched_and_convergence_warning():
    G = gs.random_sheaf(nx.grid_2d_graph(6, 6), dims=2, edge_dims=2, rng=5)
    B = np.random.default_rng(1).standard_normal((2, 3))
    boundary = {(0, 0): B, (5, 5): {0: np.arange(3.0)}}
    cg = gs.harmonic_extension(G, boundary, method="cg")
    ref = gs.harmonic_extension(G, boundary, method="dense")
    np.testing.assert_allclose(gs.to_vector(G, cg), gs.to_vector(G, ref), atol=1e-8)
    with pytest.warns(gs.ConvergenceWarning, match="conjugate gradients stopped after 2 iterations"):
        gs.harmonic_extension(G, boundary, method="cg", maxiter=2)


@pytest.mark.parametrize("seed", range(4))
def test_block_jacobi_blocks_are_the_diagonal_blocks_of_the_laplacian(seed):
    # the fast path (whole node blocks in every row) and the general one agree with L = δᵀδ
    from graphsheaf.cohomology import blocks_of
    from graphsheaf.linalg import edge_table
    from graphsheaf.solvers import BlockJacobi
    G = gs.random_sheaf(nx.gnm_random_graph(30, 70, seed=seed, directed=True), dims=3, edge_dims=3,
                        rng=seed)
    table = edge_table(G)
    delta = gs.coboundary_matrix(G)
    n = delta.shape[1]
    rng = np.random.default_rng(seed)
    pinned_nodes = rng.choice(30, 3, replace=False)
    free = np.setdiff1d(np.arange(n), np.concatenate([np.arange(3 * v, 3 * v + 3) for v in pinned_nodes]))
    if seed % 2:  # a pin on one coordinate only: the general path
        free = free[1:]
    D_f = sp.csr_array(delta[:, free])
    M = BlockJacobi(D_f, *blocks_of(free, table.node_start))
    assert M.whole == (seed % 2 == 0)
    L = (D_f.T @ D_f).toarray()
    R = rng.standard_normal((len(free), 2))
    node_of, local_of = blocks_of(free, table.node_start)
    want = np.zeros_like(R)
    for v in np.unique(node_of):
        idx = np.flatnonzero(node_of == v)
        want[idx] = np.linalg.solve(L[np.ix_(idx, idx)], R[idx])
    np.testing.assert_allclose(M(R), want, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("off", [0.0, 1e-14, 1e-6])
@pytest.mark.parametrize("d", [1, 3, 9])
def test_block_jacobi_from_blocks_inverts_each_block(off, d):
    # diagonal blocks (up to 1e-12 of their largest entry) take the scaling path, others
    # the eigendecomposition; both apply the inverse of every block, and nodes that are
    # not numbered 0, 1, ... in order are numbered by their order
    from graphsheaf.solvers import BlockJacobi
    rng = np.random.default_rng(d)
    n = 50
    blocks = np.zeros((n, d, d))
    blocks[:, np.arange(d), np.arange(d)] = rng.uniform(1, 5, (n, d))
    if d > 1:
        blocks[7, 0, d - 1] = blocks[7, d - 1, 0] = off * blocks[7].max()
    nodes = np.sort(rng.choice(10 * n, n, replace=False))  # gaps: pinned nodes in between
    node_of, local_of = np.repeat(nodes, d), np.tile(np.arange(d), n)
    L = sp.block_diag(list(blocks), format="csr")
    M = BlockJacobi.from_matrix(L, node_of, local_of, blocks=blocks)
    assert (M.scale is not None) == (d == 1 or off <= 1e-12)
    R = rng.standard_normal((n * d, 2))
    want = np.linalg.solve(blocks, R.reshape(n, d, 2)).reshape(n * d, 2)
    np.testing.assert_allclose(M(R), want, rtol=1e-12)
    M2 = BlockJacobi.from_matrix(L, node_of, local_of)  # read off L: the same operator
    np.testing.assert_allclose(M2(R), want, rtol=1e-12)


# ------------------------------------------------ issue 15: the solver is chosen and reported

def _grid_sheaf(k, d=1):
    g = nx.convert_node_labels_to_integers(nx.grid_2d_graph(k, k))
    return gs.constant_sheaf(nx.DiGraph(list(g.edges)), dim=d)


def _connection(n, seed=0):
    rng = np.random.default_rng(seed)
    g = nx.random_regular_graph(3, n, seed=seed)
    S = nx.DiGraph()
    S.add_nodes_from(g, dim=3)
    for u, v in g.edges:
        S.add_edge(u, v, source_map=np.linalg.qr(rng.standard_normal((3, 3)))[0],
                   target_map=np.linalg.qr(rng.standard_normal((3, 3)))[0])
    return S


def test_auto_takes_multigrid_on_meshes_and_block_jacobi_on_expanders():
    rng = np.random.default_rng(0)
    G = _grid_sheaf(150)  # 22,500 nodes: an LU factor would hold 2.3 million entries
    pins = {int(v): [float(rng.standard_normal())] for v in rng.choice(22500, 22, replace=False)}
    x = gs.harmonic_extension(G, pins)
    ref = gs.harmonic_extension(G, pins, method="sparse")
    assert x.method == "amg" and "mesh" in x.reason and x.uniqueness == "structural"
    assert max(abs(x[v] - ref[v]).max() for v in G) < 1e-7
    S = _connection(3000)
    pins = {int(v): rng.standard_normal(3) for v in rng.choice(3000, 30, replace=False)}
    y = gs.harmonic_extension(S, pins)
    assert y.method == "cg" and "expander" in y.reason and y.iterations < 200
    L = gs.sheaf_laplacian(S)
    vec = gs.to_vector(S, y)
    free = np.ones(9000, dtype=bool)
    for v in pins:
        free[3 * v:3 * v + 3] = False
    np.testing.assert_allclose((L @ vec)[free], 0, atol=1e-7)  # harmonic at every free node


@pytest.mark.parametrize("method", ["cg", "amg"])
def test_threads_do_not_change_the_extension(monkeypatch, method):
    # workers split each product into row ranges (each row summed by one thread): the
    # iterates, and so the result and the iteration count, are the same bit for bit with
    # block Jacobi (PyAMG's setup starts its spectral-radius estimate from a random vector,
    # so two multigrid solves differ by ~1e-13 even on one thread)
    import graphsheaf.laplacian_blocks as lb
    import graphsheaf.solvers as solvers
    monkeypatch.setattr(lb, "THREADED_NNZ", 0)
    monkeypatch.setattr(solvers, "THREADED_NNZ", 0)
    rng = np.random.default_rng(4)
    S = _connection(600, seed=4)
    pins = {int(v): rng.standard_normal((3, 2)) for v in rng.choice(600, 12, replace=False)}
    one = gs.harmonic_extension(S, pins, method=method, workers=1)
    two = gs.harmonic_extension(S, pins, method=method, workers=2)
    if method == "cg":
        assert one.iterations == two.iterations
        np.testing.assert_array_equal(gs.to_vector(S, one), gs.to_vector(S, two))
        np.testing.assert_array_equal(one.energy, two.energy)
    else:
        np.testing.assert_allclose(gs.to_vector(S, one), gs.to_vector(S, two), atol=1e-10)
        np.testing.assert_allclose(one.energy, two.energy, rtol=1e-10)


def test_iterative_paths_share_one_hierarchy_across_right_hand_sides():
    rng = np.random.default_rng(1)
    G = _grid_sheaf(40)
    nodes = [int(v) for v in rng.choice(1600, 6, replace=False)]
    vals = rng.standard_normal((6, 4))
    batch = gs.harmonic_extension(G, {v: vals[i][None, :] for i, v in enumerate(nodes)},
                                  method="amg")
    for j in range(4):
        one = gs.harmonic_extension(G, {v: [vals[i, j]] for i, v in enumerate(nodes)},
                                    method="amg")
        np.testing.assert_allclose([batch[v][0, j] for v in G], [one[v][0] for v in G], atol=1e-8)


def test_iterative_paths_refuse_undetermined_extensions():
    # one component of the grid has no pin: the probe column finds the free direction
    G = nx.disjoint_union(_grid_sheaf(30), _grid_sheaf(30))
    for method in ("amg", "cg"):
        with pytest.raises(gs.NonUniqueExtensionError):
            gs.harmonic_extension(G, {0: [1.0], 5: [2.0]}, method=method)
    x = gs.harmonic_extension(G, {0: [1.0], 900: [2.0]}, method="amg")
    assert x.uniqueness == "structural"


def test_closed_form_determinants_and_the_invertibility_check():
    from graphsheaf.laplace_solvers import _det_of_entries, _invertible
    rng = np.random.default_rng(0)
    for d in (1, 2, 3, 4):
        Y = rng.standard_normal((50, d, d))
        if d <= 3:  # the closed forms (larger maps go to LAPACK)
            np.testing.assert_allclose(_det_of_entries(Y.reshape(50, d * d).T, d),
                                       np.linalg.det(Y), rtol=1e-10, atol=1e-12)
        assert _invertible(Y)
        Y[17, :, 0] = Y[17, :, -1] if d > 1 else 0.0  # one singular map
        assert not _invertible(Y)


@pytest.mark.parametrize("where", [0, 14_562, 14_563, 39_999])
def test_invertibility_check_over_chunks_and_threads(monkeypatch, where):
    # the maps are checked in chunks (14,563 3×3 maps each) over several threads: a singular
    # map is found wherever it sits, at the edges of chunks and of the threads' parts too
    import graphsheaf._threads as threads
    import graphsheaf.laplace_solvers as ls
    monkeypatch.setitem(threads.split_rows.__kwdefaults__, "at_least", 0)
    monkeypatch.setattr(ls, "available_workers", lambda: 3)
    Y = np.linalg.qr(np.random.default_rng(1).standard_normal((40_000, 3, 3)))[0]
    assert ls._invertible(Y)
    Y[where, 1] = 2 * Y[where, 0]
    assert not ls._invertible(Y)


@pytest.mark.parametrize("pin_isolated", [True, False])
def test_structural_uniqueness_with_isolated_nodes(pin_isolated):
    # the component that the expander test's BFS reached, plus nodes without edges and a
    # two-node piece: each piece must have a pinned stalk for the pins to determine it
    from graphsheaf.laplace_solvers import graph_kind, pins_determine
    from graphsheaf.linalg import edge_table, uniform_maps
    S = _connection(300, seed=2)
    S.add_nodes_from([1000, 1001, 1002, 1003], dim=3)
    S.add_edge(1002, 1003, source_map=np.eye(3), target_map=np.eye(3))  # a second small piece
    table = edge_table(S)
    assert graph_kind(table) == "expander"
    whole = np.zeros(len(table.nodelist), dtype=bool)
    pos = {v: i for i, v in enumerate(table.nodelist)}
    whole[pos[0]] = True
    whole[pos[1000]] = True
    whole[pos[1001]] = pin_isolated
    whole[pos[1003]] = True
    assert pins_determine(table, uniform_maps(table), whole) == pin_isolated
    table2 = edge_table(S)  # without the BFS: the connected-components path agrees
    assert pins_determine(table2, uniform_maps(table2), whole) == pin_isolated
    whole[pos[1003]] = False  # the two-node piece left free
    assert not pins_determine(table, uniform_maps(table), whole)
    assert not pins_determine(table2, uniform_maps(table2), whole)


def test_graph_kind_reads_the_bfs_depth_at_the_threshold():
    # "expander" exactly when the BFS from the first edge's tail ends within 4 log2 n + 8
    # levels: paths and cycles around the threshold, and a grid
    from graphsheaf.laplace_solvers import graph_kind
    from graphsheaf.linalg import edge_table
    graphs = [nx.path_graph(n, create_using=nx.DiGraph) for n in range(2, 90, 3)]
    graphs += [nx.cycle_graph(n, create_using=nx.DiGraph) for n in (30, 57, 58, 59, 60, 61, 120)]
    graphs.append(nx.DiGraph(list(nx.convert_node_labels_to_integers(nx.grid_2d_graph(9, 9)).edges)))
    for g in graphs:
        table = edge_table(gs.constant_sheaf(g))
        n = len(table.nodelist)
        root = table.nodelist[int(table.tails[0])]
        depth = max(nx.single_source_shortest_path_length(g.to_undirected(), root).values())
        want = "expander" if depth <= 4 * int(np.ceil(np.log2(n))) + 8 else "mesh"
        assert graph_kind(table) == want, (g, depth)


@pytest.mark.parametrize("maps", ["constant", "positive", "twisted", "rotations"])
def test_multigrid_kind_follows_the_sign_pattern_and_agrees_with_lu(maps):
    # classical AMG where L[Ω,Ω] is an M-matrix (constant sheaves, positive scalar weights),
    # smoothed aggregation where an off-diagonal entry is positive (a −1 twist, rotations)
    rng = np.random.default_rng(5)
    d = 2 if maps in ("constant", "rotations") else 1
    G = _grid_sheaf(25, d)
    for k, (u, v) in enumerate(G.edges):
        if maps == "positive":
            G.edges[u, v]["source_map"] = np.array([[rng.uniform(0.2, 2.0)]])
        elif maps == "twisted" and k % 7 == 0:
            G.edges[u, v]["target_map"] = -np.eye(1)
        elif maps == "rotations":
            c, s = np.cos(k), np.sin(k)
            G.edges[u, v]["source_map"] = np.array([[c, -s], [s, c]])
    pins = {int(v): rng.standard_normal(d) for v in rng.choice(625, 6, replace=False)}
    x = gs.harmonic_extension(G, pins, method="amg")
    lu = gs.harmonic_extension(G, pins, method="sparse")
    assert x.multigrid == ("classical (Ruge-Stüben)" if maps in ("constant", "positive")
                           else "smoothed aggregation")
    np.testing.assert_allclose(gs.to_vector(G, x), gs.to_vector(G, lu), atol=1e-7)
    assert lu.multigrid is None


def test_m_matrix_check():
    import scipy.sparse as sp

    from graphsheaf.laplace_solvers import is_m_matrix
    M = np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]])
    assert is_m_matrix(sp.csr_array(M))
    M[0, 2] = 1e-12
    assert not is_m_matrix(sp.csr_array(M))
    assert is_m_matrix(sp.csr_array(np.diag([1.0, 5.0])))  # positive diagonal only


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=12), st.integers(0, 2**32 - 1),
       st.booleans())
def test_blocks_of_numbers_owners_compactly(dims, seed, shuffle):
    # owners by division (one stalk dimension) or by search, compact numbers by a running
    # count (sorted coordinates) or np.unique: always np.unique's numbering of the owners
    from graphsheaf.cohomology import blocks_of
    starts = np.concatenate([[0], np.cumsum(dims)])
    rng = np.random.default_rng(seed)
    n = int(starts[-1])
    ids = np.sort(rng.choice(n, rng.integers(0, n + 1), replace=False)) if n else np.zeros(0, int)
    if shuffle:
        rng.shuffle(ids)
    owner = np.searchsorted(starts, ids, side="right") - 1
    node, local = blocks_of(ids, starts)
    np.testing.assert_array_equal(node, np.unique(owner, return_inverse=True)[1].ravel())
    np.testing.assert_array_equal(local, ids - starts[owner])
