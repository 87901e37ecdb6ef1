"""Output-edge potentials: how the output stalk z^(k+1) is tied to its target.

In training the output edge couples ``z = z^(k+1)`` to the pinned target ``y``; its
energy may be any potential ``U(z; y)``, whose negative gradient is the force on z.
Each potential is summed over samples (columns) and exposes ``value``, ``grad``
(∂U/∂z), ``hess`` (the Hessian per sample, for exact equilibria), the output
activation used for prediction and the loss the authors log.
"""

import numpy as np

from ..exceptions import SheafError
from .outputs import sigmoid, softmax

__all__ = ["Potential", "L2", "L1", "Lp", "Huber", "SigmoidBCE", "SoftmaxCE", "Custom",
           "get_loss"]


class Potential:
    """Base class. ``z`` and ``y`` have shape (n_out, M)."""

    name = "potential"
    activation = "identity"  # output activation φ used by predict
    logged = "mse"  # which loss the history reports

    def value(self, z, y):
        """Total potential (sum over samples)."""
        return float(np.sum(self.values(z, y)))

    def values(self, z, y):
        """Potential of each sample, shape (M,)."""
        raise NotImplementedError

    def grad(self, z, y):
        """∂U/∂z, shape (n_out, M)."""
        raise NotImplementedError

    def hess(self, z, y):
        """Per-sample Hessians, shape (M, n_out, n_out)."""
        raise NotImplementedError

    def predict(self, z):
        if self.activation == "sigmoid":
            return sigmoid(z)
        if self.activation == "softmax":
            return softmax(z)
        return z

    def log_loss(self, z, y):
        """The loss reported in histories: MSE for regression, CE for classification."""
        p = self.predict(z)
        if self.logged == "mse":
            return float(np.mean((p - y) ** 2))
        q = np.clip(p, 1e-12, 1 - 1e-12)
        if self.activation == "sigmoid":
            return float(np.mean(-(y * np.log(q) + (1 - y) * np.log(1 - q))))
        return float(np.mean(-np.sum(y * np.log(q), axis=0)))

    def __repr__(self):
        return f"{type(self).__name__}()"


def _diag_hess(h):
    M = h.shape[1]
    out = np.zeros((M, h.shape[0], h.shape[0]))
    idx = np.arange(h.shape[0])
    out[:, idx, idx] = h.T
    return out


class L2(Potential):
    """½‖z − y‖² (the paper's unit output edge)."""

    name = "l2"

    def values(self, z, y):
        return 0.5 * np.sum((z - y) ** 2, axis=0)

    def grad(self, z, y):
        return z - y

    def hess(self, z, y):
        return _diag_hess(np.ones_like(z))


class L1(Potential):
    """‖z − y‖₁; subgradient sign(z − y), 0 at equality."""

    name = "l1"

    def values(self, z, y):
        return np.sum(np.abs(z - y), axis=0)

    def grad(self, z, y):
        return np.sign(z - y)

    def hess(self, z, y):
        return _diag_hess(np.zeros_like(z))


class Lp(Potential):
    """(1/p)‖z − y‖_p^p for p > 1."""

    def __init__(self, p=1.5):
        if not p > 1:
            raise SheafError(f"Lp needs p > 1, got {p} (use L1 for p = 1)")
        self.p = float(p)
        self.name = f"lp{self.p:g}"

    def values(self, z, y):
        return np.sum(np.abs(z - y) ** self.p, axis=0) / self.p

    def grad(self, z, y):
        d = z - y
        return np.abs(d) ** (self.p - 1) * np.sign(d)

    def hess(self, z, y):
        d = np.abs(z - y)
        with np.errstate(divide="ignore"):
            h = (self.p - 1) * np.where(d > 0, d ** (self.p - 2), 0.0 if self.p > 2 else 1e12)
        return _diag_hess(h)

    def __repr__(self):
        return f"Lp({self.p:g})"


