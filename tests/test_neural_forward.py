"""Paper-spec §7 A: construction and linear algebra (Lemma 3.2, Proposition 3.4)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphsheaf as gs
import graphsheaf.neural as gn
from graphsheaf.neural.forward import restricted_delta, topological_layout

W231 = [np.array([[1., -1.], [2., 0.], [-1., 1.]]), np.array([[1., -2., 3.]])]
B231 = [np.array([0., -1., .5]), np.array([.5])]
X231 = np.array([1., 2.])
ARCHS = [[2, 4, 1], [3, 5, 2], [2, 6, 4, 1], [3, 8, 6, 2], [2, 6, 4, 4, 1], [4, 8, 6, 4, 3]]


def numpy_forward(W, b, X):
    a = X
    for l in range(len(W)):
        z = W[l] @ a + (b[l] if a.ndim == 1 else b[l][:, None])
        a = np.maximum(z, 0)
    return z


def delta_at(S, state):
    nodes, edges = topological_layout(S)
    return restricted_delta(S, state, nodes, edges)


def test_worked_example_matrices_exactly():  # §7 A4
    S = gn.neural_sheaf(W231, B231)
    x = gn.forward(S, X231)
    np.testing.assert_array_equal(x["z1"], [-1, 1, 1.5])
    np.testing.assert_array_equal(x["a1"][:3], [0, 1, 1.5])
    np.testing.assert_array_equal(x["z2"], [3.0])
    D, DU = delta_at(S, x)
    expected_D = np.array([
        [1, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0],
        [0, 0, 0, 1, 0, 0, 0], [0, -1, 0, 0, 1, 0, 0], [0, 0, -1, 0, 0, 1, 0],
        [0, 0, 0, -1, 2, -3, 1]], dtype=float)
    expected_DU = np.zeros((7, 6))
    expected_DU[:3, :5] = -np.hstack([W231[0], np.diag(B231[0])])
    expected_DU[6, 5] = -0.5
    np.testing.assert_array_equal(D, expected_D)
    np.testing.assert_array_equal(DU, expected_DU)
    L = D.T @ D
    expected_L = np.array([
        [1, 0, 0, 0, 0, 0, 0], [0, 2, 0, 0, -1, 0, 0], [0, 0, 2, 0, 0, -1, 0],
        [0, 0, 0, 2, -2, 3, -1], [0, -1, 0, -2, 5, -6, 2], [0, 0, -1, 3, -6, 10, -3],
        [0, 0, 0, -1, 2, -3, 1]], dtype=float)
    np.testing.assert_array_equal(L, expected_L)
    np.testing.assert_allclose(np.linalg.eigvalsh(L), [0.032922, 0.381966, 0.933332, 1,
                                                       2.034043, 2.618034, 15.999702], atol=1e-6)
    L_fu = D.T @ DU
    np.testing.assert_array_equal(L_fu[3:6, 5], [0.5, -1, 1.5])  # W2ᵀ b2
    ext = -np.linalg.solve(L, L_fu @ np.array([1, 2, 1, 1, 1, 1.0]))
    np.testing.assert_allclose(ext, [-1, 1, 1.5, 0, 1, 1.5, 3], atol=1e-12)


@pytest.mark.parametrize("dims", ARCHS)
def test_unitriangular_det_one_for_arbitrary_patterns(dims):  # §7 A1, A2
    for seed in range(5):
        W, b = gn.init_weights(dims, rng=seed)
        S = gn.neural_sheaf(W, b)
        rng = np.random.default_rng(seed)
        n_free = 2 * sum(dims[1:-1]) + dims[-1]
        # arbitrary (inconsistent) patterns: random signs in every z stalk
        state = {v: rng.standard_normal(S.nodes[v]["dim"]) for v in S}
        D, _ = delta_at(S, state)
        assert D.shape == (n_free, n_free)
        assert np.all(np.triu(D, 1) == 0) and np.all(np.diag(D) == 1)
        L = D.T @ D
        assert abs(np.linalg.det(D) - 1) < 1e-8 and abs(np.linalg.det(L) - 1) < 1e-8
        assert np.linalg.eigvalsh(L)[0] > 0
        r = gn.check_unitriangular(S, rng.standard_normal(dims[0]))
        assert r and r.det == 1.0 and r.n_free == n_free


def block_formula(W, R):
    """§2.4: L[Ω,Ω] assembled block by block, independently of the sheaf code."""
    k = len(R)
    sizes = []
    for l in range(k):
        sizes += [W[l].shape[0], W[l].shape[0]]
    sizes.append(W[k].shape[0])
    starts = np.concatenate([[0], np.cumsum(sizes)])
    L = np.zeros((starts[-1], starts[-1]))
    blk = lambda i, j: (slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1]))
    for l in range(k):
        zi, ai = 2 * l, 2 * l + 1
        n = W[l].shape[0]
        L[blk(zi, zi)] = np.eye(n) + R[l]
        L[blk(ai, ai)] = np.eye(n) + W[l + 1].T @ W[l + 1]
        L[blk(zi, ai)] = L[blk(ai, zi)] = -R[l]
        L[blk(zi + 2, ai)] = -W[l + 1]
        L[blk(ai, zi + 2)] = -W[l + 1].T
    L[blk(2 * k, 2 * k)] = np.eye(W[k].shape[0])
    return L


@pytest.mark.parametrize("dims", ARCHS[:4])
def test_block_tridiagonal_formula_and_independence(dims):  # §7 A3
    W, b = gn.init_weights(dims, rng=3)
    b = [np.random.default_rng(l).standard_normal(len(v)) for l, v in enumerate(b)]
    S = gn.neural_sheaf(W, b)
    x = np.random.default_rng(1).standard_normal(dims[0])
    f = gn.forward(S, x)
    D, DU = delta_at(S, f)
    R = [np.diag((f[f"z{l}"] >= 0).astype(float)) for l in range(1, len(dims) - 1)]
    np.testing.assert_allclose(D.T @ D, block_formula(W, R), atol=1e-12)
    L_ff, L_fb, free, pinned = gs.restricted_laplacian(S, gn.pinned_spec(S), state=f)
    nodes = list(S)
    assert nodes == topological_layout(S)[0]
    np.testing.assert_allclose(L_fb.toarray(), D.T @ DU, atol=1e-12)
    # with σ held fixed, L[Ω,Ω] ignores biases and input
    S2 = gn.neural_sheaf(W, [v * 0 + 7 for v in b])
    D2, _ = delta_at(S2, f)
    np.testing.assert_array_equal(D2.T @ D2, D.T @ D)


@pytest.mark.parametrize("dims", ARCHS)
def test_forward_is_the_harmonic_extension(dims):  # §7 A5, Proposition 3.4
    W, b = gn.init_weights(dims, rng=0)
    b = [np.random.default_rng(9).standard_normal(len(v)) * 0.3 for v in b]
    S = gn.neural_sheaf(W, b)
    X = np.random.default_rng(2).standard_normal((dims[0], 100))
    f = gn.forward(S, X)
    np.testing.assert_allclose(f[S.graph["output"]], numpy_forward(W, b, X), rtol=1e-12, atol=1e-12)
    ext = gs.harmonic_extension(S, gn.forward_boundary(S, X), state=f)
    for v in S:
        np.testing.assert_allclose(ext[v], f[v], atol=1e-10)
    assert np.max(gs.dirichlet_energy(S, f, state=f)) < 1e-20
    x0 = X[:, 0]
    c = gs.cohomology(S, relative_to=gn.forward_boundary(S, x0), state=gn.forward(S, x0))
    assert c.h0 == 0 and c.h1 == 0


def test_energy_identity_and_force_is_minus_gradient():  # §7 A6
    W, b = gn.init_weights([3, 5, 4, 2], rng=4)
    b = [np.full(len(v), 0.2) for v in b]
    S = gn.neural_sheaf(W, b)
    x = np.array([0.4, -1.0, 0.3])
    rng = np.random.default_rng(0)
    c = {v: rng.standard_normal(S.nodes[v]["dim"]) for v in S}
    c["x"] = gn.forward_boundary(S, x)["x"]
    for v, coords in S.graph["constant"].items():
        c[v][coords] = 1.0
    explicit = 0.5 * sum(np.sum((W[l] @ c[u][:W[l].shape[1]] + b[l] - c[v]) ** 2)
                         for l, (u, v) in enumerate([("x", "z1"), ("a1", "z2"), ("a2", "z3")]))
    explicit += 0.5 * sum(np.sum((np.maximum(c[f"z{l}"], 0) - c[f"a{l}"][:len(c[f"z{l}"])]) ** 2)
                          for l in (1, 2))
    assert abs(gs.dirichlet_energy(S, c, state=c) - explicit) < 1e-12
    # one Euler step of size h moves free coordinates by -h ∇E (finite differences)
    h = 1e-7
    res = gn.heat_equation(S, x, steps=1, dt=h, state0=c, tol=0, min_steps=0)

    def energy(state):
        return gs.dirichlet_energy(S, state, state=state)
    for v, i in [("z1", 0), ("a1", 1), ("z3", 1), ("a2", 0)]:
        e = np.zeros_like(c[v])
        e[i] = 1e-6
        plus, minus = dict(c), dict(c)
        plus[v], minus[v] = c[v] + e, c[v] - e
        grad = (energy(plus) - energy(minus)) / 2e-6
        step = (res.state[v][i] - c[v][i]) / h
        assert abs(step + grad) < 1e-5 * max(1, abs(grad))


def test_restricted_spectrum_of_worked_example():
    s = gn.restricted_spectrum(gn.neural_sheaf(W231, B231), X231)
    assert abs(s.lambda_min - 0.032922) < 1e-6 and abs(s.lambda_max - 15.999702) < 1e-6
    batch = gn.restricted_spectrum(gn.neural_sheaf(W231, B231), np.stack([X231, -X231], 1))
    assert batch.lambda_min.shape == (2,)


def test_predict_and_bad_inputs():
    S = gn.neural_sheaf(W231, B231)
    assert gn.predict(S, X231).tolist() == [3.0]
    with pytest.raises(gs.SheafError, match=r"takes \(2,\)"):
        gn.forward(S, np.ones(3))
    with pytest.raises(gs.SheafError, match="NaN"):
        gn.predict(S, np.array([np.nan, 1.0]))


@st.composite
def networks(draw):
    depth = draw(st.integers(1, 6))
    dims = [draw(st.integers(1, 64)) for _ in range(depth + 1)]
    seed = draw(st.integers(0, 10**6))
    rng = np.random.default_rng(seed)
    W, _ = gn.init_weights(dims, rng=rng)
    b = [rng.standard_normal(d) * 0.5 for d in dims[1:]]
    return W, b, rng.standard_normal(dims[0])


@settings(max_examples=25, deadline=None)
@given(networks())
def test_property_forward_det_pd_energy_h0(net):
    W, b, x = net
    S = gn.neural_sheaf(W, b)
    f = gn.forward(S, x)
    np.testing.assert_allclose(f[S.graph["output"]], numpy_forward(W, b, x), rtol=1e-12, atol=1e-10)
    r = gn.check_unitriangular(S, x)
    assert r and abs(r.det - 1) < 1e-12
    assert gn.restricted_spectrum(S, x).lambda_min > 0
    assert gs.dirichlet_energy(S, f, state=f) < 1e-20
    ext = gs.harmonic_extension(S, gn.forward_boundary(S, x), state=f)
    scale = max(1.0, max(np.abs(v).max() for v in f.values()))
    assert max(np.abs(ext[v] - f[v]).max() for v in S) < 1e-8 * scale
    assert gs.cohomology(S, relative_to=gn.pinned_spec(S), state=f, bases=False).h0 == 0


def test_forward_stalks_share_one_slab_in_cochain_order_and_out_reuses_it():
    W, b = gn.init_weights([3, 5, 4, 2], rng=3)
    S = gn.neural_sheaf(W, b)
    X = np.random.default_rng(4).standard_normal((3, 7))
    x = gn.forward(S, X)
    base = x["x"].base
    assert base is not None and all(v.base is base for v in x.values())
    np.testing.assert_array_equal(base, gs.to_vector(S, x))
    again = gn.forward(S, 2 * X, out=x)
    assert again is x and x["x"].base is base
    fresh = gn.forward(S, 2 * X)
    for node in fresh:
        np.testing.assert_array_equal(x[node], fresh[node])


def test_forward_output_in_chunks_equals_one_sweep():
    # the whole-set evaluation (per-epoch losses, predict, the estimators) runs chunks of
    # columns through kept buffers: the same outputs to rounding, for any number of columns,
    # a partial last chunk, strided inputs (a transposed matrix of rows) and one sample
    from graphsheaf.neural.kernels import forward_output, forward_sweep
    from graphsheaf.neural.plan import NetworkPlan
    W, b = gn.init_weights([6, 9, 7, 3], rng=4)
    plan = NetworkPlan(gn.neural_sheaf(W, b, output="softmax"))
    rng = np.random.default_rng(5)
    for M in (1, 7, 8, 23, 64):
        rows = rng.standard_normal((M, 6))
        X = np.ascontiguousarray(rows.T)
        whole = forward_sweep(plan, X)[0][-1]
        for chunk in (1, 3, 8, 512):
            got = forward_output(plan, X, chunk=chunk)
            np.testing.assert_allclose(got, whole, rtol=1e-13, atol=1e-13)
            np.testing.assert_allclose(forward_output(plan, rows.T, chunk=chunk), whole,
                                       rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(forward_output(plan, X, chunk=M), whole)  # one sweep
    x = rng.standard_normal(6)
    np.testing.assert_array_equal(forward_output(plan, x, chunk=1), forward_sweep(plan, x)[0][-1])
