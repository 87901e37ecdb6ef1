import warnings

import numpy as np
import pytest

import graphsheaf as gs
import graphsheaf.neural as gn
from sklearn.exceptions import ConvergenceWarning as ConvergenceWarning_


def regression(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 2))
    return X, X[:, 0] ** 2 - X[:, 1]


def test_scikit_learn_check_estimator_passes():
    from sklearn.utils.estimator_checks import check_estimator
    for est in (gn.SheafRegressor(), gn.SheafClassifier()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = check_estimator(est, on_fail=None)
        failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
        assert not failed, failed
        assert sum(r["status"] == "passed" for r in results) >= 50


def test_parameters_have_the_mlp_names_and_defaults():
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    for ours, theirs in ((gn.SheafRegressor(), MLPRegressor()), (gn.SheafClassifier(), MLPClassifier())):
        mine, ref = ours.get_params(), theirs.get_params()
        for name in ("hidden_layer_sizes", "activation", "solver", "alpha", "batch_size",
                     "learning_rate", "learning_rate_init", "power_t", "max_iter", "shuffle",
                     "random_state", "tol", "verbose", "warm_start", "momentum",
                     "nesterovs_momentum", "early_stopping", "validation_fraction", "beta_1",
                     "beta_2", "epsilon", "n_iter_no_change"):
            assert mine[name] == ref[name], name


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_returns_self_learned_attributes_and_determinism():
    X, y = regression(200)
    a = gn.SheafRegressor((12,), learning_rate_init=0.02, max_iter=50, random_state=3)
    assert a.fit(X, y) is a
    for attr in ("sheaf_", "coefs_", "intercepts_", "loss_", "best_loss_", "loss_curve_", "n_iter_",
                 "t_", "n_features_in_", "n_layers_", "n_outputs_", "out_activation_"):
        assert hasattr(a, attr), attr
    assert len(a.loss_curve_) == a.n_iter_ and a.t_ == 200 * a.n_iter_ and a.predict(X).shape == (200,)
    assert [c.shape for c in a.coefs_] == [(2, 12), (12, 1)] and a.out_activation_ == "identity"
    b = gn.SheafRegressor((12,), learning_rate_init=0.02, max_iter=50, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    first = a.predict(X)
    a.fit(X, y)  # fitting twice starts afresh
    np.testing.assert_array_equal(a.predict(X), first)
    # the estimator is its sheaf: the graph's forward pass is the prediction
    np.testing.assert_allclose(a.predict(X), gn.predict(a.sheaf_, X.T)[0])
    np.testing.assert_allclose(a.coefs_[0].T, gn.to_weights(a.sheaf_)[0][0])


@pytest.mark.parametrize("mode", ["exact", "paper", "backprop-equivalent"])
def test_modes_learn(mode):
    X, y = regression(60, 1)
    kw = dict(paper_steps=200, cochain_dt=0.01) if mode == "paper" else dict(learning_rate_init=0.02)
    reg = gn.SheafRegressor((16,), mode=mode, max_iter=40, random_state=0, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, y)
    assert reg.score(X, y) > 0.5 and reg.loss_curve_[-1] < reg.loss_curve_[0]


def test_exact_mode_tracks_mlp_regressor_on_the_issue_task():
    # issue 14: smooth 2-D regression, 300 samples, (30,), Adam, lr 0.01, max_iter 1500
    from sklearn.neural_network import MLPRegressor
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (400, 2))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2
    kw = dict(hidden_layer_sizes=(30,), learning_rate_init=0.01, max_iter=1500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = gn.SheafRegressor(**kw).fit(X[:300], y[:300])
        ref = MLPRegressor(**kw).fit(X[:300], y[:300])
    mse = lambda m: np.mean((m.predict(X[300:]) - y[300:]) ** 2)
    assert ours.n_iter_ > 50
    assert mse(ours) < 1.5 * mse(ref) + 1e-3
    assert ours.score(X[300:], y[300:]) > ref.score(X[300:], y[300:]) - 0.02


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_alpha_is_an_l2_penalty_in_every_mode():
    X, y = regression(100, 4)
    for mode, kw in (("exact", {}), ("backprop-equivalent", {}), ("paper", dict(paper_steps=100))):
        norms = []
        for alpha in (0.0, 5.0):
            reg = gn.SheafRegressor((10,), mode=mode, alpha=alpha, max_iter=30, random_state=0,
                                    learning_rate_init=0.01, **kw).fit(X, y)
            norms.append(sum(float(np.sum(c * c)) for c in reg.coefs_))
        assert norms[1] < norms[0], mode


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_classifier_binary_multiclass_and_multilabel():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 2))
    y = np.array(["a", "b", "c"])[(np.arctan2(X[:, 1], X[:, 0]) // (2 * np.pi / 3) % 3).astype(int)]
    clf = gn.SheafClassifier((16,), learning_rate_init=0.03, max_iter=200, random_state=0).fit(X, y)
    assert clf.classes_.tolist() == ["a", "b", "c"] and clf.score(X, y) > 0.85
    P = clf.predict_proba(X)
    assert P.shape == (300, 3) and np.allclose(P.sum(axis=1), 1) and clf.out_activation_ == "softmax"
    yb = (X[:, 0] > 0).astype(int)
    clf2 = gn.SheafClassifier((8,), learning_rate_init=0.05, max_iter=100, random_state=0).fit(X, yb)
    assert clf2.predict_proba(X).shape == (300, 2) and clf2.score(X, yb) > 0.9
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0, X.sum(1) > 0], axis=1).astype(int)
    ml = gn.SheafClassifier((16,), learning_rate_init=0.03, max_iter=200, random_state=0).fit(X, Y)
    assert ml.predict(X).shape == (300, 3) and ml.predict_proba(X).shape == (300, 3)
    assert ml.score(X, Y) > 0.8 and ml.out_activation_ == "logistic"


