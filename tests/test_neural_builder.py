import numpy as np
import pytest

import graphsheaf as gs
import graphsheaf.neural as gn

from .paper_fixtures import FIG6_W


def test_layout_kinds_layers_and_graph_attributes():
    W, b = gn.init_weights([3, 5, 4, 2], rng=0)
    S = gn.neural_sheaf(W, b, output="softmax")
    gs.validate_sheaf(S)
    assert list(S) == ["x", "z1", "a1", "z2", "a2", "z3", "y"]
    assert [S.nodes[v]["kind"] for v in S] == ["input", "preactivation", "activation",
                                               "preactivation", "activation", "preactivation",
                                               "output"]
    assert [S.nodes[v]["layer"] for v in S] == [0, 1, 1, 2, 2, 3, 3]
    assert [S.nodes[v]["dim"] for v in S] == [3 + 5, 5, 5 + 4, 4, 4 + 2, 2, 2]
    assert [(S.edges[e]["kind"], S.edges[e]["layer"]) for e in S.edges] == [
        ("affine", 1), ("relu", 1), ("affine", 2), ("relu", 2), ("affine", 3), ("output", 3)]
    assert S.graph["input"] == "x" and S.graph["output"] == "y"
    assert S.graph["constant"] == {"x": [3, 4, 5, 6, 7], "a1": [5, 6, 7, 8], "a2": [4, 5]}
    assert isinstance(S.edges["z1", "a1"]["source_map"], gs.ReLUGate)


def test_restriction_maps_are_the_papers():
    W = [np.array([[1., -1.], [2., 0.], [-1., 1.]]), np.array([[1., -2., 3.]])]
    b = [np.array([0., -1., .5]), np.array([.5])]
    S = gn.neural_sheaf(W, b)
    np.testing.assert_array_equal(S.edges["x", "z1"]["source_map"], np.hstack([W[0], np.diag(b[0])]))
    np.testing.assert_array_equal(S.edges["x", "z1"]["target_map"], np.eye(3))
    np.testing.assert_array_equal(S.edges["z1", "a1"]["target_map"], np.hstack([np.eye(3), np.zeros((3, 1))]))
    np.testing.assert_array_equal(S.edges["a1", "z2"]["source_map"], [[1., -2., 3., .5]])
    single = gn.neural_sheaf(W, b, extension="single")
    np.testing.assert_array_equal(single.edges["x", "z1"]["source_map"], np.hstack([W[0], b[0][:, None]]))
    assert single.nodes["x"]["dim"] == 3 and single.graph["constant"]["x"] == [2]


@pytest.mark.parametrize("extension", ["block", "single"])
def test_to_weights_round_trip(extension):
    W, b = gn.init_weights([4, 6, 3], rng=1)
    b = [np.arange(6.0), np.arange(3.0) - 1]
    W2, b2 = gn.to_weights(gn.neural_sheaf(W, b, extension=extension))
    for u, v in zip(W + b, W2 + b2):
        np.testing.assert_array_equal(u, v)


def test_identity_output_vertex_is_optional():
    W, b = gn.init_weights([2, 3, 1], rng=0)
    assert "y" not in gn.neural_sheaf(W, b)
    S = gn.neural_sheaf(W, b, output_vertex=True)
    assert S.graph["output"] == "y" and S.edges["z2", "y"]["kind"] == "output"
    x = np.array([0.3, -0.2])
    np.testing.assert_allclose(gn.forward(S, x)["y"], gn.predict(S, x))


def test_init_weights_is_he_normal_with_zero_bias():
    W, b = gn.init_weights([400, 300, 1], rng=0)
    assert abs(W[0].std() / np.sqrt(2 / 400) - 1) < 0.02
    assert all(np.all(v == 0) for v in b)


def test_torch_seed_reproduces_fixture_weights():
    pytest.importorskip("torch")
    W, _ = gn.init_weights([2, 4, 1], rng=gn.TorchSeed(7))
    for u, v in zip(W, FIG6_W):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("bad, words", [
    (([np.ones((3, 2)), np.ones((1, 4))], None), "layer 2: weight has shape"),
    (([np.ones(3)], None), "2-D"),
    (([np.ones((3, 2))], [np.ones(2)]), "layer 1: bias has shape"),
    (([np.full((3, 2), np.nan)], None), "NaN"),
    (([], None), "at least one"),
])
def test_builder_errors(bad, words):
    with pytest.raises(gs.SheafError, match=words):
        gn.neural_sheaf(*bad)
    with pytest.raises(gs.SheafError, match="output"):
        gn.neural_sheaf([np.ones((1, 1))], output="tanh")


def test_from_sklearn():
    sk = pytest.importorskip("sklearn.neural_network")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    for est, out in ((sk.MLPRegressor(hidden_layer_sizes=(5, 4), max_iter=50), "identity"),
                     (sk.MLPClassifier(hidden_layer_sizes=(6,), max_iter=50), "sigmoid")):
        y = X[:, 0] > 0 if out == "sigmoid" else X @ [1.0, -2.0, 0.5]
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        S = gn.from_sklearn(est)
        assert S.graph["output_activation"] == out
        if out == "identity":
            np.testing.assert_allclose(gn.predict(S, X.T)[0], est.predict(X), atol=1e-10)
        else:
            np.testing.assert_allclose(gn.predict(S, X.T)[0], est.predict_proba(X)[:, 1], atol=1e-10)


def test_from_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2),
                              torch.nn.Softmax(dim=0)).double()
    S = gn.from_torch(net)
    x = np.array([0.2, -1.0, 0.7])
    np.testing.assert_allclose(gn.predict(S, x), net(torch.tensor(x)).detach().numpy(), atol=1e-12)
    with pytest.raises(gs.SheafError, match="Tanh"):
        gn.from_torch(torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh()))
