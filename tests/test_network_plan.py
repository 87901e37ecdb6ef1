"""The network is the sheaf: every neural algorithm computes with what is on the graph.

Neural sheaves of depth 1-4 with every piecewise-linear activation are edited through
the public API (a gate swapped, a bias block made non-diagonal, a map scaled); every
neural algorithm must then agree with the generic tools evaluated on the edited graph
(or refuse with a SheafError naming the edge).
"""
import numpy as np
import pytest

import graphsheaf as gs
import graphsheaf.neural as gn

ACTS = ["relu", "leaky_relu", "hardtanh", "relu6", "identity", "prelu"]
NUMPY = {
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z >= 0, z, 0.01 * z),
    "hardtanh": lambda z: np.clip(z, -1, 1),
    "relu6": lambda z: np.clip(z, 0, 6),
    "identity": lambda z: z,
}


def activation(name, n, rng):
    if name == "prelu":  # per-neuron slopes
        return gs.PiecewiseLinearGate(n, [0.0], np.stack([rng.uniform(-0.5, 0.5, n), np.ones(n)], 1))
    return name


def build(act, depth, seed, width=4, output="identity"):
    rng = np.random.default_rng(seed)
    dims = [3] + [width + l for l in range(depth)] + [2]
    W, b = gn.init_weights(dims, rng=seed)
    b = [0.3 * rng.standard_normal(len(v)) for v in b]
    acts = [activation(act, dims[l + 1], rng) for l in range(depth)]
    return gn.neural_sheaf(W, b, activation=acts, output=output), dims


def numpy_forward(S, X):
    """A plain NumPy forward pass from the maps on the edges (W̄ free block, bias = W̄_const @ 1)."""
    a = X
    z = None
    node = S.graph["input"]
    while S.out_degree(node):
        (_, nxt), = S.out_edges(node)
        data = S.edges[node, nxt]
        M = data["source_map"]
        if isinstance(M, gs.PiecewiseLinearGate):
            a = M.value(z)
        elif S.edges[node, nxt]["kind"] == "affine":
            n_in = a.shape[0]
            W = np.asarray(M)
            z = W[:, :n_in] @ a + W[:, n_in:].sum(1)[:, None]
        node = nxt
    return z


def edit(S, rng):
    """Swap a gate, make a bias block non-diagonal, scale a map -- through the public API."""
    e_gate = next(e for e in S.edges if S.edges[e]["kind"] == "relu")
    old = S.edges[e_gate]["source_map"]
    n = old.n
    if old.has_intercept:
        new = gs.PiecewiseLinearGate(n, [-0.5, 2.0], [0.2, 1.0, -0.3])  # intercepts: z̄ carries a 1
    else:
        new = gs.PiecewiseLinearGate(n, [0.0], [0.3, 1.5])
    S.edges[e_gate]["source_map"] = new
    affine = [e for e in S.edges if S.edges[e]["kind"] == "affine"]
    W_bar = np.array(S.edges[affine[0]]["source_map"], dtype=float)
    n_in = S.graph["dims"][0]
    W_bar[:, n_in:] += 0.2 * rng.standard_normal(W_bar[:, n_in:].shape)  # non-diagonal bias block
    S.edges[affine[0]]["source_map"] = W_bar
    S.edges[affine[-1]]["source_map"] = 1.7 * np.asarray(S.edges[affine[-1]]["source_map"])
    return S


