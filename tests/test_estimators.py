import warnings

import numpy as np
import pytest

import graphsheaf as gs
import graphsheaf.neural as gn


def regression(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 2))
    return X, X[:, 0] ** 2 - X[:, 1]


def test_constructor_only_stores_and_params_round_trip():
    reg = gn.SheafRegressor((8, 4), mode="paper", max_iter=3, random_state=1)
    assert not hasattr(reg, "sheaf_")
    params = reg.get_params()
    assert params["hidden_layer_sizes"] == (8, 4) and params["mode"] == "paper"
    clone = gn.SheafRegressor(**params)
    assert clone.get_params() == params
    assert reg.set_params(max_iter=5) is reg and reg.max_iter == 5
    with pytest.raises(ValueError, match="invalid parameter 'bogus'"):
        reg.set_params(bogus=1)


@pytest.mark.filterwarnings("ignore::graphsheaf.exceptions.ConvergenceWarning")
def test_fit_returns_self_learned_attributes_and_determinism():
    X, y = regression()
    a = gn.SheafRegressor((12,), learning_rate=0.02, max_iter=50, random_state=3)
    assert a.fit(X, y) is a
    for attr in ("sheaf_", "weights_", "biases_", "loss_curve_", "n_iter_", "n_features_in_"):
        assert hasattr(a, attr)
    assert len(a.loss_curve_) == a.n_iter_ and a.predict(X).shape == (80,)
    b = gn.SheafRegressor((12,), learning_rate=0.02, max_iter=50, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    first = a.predict(X)
    a.fit(X, y)  # fitting twice starts afresh
    np.testing.assert_array_equal(a.predict(X), first)
    np.testing.assert_allclose(a.predict(X), gn.predict(a.sheaf_, X.T)[0])


@pytest.mark.parametrize("mode", ["exact", "paper", "backprop-equivalent"])
def test_modes_learn(mode):
    X, y = regression(60, 1)
    kw = dict(steps_per_epoch=200, dt=0.01) if mode == "paper" else dict(learning_rate=0.02)
    reg = gn.SheafRegressor((16,), mode=mode, max_iter=40, random_state=0, n_iter_no_change=None,
                            **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gs.ConvergenceWarning)
        reg.fit(X, y)
    assert reg.score(X, y) > 0.5 and reg.loss_curve_[-1] < reg.history_.train_loss[0]


@pytest.mark.filterwarnings("ignore::graphsheaf.exceptions.ConvergenceWarning")
def test_classifier_binary_and_multiclass_with_string_labels():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 2))
    y = np.array(["a", "b", "c"])[(np.arctan2(X[:, 1], X[:, 0]) // (2 * np.pi / 3) % 3).astype(int)]
    clf = gn.SheafClassifier((16,), learning_rate=0.03, max_iter=200, random_state=0).fit(X, y)
    assert clf.classes_.tolist() == ["a", "b", "c"] and clf.score(X, y) > 0.85
    P = clf.predict_proba(X)
    assert P.shape == (150, 3) and np.allclose(P.sum(axis=1), 1)
    yb = (X[:, 0] > 0).astype(int)
    clf2 = gn.SheafClassifier((8,), learning_rate=0.05, max_iter=100, random_state=0).fit(X, yb)
    assert clf2.predict_proba(X).shape == (150, 2) and clf2.score(X, yb) > 0.9


def test_convergence_warning_and_callback_stop():
    X, y = regression()
    with pytest.warns(gs.ConvergenceWarning, match="max_iter=3"):
        gn.SheafRegressor((8,), learning_rate=0.001, max_iter=3, random_state=0).fit(X, y)
    seen = []
    reg = gn.SheafRegressor((8,), max_iter=100, random_state=0,
                            callback=lambda epoch, logs: seen.append(logs["train_loss"]) or epoch == 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", gs.ConvergenceWarning)
        reg.fit(X, y)
    assert reg.n_iter_ == 4 and len(seen) == 4


def test_input_validation():
    X, y = regression()
    reg = gn.SheafRegressor((4,), max_iter=2)
    with pytest.raises(gs.SheafError, match="not fitted"):
        reg.predict(X)
    with pytest.raises(gs.SheafError, match="2-D"):
        reg.fit(X[:, 0], y)
    with pytest.raises(gs.SheafError, match="NaN"):
        reg.fit(np.where(X > 0.9, np.nan, X), y)
    with pytest.raises(gs.SheafError, match="y has shape"):
        reg.fit(X, y[:5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gs.ConvergenceWarning)
        reg.fit(X, y)
    with pytest.raises(gs.SheafError, match="3 features"):
        reg.predict(np.ones((2, 3)))
    clf = gn.SheafClassifier((4,), max_iter=2)
    with pytest.raises(gs.SheafError, match="two classes"):
        clf.fit(X, np.zeros(80))
    with pytest.raises(gs.SheafError, match="not class labels"):
        clf.fit(X, np.where(y > 0, 1.0, np.nan))
    with pytest.raises(gs.SheafError, match="positive ints"):
        gn.SheafRegressor((0,)).fit(X, y)


def test_works_with_scikit_learn_clone_pipeline_and_cross_validation():
    sk = pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = regression(90, 2)
    reg = gn.SheafRegressor((8,), learning_rate=0.02, max_iter=30, random_state=0)
    assert clone(reg).get_params() == reg.get_params()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = cross_val_score(make_pipeline(StandardScaler(), reg), X, y, cv=3)
    assert scores.shape == (3,) and sk is not None


def test_datasets_shapes_and_seeds():
    for make in (gs.datasets.paraboloid, gs.datasets.saddle, gs.datasets.circles, gs.datasets.blobs):
        d = make(rng=1)
        assert d.X_train.shape == (2, 300) and d.X_test.shape == (2, 100)
        assert np.array_equal(make(rng=1).X_train, d.X_train)
    c = gs.datasets.circles(rng=0)
    r = np.hypot(*c.X_train)
    assert r[c.labels_train == 0].mean() < 1 < 1.5 < r[c.labels_train == 1].mean()
    b = gs.datasets.blobs(rng=0)
    assert b.Y_train.shape == (4, 300) and set(np.bincount(b.labels_train)) <= set(range(60, 90))


def test_paper_training_curve_with_authors_streams():  # spec §5.4, §7 D19 (first 2k steps)
    pytest.importorskip("torch")
    d = gs.datasets.paraboloid(rng=gn.TorchSeed(42))
    S = gn.neural_sheaf(*gn.init_weights([2, 30, 1], rng=gn.TorchSeed(0)))
    h = gn.SheafTrainer(S, mode="paper", dt=0.005).train(
        d.X_train, d.Y_train, d.X_test, d.Y_test, epochs=2, steps_per_epoch=1000,
        rng=gn.TorchSeed(42))
    np.testing.assert_allclose(h.train_loss, [12.0996, 1.8925, 1.3962], atol=6e-5)
    np.testing.assert_allclose(h.test_loss, [10.8848, 1.7274, 1.3305], atol=6e-5)
