"""Residual, skip-connection and convolutional networks as sheaves (DAG sheaves): the
forward pass equals the module's output and the generic harmonic extension, the heat
equation converges to it, local gradients tend to autograd's, and the construction is
unit triangular (docs/architectures.md)."""
import numpy as np
import pytest

import graphsheaf as gs
import graphsheaf.neural as gn

torch = pytest.importorskip("torch")
nn = torch.nn


class ResMLP(nn.Module):
    def __init__(self, d=5, h=8, out=3):
        super().__init__()
        self.inp = nn.Linear(d, h)
        self.b1 = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h))
        self.b2 = nn.Sequential(nn.Linear(h, h), nn.LeakyReLU(0.1), nn.Linear(h, h, bias=False))
        self.proj = nn.Linear(d, h)
        self.head = nn.Linear(2 * h, out)
        self.act = nn.ReLU()

    def forward(self, x):
        h = self.act(self.inp(x))
        h = self.act(h + self.b1(h))                 # identity shortcut
        g = self.act(self.b2(h) + self.proj(x))      # projected shortcut from the input
        return self.head(torch.cat([h, g], dim=1))   # a dense (concatenating) skip


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.c2 = nn.Conv2d(3, 4, 3, stride=1, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(2)
        self.fc = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.c1(x)))
        x = self.pool(nn.functional.relu(self.c2(x)))
        x = self.avg(x)
        return self.fc(torch.flatten(x, 1))


def _init(module, seed):
    torch.manual_seed(seed)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.5)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return module.double().eval()


def cases():
    for seed in range(3):
        yield "resmlp", _init(ResMLP(), seed), torch.randn(6, 5, dtype=torch.float64)
        yield "cnn", _init(SmallCNN(), seed), torch.randn(6, 1, 8, 8, dtype=torch.float64)


def _as_columns(x):
    return x.reshape(x.shape[0], -1).numpy().T


@pytest.mark.parametrize("name, module, x", list(cases()))
def test_forward_equals_module_and_the_harmonic_extension(name, module, x):
    S = gn.from_torch(module, x)
    assert gn.is_dag_sheaf(S)
    X = _as_columns(x)
    ref = module(x).detach().numpy().T
    assert np.abs(gn.predict(S, X) - ref).max() < 1e-10
    f = gn.forward(S, X[:, 0])
    ext = gs.harmonic_extension(S, gn.forward_boundary(S, X[:, 0]), state=f)
    assert max(np.abs(ext[v] - f[v]).max() for v in S) < 1e-9
    # Lemma 3.2 carries over: δ_Ω is square and unit lower triangular in topological order
    r = gn.check_unitriangular(S, X[:, 0])
    assert r.square and r.unit_lower_triangular and r.det == 1.0


@pytest.mark.parametrize("name, module, x", list(cases())[:2])
def test_heat_equation_converges_to_the_forward_pass(name, module, x):
    for p in module.parameters():  # halved weights: λ_min ≈ 0.02-0.04, so a few thousand steps
        p.data *= 0.5
    S = gn.from_torch(module, x)
    X = _as_columns(x)[:, 0]
    lam_max = float(gn.spectral_diagnostics(S, X).lambda_max[0])
    h = gn.heat_equation(S, X, dt=1.0 / lam_max, tol=1e-8, rng=0)
    f = gn.forward(S, X)
    assert h.converged
    assert max(np.abs(h.state[v] - f[v]).max() for v in S) < 1e-7
    assert h.energy[-1] < 1e-12 * h.energy[0]


@pytest.mark.parametrize("name, module, x", list(cases()))
def test_local_gradients_tend_to_autograd(name, module, x):
    S = gn.from_torch(module, x)
    X = _as_columns(x)
    Y = np.random.default_rng(0).standard_normal((3, X.shape[1]))
    out = module(x)
    loss = 0.5 * ((out - torch.tensor(Y.T)) ** 2).sum()
    module.zero_grad()
    loss.backward()
    ref = {k: p.grad.numpy() for k, p in module.named_parameters() if p.grad is not None}
    grads, info = gn.local_gradients(S, X, Y, gamma=1e-9, by_name=True)
    assert set(grads) == set(ref)  # keyed like named_parameters(), shared conv weights included
    for k in ref:
        scale = max(np.abs(ref[k]).max(), 1e-12)
        assert grads[k].shape == ref[k].shape
        assert np.abs(grads[k] - ref[k]).max() <= 1e-5 * scale, k
    bp = gn.backprop_gradients(S, X, Y, by_name=True)
    assert all(np.allclose(bp[k], ref[k], rtol=1e-9, atol=1e-12) for k in ref)
    # the error shrinks linearly in γ
    g3, _ = gn.local_gradients(S, X, Y, gamma=1e-3, by_name=True)
    g5, _ = gn.local_gradients(S, X, Y, gamma=1e-5, by_name=True)
    err = lambda g: max(np.abs(g[k] - ref[k]).max() for k in ref)
    assert err(g5) < 0.05 * err(g3)