def generic_forward(S, x):
    """gs.harmonic_extension of the pinned input, with the state-dependent maps evaluated at
    the result, iterated to a fixed point (a consistent state is its own extension)."""
    state = gn.forward(S, x)
    return gs.harmonic_extension(S, gn.forward_boundary(S, x), state=state), state


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_every_algorithm_agrees_with_the_generic_tools_on_an_edited_graph(act, depth):
    rng = np.random.default_rng(depth)
    S, dims = build(act, depth, seed=depth)
    S = edit(S, rng)
    X = rng.standard_normal((dims[0], 6))
    # forward: the generic harmonic extension of the same graph at its own state
    fw = gn.forward(S, X)
    for m in range(X.shape[1]):
        ext, state = generic_forward(S, X[:, m])
        for v in S:
            np.testing.assert_allclose(fw[v][:, m], ext[v], atol=1e-10)
            np.testing.assert_allclose(state[v], fw[v][:, m], atol=1e-12)
    np.testing.assert_allclose(gn.predict(S, X), numpy_forward(S, X), atol=1e-10)
    np.testing.assert_allclose(gn.predict(S, X), fw[S.graph["output"]], atol=1e-12)
    # Lemma 3.2 does not depend on the gates' slopes
    u = gn.check_unitriangular(S, X[:, 0])
    assert u.square and u.unit_lower_triangular and u.det == 1.0
    # discord = 2 × the generic per-edge energy, at any state
    noisy = {v: fw[v][:, 0] + (0.1 * rng.standard_normal(fw[v].shape[0]) if v != "x" else 0)
             for v in S}
    for v, c in S.graph["constant"].items():
        noisy[v][c] = 1.0
    d = gn.discord(S, noisy)
    ee = gs.edge_energies(S, noisy, state=noisy)
    for e in S.edges:
        assert d.edges[e] == pytest.approx(2 * ee[e], rel=1e-10, abs=1e-14)
    # spectrum of L[Ω,Ω] from the generic restricted Laplacian at the forward state
    L, _, _, _ = gs.restricted_laplacian(S, gn.pinned_spec(S), state=gn.forward(S, X[:, 0]))
    lam = np.linalg.eigvalsh(L.toarray())
    s = gn.restricted_spectrum(S, X[:, 0])
    assert s.lambda_min == pytest.approx(lam[0], rel=1e-9)
    assert gn.spectral_diagnostics(S, X[:, :1]).lambda_max[0] == pytest.approx(lam[-1], rel=1e-9)
    # the trainer reads the same network: its epoch-0 loss is the loss of gn.predict
    Y = rng.standard_normal((dims[-1], X.shape[1]))
    tr = gn.SheafTrainer(S, mode="exact", learning_rate=1e-3)
    h = tr.train(X, Y, epochs=1)
    # (h.train_loss[0] was recorded before the update, with the weights of the edited graph)
    S0 = edit(build(act, depth, seed=depth)[0], np.random.default_rng(depth))
    assert h.train_loss[0] == pytest.approx(float(np.mean((gn.predict(S0, X) - Y) ** 2)), rel=1e-12)


@pytest.mark.parametrize("act", ACTS)
def test_training_writes_back_in_the_layout_it_found(act):
    rng = np.random.default_rng(0)
    S, dims = build(act, 2, seed=3)
    S = edit(S, rng)
    e0 = next(e for e in S.edges if S.edges[e]["kind"] == "affine")
    B_before = np.array(S.edges[e0]["source_map"])[:, dims[0]:]
    X, Y = rng.standard_normal((dims[0], 20)), rng.standard_normal((dims[-1], 20))
    gn.SheafTrainer(S, mode="exact", learning_rate=0.01).train(X, Y, epochs=2)
    W_bar = np.asarray(S.edges[e0]["source_map"])
    B = W_bar[:, dims[0]:]
    # a general block stays general: the change of b is spread over its columns
    change = (B - B_before)
    np.testing.assert_allclose(change - change[:, :1], 0, atol=1e-14)
    assert np.count_nonzero(B - np.diag(np.diag(B))) > 0
    # the untouched diagonal blocks stay diagonal
    e1 = [e for e in S.edges if S.edges[e]["kind"] == "affine"][1]
    B1 = np.asarray(S.edges[e1]["source_map"])[:, dims[1]:]
    assert not np.any(B1 - np.diag(np.diag(B1)))
    _, b = gn.to_weights(S)
    np.testing.assert_allclose(b[0], B.sum(1))


