"""scikit-learn estimators trained as neural sheaves: drop-in for ``MLPRegressor``/``MLPClassifier``.

:class:`SheafRegressor` and :class:`SheafClassifier` take the parameters of scikit-learn's
multi-layer perceptrons with the same meanings and defaults (``hidden_layer_sizes``,
``activation``, ``solver``, ``alpha``, ``batch_size``, ``learning_rate``, ...), the same
initialisation (Glorot-uniform, as scikit-learn), loss conventions, schedules, stopping
rules and fitted attributes; what differs is how the gradient of each batch is found:
``mode="exact"`` (default) pins the output of the network's sheaf to the targets with a
stiff output edge, jumps to the equilibrium and reads each weight's update off its own
edge (:mod:`graphsheaf.neural.exact`); ``mode="paper"`` runs the authors' joint flow;
``mode="backprop-equivalent"`` is the γ → 0 limit. scikit-learn is required
(``pip install graphsheaf[sklearn]``).
"""

import numbers
import warnings

import numpy as np

try:
    from sklearn.base import (BaseEstimator, ClassifierMixin, RegressorMixin,
                              validate_parameter_constraints)
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("graphsheaf's estimators need scikit-learn: pip install graphsheaf[sklearn]") \
        from err

from ..exceptions import DivergenceError
from .builder import ACTIVATIONS, neural_sheaf
from .kernels import forward_output
from .plan import NetworkPlan
from .optimizers import SGD, Adam, Momentum
from .training import SheafTrainer

__all__ = ["SheafClassifier", "SheafRegressor"]

_Real, _Int = numbers.Real, numbers.Integral