def test_partial_fit_warm_start_and_early_stopping():
    X, y = regression(300, 5)
    reg = gn.SheafRegressor((12,), learning_rate_init=0.02, random_state=0)
    for _ in range(5):
        reg.partial_fit(X, y)
    assert reg.n_iter_ == 5 and len(reg.loss_curve_) == 5 and reg.loss_curve_[-1] < reg.loss_curve_[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm = gn.SheafRegressor((12,), learning_rate_init=0.02, max_iter=5, random_state=0,
                                 warm_start=True).fit(X, y)
        loss = warm.loss_curve_[-1]
        warm.fit(X, y)
    assert len(warm.loss_curve_) == 10 and warm.loss_curve_[5] < 1.5 * loss
    es = gn.SheafRegressor((12,), learning_rate_init=0.02, max_iter=500, random_state=0,
                           early_stopping=True, n_iter_no_change=5).fit(X, y)
    assert es.n_iter_ < 500 and len(es.validation_scores_) == es.n_iter_
    assert es.best_validation_score_ == max(es.validation_scores_)
    clf = gn.SheafClassifier((8,), random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y > 0)
    clf.partial_fit(X, y > 0, classes=[False, True])
    assert clf.classes_.tolist() == [False, True]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sgd_schedules():
    X, y = regression(100, 6)
    for schedule in ("constant", "invscaling", "adaptive"):
        reg = gn.SheafRegressor((8,), solver="sgd", learning_rate=schedule, learning_rate_init=0.05,
                                max_iter=60, random_state=0).fit(X, y)
        assert reg.loss_curve_[-1] < reg.loss_curve_[0], schedule
    inv = gn.SheafRegressor((8,), solver="sgd", learning_rate="invscaling", learning_rate_init=0.05,
                            max_iter=3, random_state=0).fit(X, y)
    assert inv._trainer_.optimizer.lr == pytest.approx(0.05 / (300 + 1) ** 0.5)


def test_errors_are_scikit_learns():
    from sklearn.exceptions import NotFittedError
    X, y = regression()
    with pytest.raises(NotFittedError):
        gn.SheafRegressor().predict(X)
    with pytest.warns(ConvergenceWarning_, match="maximum iterations"):
        gn.SheafRegressor((8,), max_iter=3, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="learning_rate"):
        gn.SheafRegressor(learning_rate=0.1).fit(X, y)
    with pytest.raises(ValueError, match="activation"):
        gn.SheafRegressor(activation="tanh").fit(X, y)
    with pytest.raises(ValueError, match="positive ints"):
        gn.SheafRegressor((0,)).fit(X, y)
    with pytest.raises(ValueError, match="one class"):
        gn.SheafClassifier().fit(X, np.zeros(80))


def test_works_with_scikit_learn_clone_pipeline_and_cross_validation():
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = regression(90, 2)
    reg = gn.SheafRegressor((8,), learning_rate_init=0.02, max_iter=30, random_state=0)
    assert clone(reg).get_params() == reg.get_params()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = cross_val_score(make_pipeline(StandardScaler(), reg), X, y, cv=3)
    assert scores.shape == (3,)


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


def test_graphsheaf_neural_does_not_need_scikit_learn():
    import subprocess
    import sys
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import graphsheaf.neural as gn\n"
            "gn.predict(gn.neural_sheaf(*gn.init_weights([2, 3, 1], rng=0)), [1.0, 2.0])\n"
            "try:\n    gn.SheafRegressor\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install graphsheaf[sklearn]" in out.stdout