@pytest.mark.parametrize("act", ACTS[:5])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_forward_is_a_numpy_forward_pass_for_every_activation(act, depth):
    rng = np.random.default_rng(depth)
    dims = [3] + [5] * depth + [2]
    W, b = gn.init_weights(dims, rng=depth)
    b = [rng.standard_normal(len(v)) for v in b]
    S = gn.neural_sheaf(W, b, activation=act)
    X = 2 * rng.standard_normal((3, 40))
    a = X
    for l in range(depth + 1):
        z = W[l] @ a + b[l][:, None]
        a = NUMPY[act](z)
    np.testing.assert_allclose(gn.forward(S, X)["z%d" % (depth + 1)], z, atol=1e-12)
    np.testing.assert_allclose(gn.predict(S, X), z, atol=1e-12)


@pytest.mark.parametrize("act", ACTS)
def test_heat_equation_converges_to_the_forward_pass_and_pins_to_the_equilibrium(act):
    rng = np.random.default_rng(4)
    S, dims = build(act, 2, seed=4, width=3)
    x = rng.standard_normal(dims[0])
    lam = gn.restricted_spectrum(S, x).lambda_max
    dt = 1.0 / (2.0 * lam)
    res = gn.heat_equation(S, x, dt=dt, tol=1e-13, rng=0, steps=400_000, record=False)
    fw = gn.forward(S, x)
    assert res.converged
    np.testing.assert_allclose(res.state["z3"], fw["z3"], atol=1e-8)
    # pin the output and a hidden neuron: the exact equilibrium is the heat equation's limit
    pins = {"z3": {0: fw["z3"][0] + 0.7}, "a1": {1: fw["a1"][1] - 0.3}}
    eq = gn.equilibrium(S, x, pins=pins)
    heat = gn.heat_equation(S, x, pins=pins, dt=dt, tol=1e-13, init="forward", steps=400_000,
                            record=False)
    assert not eq.fell_back and heat.converged
    for v in ("z1", "a1", "z2", "a2", "z3"):
        np.testing.assert_allclose(eq.state[v], heat.state[v], atol=1e-6)
    assert eq.energy > 1e-6  # the pins disagree with the forward pass


@pytest.mark.parametrize("act", ACTS)
def test_local_gradients_tend_to_backprop_which_matches_finite_differences(act):
    rng = np.random.default_rng(5)
    S, dims = build(act, 2, seed=5)
    S = edit(S, rng)
    X, Y = rng.standard_normal((dims[0], 15)), rng.standard_normal((dims[-1], 15))
    gW, gb = gn.backprop_gradients(S, X, Y)
    lW, lb, info = gn.local_gradients(S, X, Y, gamma=1e-9)
    assert info["unsettled"] == 0
    for g, l in zip(gW + gb, lW + lb):
        np.testing.assert_allclose(l, g, rtol=1e-4, atol=1e-6)

    def loss(T):
        return 0.5 * np.sum((gn.predict(T, X) - Y) ** 2)
    affine = [e for e in S.edges if S.edges[e]["kind"] == "affine"]
    h = 1e-6
    for l, e in enumerate(affine):
        n_in = dims[l]
        for (i, j) in [(0, 0), (1, n_in - 1), (0, n_in)]:  # two weights and (through W̄_const) a bias
            A = np.array(S.edges[e]["source_map"], dtype=float)
            T = S.copy()
            T.edges[e]["source_map"] = A + _unit(A.shape, i, j, h)
            up = loss(T)
            T.edges[e]["source_map"] = A - _unit(A.shape, i, j, h)
            fd = (up - loss(T)) / (2 * h)
            want = gW[l][i, j] if j < n_in else gb[l][i]
            assert fd == pytest.approx(want, rel=1e-5, abs=1e-7)


def _unit(shape, i, j, h):
    E = np.zeros(shape)
    E[i, j] = h
    return E


