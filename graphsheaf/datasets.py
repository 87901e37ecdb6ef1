"""The paper's synthetic tasks, generated offline and seeded.

Every generator returns a :class:`Dataset` whose arrays hold samples as **columns**
(the neural sheaf's layout): X of shape (2, n), Y of shape (n_out, n). With
``rng=gn.TorchSeed(42)`` the draws follow the authors' PyTorch code (spec §5.1);
with a NumPy seed or Generator they follow the same recipe with NumPy's stream.
"""

from dataclasses import dataclass

import numpy as np

from ._repr import short_repr
from ._random import TorchSeed
from .exceptions import SheafError

__all__ = ["Dataset", "paraboloid", "saddle", "circles", "blobs", "digits", "moons"]


@dataclass(frozen=True)
class Dataset:
    """Train/test split with samples as columns; ``task`` is "regression" or "classification"."""

    def __repr__(self):
        return short_repr(self)

    name: str
    task: str
    X_train: np.ndarray
    Y_train: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray

    @property
    def labels_train(self):
        """Integer class labels of the training set (classification)."""
        return _labels(self.Y_train)

    @property
    def labels_test(self):
        return _labels(self.Y_test)


def _labels(Y):
    return (Y[0] >= 0.5).astype(int) if Y.shape[0] == 1 else np.argmax(Y, axis=0)


class _Stream:
    """Uniform, normal and permutation draws from NumPy or from a TorchSeed."""

    def __init__(self, rng):
        if isinstance(rng, TorchSeed):
            self.torch = rng
            self.np = None
        else:
            self.torch = None
            self.np = np.random.default_rng(rng)

    def rand(self, *shape):
        return self.torch.uniform(shape) if self.torch else self.np.random(shape)

    def randn(self, *shape):
        return self.torch.normal(shape) if self.torch else self.np.standard_normal(shape)

    def perm(self, n):
        return self.torch.permutation(n) if self.torch else self.np.permutation(n)

    def mvn(self, mean, cov, n):
        # as torch's MultivariateNormal.sample((n,)): noise drawn as (n, 2), x = loc + eps Lᵀ
        L = np.linalg.cholesky(np.asarray(cov, dtype=float))
        eps = self.randn(n, 2)
        return (np.asarray(mean, dtype=float)[None, :] + eps @ L.T).T


def _split(name, task, X, Y, n_train):
    return Dataset(name, task, X[:, :n_train].copy(), Y[:, :n_train].copy(),
                   X[:, n_train:].copy(), Y[:, n_train:].copy())


def _sizes(n_train, n_test):
    n_train, n_test = int(n_train), int(n_test)
    if n_train < 1 or n_test < 0:
        raise SheafError(f"need n_train >= 1 and n_test >= 0, got {n_train}, {n_test}")
    return n_train, n_test


def paraboloid(n_train=300, n_test=100, *, noise=0.02, rng=42):
    """f(x) = x1² + x2² − 2/3 on [−2, 2]², Gaussian noise σ = 0.02 on train and test.

    Examples
    --------
    >>> d = gs.datasets.paraboloid(rng=0)
    >>> d.X_train.shape, d.Y_test.shape
    ((2, 300), (1, 100))
    """
    n_train, n_test = _sizes(n_train, n_test)
    s = _Stream(rng)
    n = n_train + n_test
    X = s.rand(2, n) * 4 - 2
    Y = (X ** 2).sum(axis=0, keepdims=True) - 2.0 / 3.0 + noise * s.randn(1, n)
    return _split("paraboloid", "regression", X, Y, n_train)


def saddle(n_train=300, n_test=100, *, noise=0.02, rng=42):
    """f(x) = x1² − x2² + 0.5 sin(2 x1) on [0, 2]², noise σ = 0.02."""
    n_train, n_test = _sizes(n_train, n_test)
    s = _Stream(rng)
    n = n_train + n_test
    X = s.rand(2, n) * 2
    Y = (X[0] ** 2 - X[1] ** 2 + 0.5 * np.sin(2 * X[0]))[None] + noise * s.randn(1, n)
    return _split("saddle", "regression", X, Y, n_train)


def circles(n_train=300, n_test=100, *, rng=42):
    """Binary: a noisy disk (r < 1, label 0) inside a noisy annulus (1.5 < r < 2.5, label 1)."""
    n_train, n_test = _sizes(n_train, n_test)
    s = _Stream(rng)
    n = n_train + n_test
    half = n // 2
    theta = 2 * np.pi * s.rand(n)
    r0 = np.sqrt(s.rand(half)) + 0.1 * s.randn(half)
    r1 = np.sqrt(1.5 ** 2 + s.rand(n - half) * (2.5 ** 2 - 1.5 ** 2)) + 0.1 * s.randn(n - half)
    r = np.concatenate([r0, r1])
    X = np.stack([r * np.cos(theta), r * np.sin(theta)])
    Y = np.concatenate([np.zeros(half), np.ones(n - half)])[None]
    order = s.perm(n)
    return _split("circles", "classification", X[:, order], Y[:, order], n_train)


BLOB_CENTERS = [(-1.5, -1.5), (1.8, -1.0), (1.0, 2.0), (-2.0, 1.5)]
BLOB_COVS = [[[0.80, 0.30], [0.30, 0.40]], [[0.30, -0.20], [-0.20, 1.00]],
             [[1.20, 0.50], [0.50, 0.50]], [[0.50, 0.0], [0.0, 0.80]]]


def blobs(n_train=300, n_test=100, *, rng=42):
    """Four overlapping Gaussian classes (one-hot labels), the paper's covariances."""
    n_train, n_test = _sizes(n_train, n_test)
    s = _Stream(rng)
    n = n_train + n_test
    per = [n // 4 + (1 if i < n % 4 else 0) for i in range(4)]
    X = np.concatenate([s.mvn(c, S, m) for c, S, m in zip(BLOB_CENTERS, BLOB_COVS, per)], axis=1)
    labels = np.repeat(np.arange(4), per)
    Y = np.eye(4)[:, labels]
    order = s.perm(n)
    return _split("blobs", "classification", X[:, order], Y[:, order], n_train)


def digits(test_fraction=0.25, *, rng=0):
    """scikit-learn's bundled 8×8 digits (no download), scaled to [0, 1], one-hot labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError("digits() needs scikit-learn: pip install graphsheaf[sklearn]") from err
    d = load_digits()
    X = d.data.T / 16.0
    Y = np.eye(10)[:, d.target]
    order = np.random.default_rng(rng).permutation(X.shape[1])
    n_train = int(round(X.shape[1] * (1 - test_fraction)))
    return _split("digits", "classification", X[:, order], Y[:, order], n_train)


def moons(n_train=300, n_test=100, *, noise=0.1, rng=0):
    """scikit-learn's two moons (binary)."""
    try:
        from sklearn.datasets import make_moons
    except ImportError as err:
        raise ImportError("moons() needs scikit-learn: pip install graphsheaf[sklearn]") from err
    X, y = make_moons(n_train + n_test, noise=noise, random_state=rng)
    return _split("moons", "classification", X.T, y[None].astype(float), n_train)