class _SheafMLP(BaseEstimator):
    """Shared machinery of the two estimators (see :class:`SheafRegressor`)."""

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", _Int], "activation": [str],
        "solver": [str], "alpha": [_Real], "batch_size": [str, _Int],
        "learning_rate": [str], "learning_rate_init": [_Real], "power_t": [_Real],
        "max_iter": [_Int], "shuffle": ["boolean"], "random_state": ["random_state"],
        "tol": [_Real], "verbose": ["verbose"], "warm_start": ["boolean"],
        "momentum": [_Real], "nesterovs_momentum": ["boolean"], "early_stopping": ["boolean"],
        "validation_fraction": [_Real], "beta_1": [_Real], "beta_2": [_Real],
        "epsilon": [_Real], "n_iter_no_change": [_Int], "mode": [str],
        "gamma": [_Real, None], "cochain_rate": [_Real], "cochain_dt": [_Real],
        "paper_steps": [_Int], "weight_rate": [_Real, None], "restore_best_weights": ["boolean"],
        "loss": [str, None, object],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, mode="exact",
                 gamma=None, cochain_rate=1.0, cochain_dt=0.005, paper_steps=1000,
                 weight_rate=None, restore_best_weights=True, loss=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.mode = mode
        self.gamma = gamma
        self.cochain_rate = cochain_rate
        self.cochain_dt = cochain_dt
        self.paper_steps = paper_steps
        self.weight_rate = weight_rate
        self.restore_best_weights = restore_best_weights
        self.loss = loss

    # -- parameters ---------------------------------------------------------------------
    def _validate_hyperparameters(self):
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                       caller_name=type(self).__name__)
        choices = {"activation": ACTIVATIONS, "solver": ("adam", "sgd"),
                   "learning_rate": ("constant", "invscaling", "adaptive"),
                   "mode": ("exact", "paper", "backprop-equivalent")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"The {name!r} parameter of {type(self).__name__} must be one of "
                                 f"{list(allowed)}. Got {getattr(self, name)!r} instead.")
        if isinstance(self.batch_size, str) and self.batch_size != "auto":
            raise ValueError(f"batch_size must be 'auto' or a positive int, got {self.batch_size!r}")
        positive = ["learning_rate_init", "max_iter", "epsilon", "n_iter_no_change",
                    "cochain_rate", "cochain_dt", "paper_steps"]
        nonneg = ["alpha", "tol", "momentum", "power_t"]
        for name in positive + nonneg:
            v = getattr(self, name)
            if not (v > 0 if name in positive else v >= 0):
                raise ValueError(f"The {name!r} parameter of {type(self).__name__} must be "
                                 f"{'> 0' if name in positive else '>= 0'}, got {v!r}")
        for name in ("beta_1", "beta_2", "validation_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.momentum > 1:
            raise ValueError(f"momentum must be in [0, 1], got {self.momentum!r}")
        if self.gamma is not None and not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma!r}")
        if not isinstance(self.batch_size, str) and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size!r}")
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if np.isscalar(sizes) else list(sizes)
        if not all(isinstance(s, _Int) and s > 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive ints, got {self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    # -- fitting --------------------------------------------------------------------------
    def _init_sheaf(self, n_in, n_out, rng):
        """Glorot-uniform weights and biases, as scikit-learn's MLP initialises them."""
        dims = [n_in] + self._hidden + [n_out]
        W, b = [], []
        for l in range(1, len(dims)):
            factor = 2.0 if (l == len(dims) - 1 and self._out_activation == "logistic") else 6.0
            bound = np.sqrt(factor / (dims[l - 1] + dims[l]))
            W.append(rng.uniform(-bound, bound, (dims[l - 1], dims[l])).T.copy())
            b.append(rng.uniform(-bound, bound, dims[l]))
        output = {"identity": "identity", "logistic": "sigmoid", "softmax": "softmax"}
        return neural_sheaf(W, b, activation=self.activation,
                            output=output[self._out_activation])

    def _trainer(self, S):
        mode = self.mode
        gamma = self.gamma
        if self.solver == "adam":
            opt = Adam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)
        elif self.momentum > 0:
            opt = Momentum(self.learning_rate_init, self.momentum, nesterov=self.nesterovs_momentum)
        else:
            opt = SGD(self.learning_rate_init)
        return SheafTrainer(S, mode=mode, loss=self.loss, gamma=gamma, optimizer=opt,
                            weight_decay=self.alpha, alpha=self.cochain_rate, dt=self.cochain_dt,
                            beta=self.weight_rate)

    def _fit(self, X, Y, incremental):
        """Train on X (n, d) rows and encoded targets Y (n, n_out) rows."""
        self._hidden = self._validate_hyperparameters()
        first = not (incremental or self.warm_start) or not hasattr(self, "sheaf_")
        if not first and self.sheaf_ is not None:
            plan = NetworkPlan(self.sheaf_)
            if plan.dims != [X.shape[1]] + self._hidden + [Y.shape[1]]:
                raise ValueError(f"the fitted network has layers {plan.dims}; these data need "
                                 f"{[X.shape[1]] + self._hidden + [Y.shape[1]]}")
        if first:
            self._random_state = check_random_state(self.random_state)
            self.sheaf_ = self._init_sheaf(X.shape[1], Y.shape[1], self._random_state)
            self._trainer_ = self._trainer(self.sheaf_)
            self.n_iter_, self.t_ = 0, 0
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self.best_loss_ = np.inf
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None
            self._best = None
        else:  # warm start or partial_fit: go on from the weights on the sheaf's edges
            self._trainer_.plan = NetworkPlan(self.sheaf_)
            if not incremental:
                self._no_improvement_count = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(self._hidden) + 2
        self.out_activation_ = self._out_activation
        early = self.early_stopping and not incremental
        if early:
            stratify = Y if self._is_classifier and Y.shape[1] == 1 and len(X) > 1 else None
            try:
                X, X_val, Y, Y_val = train_test_split(
                    X, Y, random_state=self._random_state, test_size=self.validation_fraction,
                    stratify=stratify)
            except ValueError:
                X, X_val, Y, Y_val = train_test_split(
                    X, Y, random_state=self._random_state, test_size=self.validation_fraction)
            if len(X_val) < 2:
                raise ValueError("the validation set is too small for early_stopping: raise "
                                 "validation_fraction or pass more samples")
        n = X.shape[0]
        bs = min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)
        if self.mode == "paper":
            self._fit_paper(X, Y, incremental)
        else:
            self._fit_batches(X, Y, bs, incremental, (X_val, Y_val) if early else None)
        self._publish()
        return self

    def _epoch_loss(self, potential, n):
        """scikit-learn's logged loss from the summed output potential of an epoch."""
        scale = 1.0 / (n * (self.n_outputs_ if not self._is_classifier else 1))
        return potential * scale, self._l2(self._trainer_.plan.W)

    def _l2(self, weights):
        """The penalty ½ α Σ‖W‖² (scikit-learn divides it by the samples it is logged over)."""
        return 0.5 * self.alpha * sum(float(np.sum(w * w)) for w in weights)

    def _restore_best(self, validation, incremental):
        """Put back the best iteration's weights (always with early stopping, else when
        ``restore_best_weights``)."""
        if incremental or self._best is None or not (validation is not None or
                                                      self.restore_best_weights):
            return
        plan = self._trainer_.plan
        for dst, src in zip(plan.W + plan.b, self._best[0] + self._best[1]):
            dst[...] = src

    def _fit_batches(self, X, Y, bs, incremental, validation):
        tr = self._trainer_
        rng = self._random_state
        n = X.shape[0]
        Xt, Yt = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
        epochs = 1 if incremental else int(self.max_iter)
        bar = _progress_bar(self.verbose, epochs, type(self).__name__)
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(epochs):
                order = rng.permutation(n) if self.shuffle else None
                potential, n_batches = 0.0, 0
                for s in range(0, n, bs):
                    idx = order[s:s + bs] if order is not None else slice(s, s + bs)
                    info = tr.step(Xt[:, idx], Yt[:, idx])
                    potential += info["potential"]
                    n_batches += 1
                self.n_iter_ += 1
                self.t_ += n
                data_loss, l2 = self._epoch_loss(potential, n)
                # scikit-learn adds the penalty of each batch (over its size): n_batches × l2 / n
                self.loss_ = data_loss + l2 * n_batches / n
                first = self.loss_curve_[0] if self.loss_curve_ else self.loss_
                if not np.isfinite(self.loss_) or self.loss_ > 1e8 * max(first, 1.0):
                    raise DivergenceError(f"{type(self).__name__}: training diverged at iteration "
                                          f"{self.n_iter_} (loss {first:.3g} -> {self.loss_:.3g}): "
                                          f"lower learning_rate_init ({self.learning_rate_init:g})")
                self.loss_curve_.append(self.loss_)
                if bar is not None:
                    bar.set_postfix(loss=f"{self.loss_:.6g}")
                    bar.update(1)
                elif self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                if self.learning_rate == "invscaling" and self.solver == "sgd":
                    tr.optimizer.lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
                if incremental:
                    break
                if self._no_improvement(validation):
                    if self.learning_rate == "adaptive" and self.solver == "sgd" and \
                            tr.optimizer.lr / 5 >= 1e-6:
                        tr.optimizer.lr /= 5
                        self._no_improvement_count = 0
                        continue
                    break
            else:
                if not incremental and self.max_iter > 0:
                    warnings.warn(f"{type(self).__name__}: maximum iterations ({self.max_iter}) "
                                  "reached and the optimization hasn't converged yet.",
                                  ConvergenceWarning, stacklevel=4)
        if bar is not None:
            bar.close()
        self._restore_best(validation, incremental)

    def _no_improvement(self, validation):
        """scikit-learn's stopping rule (on the validation score with early_stopping, else
        the training loss); the best weights seen are kept to be restored."""
        plan = self._trainer_.plan
        if validation is not None:
            score = self._score_plan(plan, *validation)
            self.validation_scores_.append(score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best = ([w.copy() for w in plan.W], [v.copy() for v in plan.b])
        else:
            loss = self.loss_curve_[-1]
            if loss > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if loss < self.best_loss_:
                self.best_loss_ = loss
                self._best = ([w.copy() for w in plan.W], [v.copy() for v in plan.b])
        return self._no_improvement_count > self.n_iter_no_change

    def _fit_paper(self, X, Y, incremental):
        """The authors' joint flow: ``paper_steps`` Euler steps per iteration."""
        tr = self._trainer_
        n = X.shape[0]

        def callback(epoch, logs):
            self.n_iter_ += 1
            self.t_ += n
            # the trainer logs the MSE (scikit-learn's squared-error loss is half of it)
            loss = logs["train_loss"] if self._is_classifier else 0.5 * logs["train_loss"]
            self.loss_ = loss + self._l2(logs["weights"]) / n
            self.loss_curve_.append(self.loss_)
            return False if incremental else self._no_improvement(None)

        hist = tr.train(X.T, Y.T, epochs=1 if incremental else int(self.max_iter),
                        steps_per_epoch=int(self.paper_steps),
                        rng=int(self._random_state.randint(2 ** 31 - 1)),
                        callback=callback, progress=bool(self.verbose) or False,
                        init="random" if self._out_activation == "identity" else "forward")
        if not incremental and not hist.stopped_early:
            warnings.warn(f"{type(self).__name__}: maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning,
                          stacklevel=4)
        self._restore_best(None, incremental)

    def _publish(self):
        """Write the weights to the sheaf's edges and the MLP's attributes."""
        plan = self._trainer_.plan
        plan.write_back()
        self.coefs_ = [w.T.copy() for w in plan.W]
        self.intercepts_ = [v.copy() for v in plan.b]

    # -- prediction -----------------------------------------------------------------------
    def _forward(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self._outputs(NetworkPlan(self.sheaf_), X)

    @staticmethod
    def _outputs(plan, X):
        """The output pre-activations (n_out, n_samples) for rows X (read in chunks of
        columns of Xᵀ where they lie: no transposed copy of X)."""
        return forward_output(plan, X.T)

    def _score_plan(self, plan, X, Y):
        return self._score_outputs(self._outputs(plan, X), Y)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.target_tags.required = True
        return tags


def _progress_bar(verbose, total, name):
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None  # verbose prints one line per iteration instead
    return tqdm(total=total, desc=name, leave=False)


class SheafRegressor(RegressorMixin, _SheafMLP):
    """A multi-layer perceptron regressor trained as a neural sheaf.

    Parameters are those of :class:`sklearn.neural_network.MLPRegressor`, with the same
    meanings and defaults, plus the sheaf's own:

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
    activation : {"relu", "leaky_relu", "hardtanh", "relu6", "identity"}, default "relu"
        Any piecewise-linear gate (scikit-learn's "tanh" and "logistic" are not).
    solver : {"adam", "sgd"}, default "adam"
    alpha : float, default 1e-4
        L2 penalty on the weights, in every mode.
    batch_size : int or "auto", default "auto" (``min(200, n_samples)``)
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        Schedule of the "sgd" solver.
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start,
    momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2,
    epsilon, n_iter_no_change
        As in scikit-learn. ``verbose`` shows a tqdm progress bar when tqdm is installed.
    mode : {"exact", "paper", "backprop-equivalent"}, default "exact"
        How a batch's gradient is found (:class:`graphsheaf.neural.SheafTrainer`).
    gamma : float, optional
        Stiffness of the output edge (exact mode 0.001, paper mode 1).
    cochain_rate, cochain_dt, paper_steps, weight_rate
        Paper mode: the cochain's rate α and Euler step Δt, the steps per iteration, and
        the weight rate β (default 1/n_samples).
    restore_best_weights : bool, default True
        When training stops on ``n_iter_no_change`` (or reaches ``max_iter``), keep the
        weights of the best iteration seen -- by validation score with
        ``early_stopping``, else by training loss -- so a transient rise does not cost
        the run its best network (scikit-learn restores only with early stopping).
    loss : str or Potential, optional
        The output-edge potential (default: squared error).

    Attributes
    ----------
    sheaf_ : networkx.DiGraph
        The trained network as a sheaf (``gn.forward(reg.sheaf_, X.T)`` and every neural
        tool apply to it).
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, n_iter_,
    t_, coefs_, intercepts_, n_features_in_, feature_names_in_, n_layers_, n_outputs_,
    out_activation_
        As in scikit-learn.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (200, 2)); y = X[:, 0] - 2 * X[:, 1]
    >>> reg = gn.SheafRegressor((16,), learning_rate_init=0.01, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.95
    True
    """

    _is_classifier = False
    _out_activation = "identity"

    def fit(self, X, y):
        """Fit to X (n_samples, n_features) and y (n_samples,) or (n_samples, n_outputs)."""
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        self._y_1d = y.ndim == 1
        return self._fit(X, y.reshape(len(y), -1).astype(float), incremental=False)

    def partial_fit(self, X, y):
        """One pass over (X, y): one iteration of the solver."""
        first = not hasattr(self, "sheaf_")
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64,
                             reset=first)
        if first:
            self._y_1d = y.ndim == 1
        return self._fit(X, y.reshape(len(y), -1).astype(float), incremental=True)

    def predict(self, X):
        """Predicted values, shape (n_samples,) or (n_samples, n_outputs)."""
        z = self._forward(X)
        return z[0] if self._y_1d else z.T

    def _score_outputs(self, z, Y):
        from sklearn.metrics import r2_score
        return r2_score(Y, z.T)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class SheafClassifier(ClassifierMixin, _SheafMLP):
    """A multi-layer perceptron classifier trained as a neural sheaf.

    Parameters and attributes as :class:`SheafRegressor` and
    :class:`sklearn.neural_network.MLPClassifier`: a logistic output with binary
    cross-entropy for two classes (and for each label of a multi-label problem), a
    softmax with cross-entropy for more; ``classes_`` holds the labels seen in ``fit``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.standard_normal((200, 2)); y = np.where(X[:, 0] * X[:, 1] > 0, "same", "diff")
    >>> clf = gn.SheafClassifier((16,), learning_rate_init=0.02, max_iter=1000, random_state=0).fit(X, y)
    >>> bool(clf.score(X, y) > 0.9), clf.classes_.tolist()
    (True, ['diff', 'same'])
    """

    _is_classifier = True

    @property
    def _out_activation(self):
        return self._out

    def _encode(self, y, first, classes=None):
        if y.ndim == 2 and y.shape[1] == 1:  # a column of labels, not a multi-label matrix
            y = column_or_1d(y, warn=True)
        if first:
            check_classification_targets(y)
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if classes is None else classes)
            self.classes_ = self._label_binarizer.classes_
            kind = type_of_target(y if classes is None else np.asarray(classes))
            if len(self.classes_) < 2 and kind != "multilabel-indicator":
                raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in "
                                 f"the data, but the data contain only one class: {self.classes_[0]!r}")
            self._multilabel = type_of_target(y) == "multilabel-indicator"
            self._out = "logistic" if (self._multilabel or len(self.classes_) == 2) else "softmax"
        elif not np.isin(np.unique(y), self.classes_).all() and not self._multilabel:
            raise ValueError(f"y holds labels {sorted(set(np.unique(y)) - set(self.classes_))} not "
                             f"in classes {self.classes_.tolist()}")
        return self._label_binarizer.transform(y).astype(float)

    def fit(self, X, y):
        """Fit to X (n_samples, n_features) and labels y (n_samples,), or a label indicator
        matrix (n_samples, n_labels) for a multi-label problem."""
        X, y = validate_data(self, X, y, multi_output=True, dtype=np.float64)
        return self._fit(X, self._encode(y, True), incremental=False)

    def partial_fit(self, X, y, classes=None):
        """One pass over (X, y); ``classes`` (all labels) is required on the first call."""
        first = not hasattr(self, "sheaf_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        X, y = validate_data(self, X, y, multi_output=True, dtype=np.float64, reset=first)
        return self._fit(X, self._encode(y, first, classes), incremental=True)

    def predict_proba(self, X):
        """Class probabilities, (n_samples, n_classes) (multi-label: one per label)."""
        z = self._forward(X)
        from .outputs import sigmoid, softmax
        if self._out == "softmax":
            return softmax(z).T
        p = sigmoid(z).T
        return p if self._multilabel else np.hstack([1 - p, p])

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted labels (multi-label: an indicator matrix)."""
        z = self._forward(X)
        return self._decode(z)

    def _decode(self, z):
        if self._multilabel:
            return self._label_binarizer.inverse_transform((z >= 0).T.astype(int))
        if self._out == "softmax":
            return self.classes_[np.argmax(z, axis=0)]
        return self.classes_[(z[0] >= 0).astype(int)]

    def _score_outputs(self, z, Y):
        if self._multilabel:
            return float(np.mean(np.all((z >= 0).T == (Y > 0.5), axis=1)))
        truth = np.argmax(Y, axis=1) if Y.shape[1] > 1 else (Y[:, 0] > 0.5).astype(int)
        guess = np.argmax(z, axis=0) if z.shape[0] > 1 else (z[0] >= 0).astype(int)
        return float(np.mean(truth == guess))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