@pytest.mark.parametrize("name, module, x", list(cases())[:2])
def test_to_torch_round_trip(name, module, x):
    S = gn.from_torch(module, x)
    back = gn.to_torch(S)
    assert torch.allclose(back(x), module(x), atol=1e-10)


def test_chain_sheaves_round_trip_through_torch_and_names():
    net = nn.Sequential(nn.Linear(3, 5), nn.LeakyReLU(0.2), nn.Linear(5, 4), nn.Hardtanh(-0.5, 2.0),
                        nn.Linear(4, 2)).double()
    S = gn.from_torch(net)
    x = torch.randn(7, 3, dtype=torch.float64)
    assert torch.allclose(gn.to_torch(S)(x), net(x), atol=1e-12)
    X, Y = x.numpy().T, np.ones((2, 7))
    g, _ = gn.local_gradients(S, X, Y, gamma=1e-8, by_name=True)
    assert set(g) == {k for k, _ in net.named_parameters()}


def test_unsupported_operations_are_named():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return torch.tanh(self.fc(x))

    with pytest.raises(gs.SheafError, match="tanh at node 'tanh'"):
        gn.from_torch(Odd().double(), torch.zeros(1, 3))
    bn = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 1))
    with pytest.raises(gs.SheafError, match="eval"):
        gn.from_torch(bn, torch.zeros(2, 3))


def test_edited_conv_map_is_refused_naming_the_edge():
    module = _init(SmallCNN(), 0)
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    S = gn.from_torch(module, x)
    e = next(e for e in S.edges if S.edges[e]["kind"] == "conv2d")
    A = S.edges[e]["source_map"].copy()
    A.data[0] += 1.0  # one position no longer shares the kernel
    S.edges[e]["source_map"] = A
    with pytest.raises(gs.SheafError, match=f"{e[0]!r} -> {e[1]!r}.*shares"):
        gn.local_gradients(S, _as_columns(x), np.zeros((3, 2)), by_name=True)


def test_builder_from_data_and_pins_discord_spectra():
    rng = np.random.default_rng(0)
    S = gn.dag_sheaf([
        {"name": "h", "op": "linear", "input": "x", "weight": rng.normal(size=(6, 3)), "bias": rng.normal(size=6)},
        {"name": "a", "op": "relu", "input": "h"},
        {"name": "r", "op": "linear", "input": "a", "weight": rng.normal(size=(3, 6)) * 0.5, "bias": None},
        {"name": "s", "op": "add", "inputs": ["r", "x"]},
        {"name": "y", "op": "linear", "input": "s", "weight": rng.normal(size=(1, 3)), "bias": rng.normal(size=1)},
    ], input_shape=(3,))
    x = rng.normal(size=3)
    f = gn.forward(S, x)
    assert gn.discord(S, f).total < 1e-20
    eq = gn.equilibrium(S, x, pins={"y": {0: float(f["y"][0]) + 1.0}})
    assert eq.state["y"][0] == pytest.approx(f["y"][0] + 1.0)
    assert eq.energy > 0 and not eq.fell_back
    # the equilibrium is a critical point: the heat flow from it does not move
    h = gn.heat_equation(S, x, pins={"y": {0: float(f["y"][0]) + 1.0}}, state0=eq.state, tol=1e-9, rng=0)
    assert max(np.abs(h.state[v] - eq.state[v]).max() for v in S) < 1e-6
    soft = gn.equilibrium(S, x, soft_pins={"y": 0.0}, stiffness=10.0)
    assert abs(soft.state["y"][0]) < abs(f["y"][0])
    d = gn.discord(S, eq.state)
    assert set(d.by_kind) <= {"linear", "relu", "concat", "add"} and d.total > 0
    spec = gn.spectral_diagnostics(S, rng.normal(size=(3, 4)))
    assert spec.lambda_min.shape == (4,) and np.all(spec.lambda_min > 0)
    assert np.allclose(sum(spec.fiedler_energy.values()), 1.0)