@pytest.mark.parametrize("act", ["leaky_relu", "hardtanh"])
def test_exact_training_matches_backprop_test_loss(act):
    # a smooth bounded target (a hard-tanh net fits it without living in its flat regions;
    # on the paraboloid backprop itself moves 16% when its learning rate moves 0.1%)
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (2, 400))
    Y = (np.sin(X[0]) * np.cos(X[1]))[None]
    W, b = gn.init_weights([2, 16, 16, 1], rng=1)
    results = {}
    for mode in ("exact", "backprop"):
        S = gn.neural_sheaf([w.copy() for w in W], [v.copy() for v in b], activation=act)
        kw = dict(optimizer="adam", learning_rate=0.003)
        if mode == "exact":
            h = gn.SheafTrainer(S, mode="exact", **kw).train(
                X[:, :300], Y[:, :300], X[:, 300:], Y[:, 300:], epochs=300)
        else:
            h = gn.train_backprop(S, X[:, :300], Y[:, :300], X[:, 300:], Y[:, 300:], epochs=300,
                                  **kw)
        results[mode] = h.test_loss[-1]
        assert h.test_loss[-1] < 0.02 * h.test_loss[0]
    assert results["exact"] == pytest.approx(results["backprop"], rel=0.02)


def test_maps_the_plan_cannot_run_are_refused_naming_the_edge():
    S, dims = build("relu", 2, seed=0)
    x = np.ones(dims[0])

    class Leaky(gs.StateDependentMap):  # a gate that is not a PiecewiseLinearGate
        shape = (5, 5)

        def matrix(self, s):
            return np.diag(np.where(np.asarray(s) >= 0, 1.0, 0.1))

    T = S.copy()
    T.edges["z1", "a1"]["source_map"] = Leaky()
    for call in (lambda: gn.forward(T, x), lambda: gn.heat_equation(T, x, steps=3),
                 lambda: gn.equilibrium(T, x), lambda: gn.SheafTrainer(T, mode="exact"),
                 lambda: gn.discord(T, gn.forward(S, x))):
        with pytest.raises(gs.SheafError, match="'z1' -> 'a1'"):
            call()
    T = S.copy()
    T.edges["x", "z1"]["target_map"] = 2 * np.eye(4)  # z1 = W̄x̄ / 2: not the plan's layout
    with pytest.raises(gs.SheafError, match="'x' -> 'z1'.*target_map"):
        gn.forward(T, x)
    T = S.copy()
    T.edges["z1", "a1"]["source_map"] = gs.PiecewiseLinearGate(4, [-1.0, 1.0], [0.0, 1.0, 0.0])
    with pytest.raises(gs.SheafError, match="'z1' -> 'a1'"):  # intercepts need z̄ = [z; 1]
        gn.predict(T, x)
    T = S.copy()
    T.graph["dims"] = [3, 4, 4, 2]
    with pytest.raises(gs.SheafError, match="dims"):
        gn.forward(T, x)


def test_piecewise_linear_gates_round_trip_through_json(tmp_path):
    rng = np.random.default_rng(0)
    for act in ACTS:
        S, dims = build(act, 2, seed=1)
        gs.write_json(S, tmp_path / "s.json")
        T = gs.read_json(tmp_path / "s.json")
        X = rng.standard_normal((dims[0], 5))
        np.testing.assert_array_equal(gn.predict(T, X), gn.predict(S, X))
        for e in S.edges:
            m = S.edges[e]["source_map"]
            if isinstance(m, gs.PiecewiseLinearGate):
                assert T.edges[e]["source_map"] == m


