import networkx as nx
import numpy as np
import pytest
import scipy.linalg as la

import graphsheaf as gs
import graphsheaf.neural as gn


def small():
    G = gs.random_sheaf(nx.cycle_graph(6), dims=2, edge_dims=2, rng=0)
    x0 = {v: np.random.default_rng(v).standard_normal(2) for v in G}
    return G, x0


def test_expm_matches_scipy_expm():
    G, x0 = small()
    L = gs.sheaf_laplacian(G).toarray()
    x = gs.heat_diffusion(G, x0, 0.7)
    np.testing.assert_allclose(gs.to_vector(G, x), la.expm(-0.7 * L) @ gs.to_vector(G, x0),
                               atol=1e-12)


def test_pinned_expm_matches_affine_solution_and_pins_stay():
    G, x0 = small()
    L = gs.sheaf_laplacian(G).toarray()
    b = gs.boundary_coordinates(G, {0: [1.0, -2.0]})
    free = np.setdiff1d(np.arange(12), b.index)
    X0 = gs.to_vector(G, x0)
    X0[b.index] = b.values
    A, c = L[np.ix_(free, free)], L[np.ix_(free, b.index)] @ b.values
    x_star = -np.linalg.solve(A, c)
    t = 1.5
    ref = x_star + la.expm(-t * A) @ (X0[free] - x_star)
    x = gs.heat_diffusion(G, x0, t, boundary={0: [1.0, -2.0]})
    np.testing.assert_allclose(gs.to_vector(G, x)[free], ref, atol=1e-12)
    np.testing.assert_array_equal(x[0], [1.0, -2.0])


def test_euler_converges_to_expm_with_small_steps():
    G, x0 = small()
    ref = gs.to_vector(G, gs.heat_diffusion(G, x0, 1.0))
    errs = [np.abs(gs.to_vector(G, gs.heat_diffusion(G, x0, 1.0, method="euler", step=h)) - ref).max()
            for h in (1e-2, 1e-3)]
    assert errs[1] < errs[0] / 5 and errs[1] < 1e-2


def test_converges_to_harmonic_extension_at_spectral_gap_rate():
    G = gs.random_sheaf(nx.path_graph(6), dims=1, edge_dims=1, rng=1)
    boundary = {0: [1.0], 5: [-1.0]}
    target = gs.to_vector(G, gs.harmonic_extension(G, boundary))
    lam = gs.spectral_gap(G, boundary)
    x0 = {v: [0.0] for v in G}
    times = np.array([20.0, 30.0]) / lam
    tr = gs.heat_diffusion(G, x0, times, boundary=boundary)
    err = [np.linalg.norm(v - target) for v in tr.vectors]
    rate = -np.log(err[1] / err[0]) / (times[1] - times[0])
    assert abs(rate / lam - 1) < 1e-3


def test_time_grid_returns_trajectory_and_batches():
    G, _ = small()
    X = np.random.default_rng(1).standard_normal((12, 3))
    tr = gs.heat_diffusion(G, X, [0.0, 0.5, 1.0])
    assert isinstance(tr, gs.Trajectory) and tr.vectors.shape == (3, 12, 3)
    np.testing.assert_array_equal(tr.vectors[0], X)
    single = gs.heat_diffusion(G, X[:, 1], 1.0)
    np.testing.assert_allclose(tr.vectors[2][:, 1], gs.to_vector(G, single), atol=1e-12)
    assert set(tr[1]) == set(G) and len(tr.states) == 3


def test_user_step_that_diverges_is_refused():
    G, x0 = small()
    lam_max = np.linalg.eigvalsh(gs.sheaf_laplacian(G).toarray())[-1]
    with pytest.raises(gs.DivergenceError, match="2/λ_max"):
        gs.heat_diffusion(G, x0, 1.0, method="euler", step=2.01 / lam_max)
    default = gs.heat_diffusion(G, x0, [1.0], method="euler")
    assert default.step < 2 / lam_max


def test_state_dependent_euler_and_errors():
    G = nx.DiGraph()
    G.add_node("x", dim=1)
    G.add_node("z", dim=1)
    G.add_node("a", dim=1)
    G.add_edge("x", "z", source_map=np.eye(1), target_map=np.eye(1))
    G.add_edge("z", "a", source_map=gs.ReLUGate(1), target_map=np.eye(1))
    x0 = {"x": [-2.0], "z": [1.0], "a": [1.0]}
    with pytest.raises(gs.SheafError, match="state-dependent"):
        gs.heat_diffusion(G, x0, 1.0)
    x = gs.heat_diffusion(G, x0, 60.0, boundary=["x"], method="euler")
    np.testing.assert_allclose([x["z"][0], x["a"][0]], [-2.0, 0.0], atol=1e-8)
    with pytest.raises(gs.SheafError, match="non-decreasing"):
        gs.heat_diffusion(G, x0, [1.0, 0.5], method="euler")


@pytest.mark.parametrize("k", [None, 3])
def test_euler_product_accumulates_in_place_without_temporaries(k):
    import tracemalloc

    from graphsheaf.diffusion import _accumulate_product

    G = gs.random_sheaf(nx.gnm_random_graph(20000, 60000, seed=0, directed=True), dims=2,
                        edge_dims=2, rng=0)
    L = gs.sheaf_laplacian(G)
    rng = np.random.default_rng(0)
    shape = (L.shape[0],) if k is None else (L.shape[0], k)
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    expected = y + L @ x
    product = _accumulate_product(L)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    product(x, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    assert peak - base < x.nbytes // 4  # no vector-sized temporary


def test_state_dependent_euler_steps_are_the_gradient_flow_of_the_energy():
    # reference: x ← x - h δ(x)ᵀ δ(x) x on the free coordinates, from the operator itself
    from graphsheaf.linalg import CoboundaryOperator, boundary_coordinates, to_vector
    W, b = gn.init_weights([3, 5, 4, 2], rng=1)
    S = gn.neural_sheaf(W, b)
    rng = np.random.default_rng(0)
    x0 = {v: rng.standard_normal(S.nodes[v]["dim"]) for v in S}
    h, steps = 0.01, 37
    got = gs.heat_diffusion(S, x0, h * steps, boundary=["x"], method="euler", step=h)
    op = CoboundaryOperator(S)
    nodes = op.table.nodelist
    X = to_vector(S, x0, nodes)
    free = np.setdiff1d(np.arange(X.size), boundary_coordinates(S, ["x"], nodes).index)
    for _ in range(steps):
        g = op.rmatvec(op.matvec(X, state=X), state=X)
        X[free] -= h * g[free]
    want = gs.to_assignment(S, X, nodes)
    for v in S:
        np.testing.assert_allclose(got[v], want[v], rtol=1e-10, atol=1e-12)


def test_euler_on_a_large_constant_sheaf_does_not_start_from_a_global_section():
    # issue 15: λ_max was estimated from the all-ones vector, a global section (ArpackError)
    G = gs.constant_sheaf(nx.cycle_graph(2001))
    x0 = np.random.default_rng(0).standard_normal(2001)
    out = gs.heat_diffusion(G, x0, 1.0, method="euler")  # the default step 1/λ_max = 1/4
    assert gs.dirichlet_energy(G, out) < gs.dirichlet_energy(G, gs.to_assignment(G, x0))
    fine = gs.heat_diffusion(G, x0, 1.0, method="euler", step=0.002)
    ref = gs.heat_diffusion(G, x0, 1.0, method="expm")
    np.testing.assert_allclose(gs.to_vector(G, fine), gs.to_vector(G, ref), atol=5e-3)