def test_training_modes_reduce_the_loss():
    module = _init(ResMLP(d=4, h=6, out=2), 1)
    for p in module.parameters():
        p.data *= 0.3
    x = torch.randn(40, 4, dtype=torch.float64)
    X = x.numpy().T
    Y = np.stack([np.sin(X[0]), X[1] * X[2]])
    for mode in ("exact", "backprop-equivalent", "paper"):
        S = gn.from_torch(module, x)
        kw = dict(epochs=15, batch_size=10) if mode != "paper" else dict(epochs=4, steps_per_epoch=1000)
        h = gn.SheafTrainer(S, mode=mode, optimizer="adam", learning_rate=0.01, dt=0.05).train(X, Y, rng=0, **kw)
        assert h.train_loss[-1] < 0.7 * h.train_loss[0], mode
        # trained parameters live on the graph: the forward pass uses them
        assert np.allclose(gn.predict(S, X), gn.to_torch(S)(x).detach().numpy().T)


def test_dag_diagrams_mark_shared_kernels_and_residual_chords():
    import pydot
    S = gn.from_torch(_init(SmallCNN(), 0), torch.zeros(1, 1, 8, 8, dtype=torch.float64))
    dot = gs.to_pydot(S)
    assert dot.get("rankdir") == "TB"
    labels = [e.get("label") or "" for e in pydot.graph_from_dot_data(dot.to_string())[0].get_edges()]
    assert sum("shared kernel 3×1×3×3" in s for s in labels) == 1
    assert any("max-select" in s for s in labels)
    R = gn.from_torch(_init(ResMLP(), 0), torch.zeros(1, 5, dtype=torch.float64))
    edges = pydot.graph_from_dot_data(gs.to_pydot(R).to_string())[0].get_edges()
    adds = [e for e in edges if (e.get("label") or "").startswith('"add')]
    assert len(adds) == 2 and all(e.get("style") == "bold" for e in adds)
    # every residual add gathers its inputs: one chord per shortcut into a concatenation vertex
    assert sum(1 for e in R.edges if R.edges[e]["kind"] == "concat") == 2 * 2 + 2


class Net1d(nn.Module):
    """Conv1d, batch norm 1d, average and max pooling 1d, and the other gates."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(2, 3, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm1d(3)
        self.avg = nn.AvgPool1d(2)
        self.mx = nn.MaxPool1d(2, stride=1)
        self.fc = nn.Linear(3 * 3, 4)
        self.out = nn.Linear(4, 2)
        self.g1, self.g2, self.g3 = nn.ReLU6(), nn.Hardtanh(-0.5, 0.8), nn.Identity()

    def forward(self, x):
        x = self.mx(self.avg(self.g1(self.bn(self.c(x)))))
        return self.out(self.g3(self.g2(self.fc(torch.flatten(x, 1)))))


def test_one_dimensional_operations_and_every_gate():
    module = _init(Net1d(), 3)
    x = torch.randn(5, 2, 16, dtype=torch.float64) * 3
    S = gn.from_torch(module, x)
    kinds = {S.edges[e]["kind"] for e in S.edges}
    assert {"conv1d", "batchnorm", "avgpool1d", "maxpool1d", "relu6", "hardtanh"} <= kinds  # Identity: a rename
    X = _as_columns(x)
    assert np.abs(gn.predict(S, X) - module(x).detach().numpy().T).max() < 1e-10
    Y = np.zeros((2, 5))
    loss = 0.5 * (module(x) ** 2).sum()
    module.zero_grad()
    loss.backward()
    g, _ = gn.local_gradients(S, X, Y, gamma=1e-9, by_name=True)
    for k, p in module.named_parameters():
        assert np.allclose(g[k], p.grad.numpy(), rtol=1e-5, atol=1e-8), k
    assert torch.allclose(gn.to_torch(S)(x), module(x), atol=1e-10)


def test_dag_sheaves_round_trip_through_json(tmp_path):
    module = _init(SmallCNN(), 1)
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    S = gn.from_torch(module, x)
    gs.write_json(S, tmp_path / "cnn.json")
    T = gs.read_json(tmp_path / "cnn.json")
    assert np.array_equal(gn.predict(T, _as_columns(x)), gn.predict(S, _as_columns(x)))