def test_gate_matrix_is_the_generic_view_of_the_gate():
    g = gs.PiecewiseLinearGate(3, [-1.0, 0.5], [[0.1, 1.0, 2.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]],
                               offset=0.2)
    z = np.array([-3.0, 0.2, 4.0])
    zbar = np.append(z, 1.0)
    np.testing.assert_allclose(g.matrix(zbar) @ zbar, g.value(z))
    # continuity at the breakpoints and g(0) = offset
    for t in (-1.0, 0.5):
        np.testing.assert_allclose(g.value(np.full(3, t - 1e-12)), g.value(np.full(3, t + 1e-12)),
                                   atol=1e-10)
    np.testing.assert_allclose(g.value(np.zeros(3)), 0.2)
    # apply/rapply are the matrix and its transpose
    y = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(g.rapply(zbar, y), g.matrix(zbar).T @ y)
    with pytest.raises(gs.SheafError):
        gs.PiecewiseLinearGate(3, [1.0, 0.0], [0.0, 1.0, 0.0])
    with pytest.raises(gs.SheafError):
        gs.PiecewiseLinearGate(3, [0.0], [0.0, 1.0, 2.0])
    assert gs.ReLUGate(4) == gs.PiecewiseLinearGate(4, [0.0], [0.0, 1.0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_from_sklearn_maps_identity_and_refuses_smooth_activations():
    from sklearn.neural_network import MLPRegressor
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)), rng.standard_normal(40)
    for act in ("relu", "identity"):
        mlp = MLPRegressor(hidden_layer_sizes=(5,), activation=act, max_iter=50, random_state=0).fit(X, y)
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(gn.predict(gn.from_sklearn(mlp), X.T)[0], mlp.predict(X),
                                       atol=1e-10)
    for act in ("tanh", "logistic"):
        mlp = MLPRegressor(hidden_layer_sizes=(5,), activation=act, max_iter=5, random_state=0).fit(X, y)
        with pytest.raises(gs.SheafError, match="not piecewise linear"):
            gn.from_sklearn(mlp)


def test_from_torch_maps_every_piecewise_linear_module():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    for gate in (nn.ReLU(), nn.LeakyReLU(0.2), nn.PReLU(6), nn.PReLU(), nn.Hardtanh(),
                 nn.Hardtanh(-0.5, 2.0), nn.ReLU6(), nn.Identity()):
        model = nn.Sequential(nn.Linear(3, 6), gate, nn.Linear(6, 6), type(gate)() if not
                              isinstance(gate, nn.PReLU) else nn.PReLU(6), nn.Linear(6, 2)).double()
        with torch.no_grad():
            for p in model.parameters():
                p.uniform_(-2, 2)
        S = gn.from_torch(model)
        X = 3 * np.random.default_rng(1).standard_normal((3, 50))
        want = model(torch.from_numpy(X.T)).detach().numpy().T
        np.testing.assert_allclose(gn.predict(S, X), want, atol=1e-10)
    with pytest.raises(gs.SheafError, match="Tanh"):
        gn.from_torch(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)))


def test_neural_modules_import_without_a_circle():
    """Every import between graphsheaf.neural modules, at any depth of the code, is acyclic;
    the top-level datasets do not import neural."""
    import ast
    import pathlib

    import networkx as nx
    root = pathlib.Path(gn.__file__).parent
    G = nx.DiGraph()
    for f in root.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                G.add_edge(f.stem, node.module.split(".")[0])
    G.remove_nodes_from(["__init__"])
    assert nx.is_directed_acyclic_graph(G), nx.find_cycle(G)
    datasets = pathlib.Path(gs.__file__).parent / "datasets.py"
    assert "neural" not in datasets.read_text().split('"""', 2)[2]


@pytest.mark.parametrize("activation, strict", [("relu", False), ("relu", True),
                                                ("leaky_relu", False), ("hardtanh", False)])
def test_gate_slope_written_in_place_is_the_slope(activation, strict):
    # the bound sweeps write a gate's slopes into kept buffers: the same values as slope(z),
    # ties at the breakpoints (and at -0.0) following the gate's rule
    from graphsheaf.neural.builder import make_gate
    gate = make_gate(activation, 4, negative_slope=0.1, strict=strict)
    z = np.array([[-2.0, -1.0, 0.0, -0.0], [0.5, 1.0, 2.0, -0.3], [1.0, -1.0, 0.0, 3.0],
                  [0.0, 0.2, -0.0, -5.0]])
    out = np.full_like(z, np.nan)
    assert gate.slope(z, out=out) is out
    np.testing.assert_array_equal(out, gate.slope(z))