class Huber(Potential):
    """½d² for |d| ≤ δ, δ(|d| − ½δ) beyond, with d = z − y."""

    def __init__(self, delta=1.0):
        if not delta > 0:
            raise SheafError(f"Huber needs delta > 0, got {delta}")
        self.delta = float(delta)
        self.name = f"huber{self.delta:g}"

    def values(self, z, y):
        d = np.abs(z - y)
        return np.sum(np.where(d <= self.delta, 0.5 * d * d, self.delta * (d - 0.5 * self.delta)),
                      axis=0)

    def grad(self, z, y):
        return np.clip(z - y, -self.delta, self.delta)

    def hess(self, z, y):
        return _diag_hess((np.abs(z - y) <= self.delta).astype(float))

    def __repr__(self):
        return f"Huber({self.delta:g})"


class SigmoidBCE(Potential):
    """softplus(z) − y z = BCE(σ(z), y); force σ(z) − y (the sigmoid Jacobian cancels)."""

    name = "bce"
    activation = "sigmoid"
    logged = "ce"

    def values(self, z, y):
        return np.sum(np.logaddexp(0.0, z) - y * z, axis=0)

    def grad(self, z, y):
        return sigmoid(z) - y

    def hess(self, z, y):
        p = sigmoid(z)
        return _diag_hess(p * (1 - p))


class SoftmaxCE(Potential):
    """logsumexp(z) − yᵀz = CE(softmax(z), y); force softmax(z) − y."""

    name = "ce"
    activation = "softmax"
    logged = "ce"

    def values(self, z, y):
        m = z.max(axis=0)
        return m + np.log(np.exp(z - m).sum(axis=0)) - np.sum(y * z, axis=0)

    def grad(self, z, y):
        return softmax(z) - y

    def hess(self, z, y):
        p = softmax(z)
        return np.einsum("im,ij->mij", p, np.eye(p.shape[0])) - np.einsum("im,jm->mij", p, p)


class Custom(Potential):
    """A user potential from ``value(z, y) -> float`` and ``grad(z, y) -> array``.

    ``hess`` is optional (only the exact mode needs it; without it a finite-difference
    Hessian of ``grad`` is used).
    """

    def __init__(self, value, grad, hess=None, activation="identity", logged="mse", name="custom"):
        self._value, self._grad, self._hess = value, grad, hess
        self.activation, self.logged, self.name = activation, logged, name

    def value(self, z, y):
        return float(self._value(z, y))

    def values(self, z, y):
        return np.array([self.value(z[:, [m]], y[:, [m]]) for m in range(z.shape[1])])

    def grad(self, z, y):
        return np.asarray(self._grad(z, y), dtype=float)

    def hess(self, z, y):
        if self._hess is not None:
            return np.asarray(self._hess(z, y), dtype=float)
        n, M = z.shape
        h = 1e-6 * max(1.0, float(np.abs(z).max()))
        out = np.empty((M, n, n))
        g0 = self.grad(z, y)
        for j in range(n):
            zp = z.copy()
            zp[j] += h
            out[:, :, j] = ((self.grad(zp, y) - g0) / h).T
        return 0.5 * (out + out.transpose(0, 2, 1))


_NAMES = {"l2": L2, "mse": L2, "l1": L1, "bce": SigmoidBCE, "ce": SoftmaxCE,
          "cross_entropy": SoftmaxCE}


def get_loss(loss, output=None):
    """A :class:`Potential` from a name ("l2", "l1", "bce", "ce"), a tuple ("lp", p) /
    ("huber", δ), or a Potential. ``None`` picks L2, BCE or CE from the output activation."""
    if isinstance(loss, Potential):
        return loss
    if loss is None:
        return {"sigmoid": SigmoidBCE(), "softmax": SoftmaxCE()}.get(output, L2())
    if isinstance(loss, tuple) and len(loss) == 2 and loss[0] in ("lp", "huber"):
        return Lp(loss[1]) if loss[0] == "lp" else Huber(loss[1])
    if isinstance(loss, str) and loss.lower() in _NAMES:
        return _NAMES[loss.lower()]()
    raise SheafError(f"unknown loss {loss!r}: use 'l2', 'l1', 'bce', 'ce', ('lp', p), "
                     "('huber', delta) or a gn.losses.Potential")
