"""scikit-learn-style estimators on neural sheaves (scikit-learn itself is optional).

Conventions follow scikit-learn: the constructor only stores its arguments, ``fit``
returns ``self``, learned attributes end in ``_``, inputs are (n_samples, n_features)
rows. ``get_params``/``set_params`` make ``sklearn.base.clone``, pipelines and
cross-validation work when scikit-learn is installed.
"""

import inspect
import warnings

import numpy as np

from ..exceptions import ConvergenceWarning, SheafError
from .builder import init_weights, neural_sheaf, to_weights
from .training import SheafTrainer

__all__ = ["SheafRegressor", "SheafClassifier"]


class _SheafEstimator:
    _output = "identity"

    def __init__(self, hidden_layer_sizes=(100,), *, mode="exact", loss=None, optimizer="adam",
                 learning_rate=None, max_iter=200, batch_size=None, random_state=None,
                 progress=None, callback=None, gamma=None, alpha=1.0, beta=None, dt=0.005,
                 steps_per_epoch=None, tol=1e-4, n_iter_no_change=10):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.mode = mode
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.random_state = random_state
        self.progress = progress
        self.callback = callback
        self.gamma = gamma
        self.alpha = alpha
        self.beta = beta
        self.dt = dt
        self.steps_per_epoch = steps_per_epoch
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change

    # -- scikit-learn protocol ----------------------------------------------------
    @classmethod
    def _param_names(cls):
        sig = inspect.signature(_SheafEstimator.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; "
                                 f"valid: {sorted(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self):
        changed = {k: v for k, v in self.get_params().items()
                   if v is not inspect.signature(_SheafEstimator.__init__).parameters[k].default}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def __sklearn_tags__(self):  # scikit-learn >= 1.6 asks for tags
        from sklearn.utils import Tags, TargetTags
        estimator_type = "regressor" if isinstance(self, SheafRegressor) else "classifier"
        return Tags(estimator_type=estimator_type, target_tags=TargetTags(required=True))

    # -- input checks ----------------------------------------------------------
    def _check_X(self, X, fitting=False):
        X = np.asarray(X, dtype=float)
        if X.ndim != 2:
            raise SheafError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        if X.shape[0] == 0:
            raise SheafError("X has no samples")
        if not np.all(np.isfinite(X)):
            raise SheafError("X contains NaN or inf")
        if not fitting:
            if not hasattr(self, "sheaf_"):
                raise SheafError(f"this {type(self).__name__} is not fitted yet: call fit first")
            if X.shape[1] != self.n_features_in_:
                raise SheafError(f"X has {X.shape[1]} features, but the estimator was fitted "
                                 f"with {self.n_features_in_}")
        return X

    def _hidden(self):
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if np.isscalar(sizes) else tuple(sizes)
        if not all(int(s) == s and s >= 1 for s in sizes):
            raise SheafError(f"hidden_layer_sizes must be positive ints, got {self.hidden_layer_sizes}")
        return [int(s) for s in sizes]

    def _fit_targets(self, X, Y):
        """Train on X (n, d) rows and targets Y (n_out, n) columns."""
        dims = [X.shape[1]] + self._hidden() + [Y.shape[0]]
        W, b = init_weights(dims, rng=self.random_state)
        S = neural_sheaf(W, b, output=self._output)
        trainer = SheafTrainer(S, mode=self.mode, loss=self.loss, optimizer=self.optimizer,
                               learning_rate=self.learning_rate, gamma=self.gamma,
                               alpha=self.alpha, beta=self.beta, dt=self.dt)
        best = [np.inf, 0]
        user_cb = self.callback

        def callback(epoch, logs):
            if user_cb is not None and user_cb(epoch, logs):
                return True
            loss = logs["train_loss"]
            if loss < best[0] - self.tol:
                best[0], best[1] = loss, 0
            else:
                best[1] += 1
            return self.n_iter_no_change is not None and best[1] >= self.n_iter_no_change

        hist = trainer.train(X.T, Y, epochs=int(self.max_iter), batch_size=self.batch_size,
                             steps_per_epoch=self.steps_per_epoch, rng=self.random_state,
                             callback=callback, progress=self.progress,
                             init="random" if self.mode == "paper" else "forward")
        self.sheaf_ = S
        W, b = to_weights(S)
        self.weights_ = W
        self.biases_ = b
        self.loss_curve_ = list(hist.train_loss[1:])
        self.history_ = hist
        self.n_iter_ = len(hist.epochs) - 1
        self.n_features_in_ = X.shape[1]
        if not hist.stopped_early and self.n_iter_ >= self.max_iter and best[1] == 0 \
                and len(hist.train_loss) > 1 and hist.train_loss[-2] - hist.train_loss[-1] > self.tol:
            warnings.warn(f"{type(self).__name__}: max_iter={self.max_iter} reached while the loss "
                          "was still improving; training has not converged", ConvergenceWarning,
                          stacklevel=3)
        return self

    def _decision(self, X):
        X = self._check_X(X)
        from .kernels import forward_sweep
        from .plan import NetworkPlan
        return forward_sweep(NetworkPlan(self.sheaf_), X.T)[0][-1]


class SheafRegressor(_SheafEstimator):
    """Multi-layer ReLU regressor trained as a neural sheaf.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
    mode : {"exact", "paper", "backprop-equivalent"}
        See :class:`SheafTrainer`. "paper" integrates the authors' joint flow with
        ``dt``/``alpha``/``beta`` for ``steps_per_epoch`` steps per iteration.
    loss : str or Potential, default L2
    optimizer : {"adam", "sgd", "momentum"}
    learning_rate : float, optional
    max_iter : int
        Epochs (passes over the data).
    batch_size : int, optional
        Mini-batch size; default full batch.
    random_state : int, optional
    progress : bool, optional
        tqdm bar (off when not in a terminal).
    callback : callable, optional
        ``callback(epoch, logs) -> bool``; True stops training.
    gamma : float, optional
        Output-edge stiffness (default 0.001 in exact mode, 1 in paper mode; see
        ``docs/training.md`` for the trade-off).
    alpha, beta, dt, steps_per_epoch
        Paper mode's cochain rate, weight rate, Euler step and steps per iteration.
    tol, n_iter_no_change
        Training stops once the loss has not improved by ``tol`` for ``n_iter_no_change``
        epochs; reaching ``max_iter`` while it still improves gives a ``ConvergenceWarning``.

    Attributes
    ----------
    sheaf_, weights_, biases_, loss_curve_, n_iter_, history_, n_features_in_

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (80, 2)); y = X[:, 0] - 2 * X[:, 1]
    >>> reg = gn.SheafRegressor((16,), learning_rate=0.02, max_iter=200, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.95
    True
    """

    def fit(self, X, y):
        X = self._check_X(X, fitting=True)
        y = np.asarray(y, dtype=float)
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise SheafError(f"y has shape {y.shape}; expected ({X.shape[0]},) or ({X.shape[0]}, n_outputs)")
        if not np.all(np.isfinite(y)):
            raise SheafError("y contains NaN or inf")
        self._y_1d = y.ndim == 1
        Y = y[None] if y.ndim == 1 else y.T
        return self._fit_targets(X, Y)

    def predict(self, X):
        z = self._decision(X)
        return z[0] if self._y_1d else z.T

    def score(self, X, y):
        """Coefficient of determination R² (as scikit-learn's regressors)."""
        y = np.asarray(y, dtype=float)
        p = self.predict(X)
        ss_res = np.sum((y - p) ** 2)
        ss_tot = np.sum((y - y.mean(axis=0)) ** 2)
        return float(1 - ss_res / ss_tot) if ss_tot > 0 else 0.0


class SheafClassifier(_SheafEstimator):
    """ReLU classifier trained as a neural sheaf: sigmoid + BCE for two classes, softmax
    + cross-entropy for more. Same parameters as :class:`SheafRegressor`.

    Attributes
    ----------
    classes_ : ndarray
        The labels seen in ``fit``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.standard_normal((120, 2)); y = np.where(X[:, 0] * X[:, 1] > 0, "same", "diff")
    >>> clf = gn.SheafClassifier((16,), learning_rate=0.05, max_iter=300, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9, clf.classes_.tolist()
    (True, ['diff', 'same'])
    """

    def fit(self, X, y):
        X = self._check_X(X, fitting=True)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise SheafError(f"y must be 1-D with {X.shape[0]} labels, got shape {y.shape}")
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            raise SheafError("y contains NaN or inf, which are not class labels")
        try:
            classes, codes = np.unique(y, return_inverse=True)
        except TypeError:
            raise SheafError("y holds labels that cannot be sorted into classes") from None
        if len(classes) < 2:
            raise SheafError(f"need at least two classes, got {list(classes)}")
        self.classes_ = classes
        if len(classes) == 2:
            self._output = "sigmoid"
            Y = codes[None].astype(float)
        else:
            self._output = "softmax"
            Y = np.eye(len(classes))[:, codes]
        return self._fit_targets(X, Y)

    def predict_proba(self, X):
        z = self._decision(X)
        if len(self.classes_) == 2:
            p = 0.5 * (1 + np.tanh(0.5 * z[0]))
            return np.stack([1 - p, p], axis=1)
        e = np.exp(z - z.max(axis=0, keepdims=True))
        return (e / e.sum(axis=0, keepdims=True)).T

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X, y):
        """Mean accuracy."""
        return float(np.mean(self.predict(X) == np.asarray(y)))
