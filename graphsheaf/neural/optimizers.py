"""Optimisers of the exact and backprop-equivalent training modes: each ``step(params, grads)``
updates its parameter arrays in place."""

import math

import numpy as np
from scipy.linalg.blas import daxpy, dscal

from ..exceptions import SheafError
from .kernels import blas_ready

__all__ = ["SGD", "Adam", "Momentum", "make_optimizer"]


class SGD:
    """Plain step ``θ ← θ - lr g``."""

    def __init__(self, learning_rate=0.01):
        self.lr = float(learning_rate)

    def step(self, params, grads):
        for p, g in zip(params, grads):
            p -= self.lr * g


class Momentum(SGD):
    """Heavy-ball momentum ``v ← μ v + g``, ``θ ← θ - lr v`` (Nesterov: ``θ ← θ - lr (μ v + g)``)."""

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False):
        super().__init__(learning_rate)
        self.mu, self.v, self.nesterov = float(momentum), None, bool(nesterov)

    def step(self, params, grads):
        if self.v is None:
            self.v = [np.zeros_like(p) for p in params]
        for p, g, v in zip(params, grads, self.v):
            v *= self.mu
            v += g
            if self.nesterov:
                p -= self.lr * (self.mu * v + g)
            else:
                p -= self.lr * v


class Adam(SGD):
    """Adam (Kingma & Ba) with bias correction."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(learning_rate)
        self.b1, self.b2, self.eps = beta1, beta2, eps
        self.m = self.v = None
        self.t = 0
        self._views = {}

    def _flat_views(self, p, g, m, v):
        """``(p, g, m, v, scratch)`` flat for BLAS, or None (other layouts). Kept per
        parameter array (its moments' views and a scratch array), the gradient's view
        while the same gradient array comes back: the checks and views cost ~3 µs a step
        otherwise."""
        got = self._views.get(id(p))
        if got is None or got[0] is not p:
            flat = (tuple(x.reshape(-1) for x in (p, m, v)) + (np.empty(p.size),)
                    if p.ndim and all(map(blas_ready, (p, m, v))) else None)
            if len(self._views) > 64:
                self._views.clear()
            got = self._views[id(p)] = [p, flat, None, None]
        if got[1] is None:
            return None
        if got[2] is not g:
            if g.shape != p.shape or not blas_ready(g):
                return None
            got[2], got[3] = g, g.reshape(-1)
        flat_p, flat_m, flat_v, scratch = got[1]
        return flat_p, got[3], flat_m, flat_v, scratch

    def step(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        # p -= lr (m / c1) / (sqrt(v / c2) + eps), written as lr √c2 / c1 · m / (√v + eps √c2)
        # with in-place operations (the parameters are usually one flat buffer)
        rate, eps = self.lr * math.sqrt(c2) / c1, self.eps * math.sqrt(c2)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            flat = self._flat_views(p, g, m, v)
            if flat is not None:
                # the moments' blends and the move as BLAS scalings and axpys on the arrays
                # where they lie (8.4 µs against 12.6 µs a step on 2,209 parameters), their
                # flat views and a scratch array kept while the same arrays come back
                p, g, m, v, t = flat
                np.multiply(g, g, out=t)
                dscal(self.b2, v)
                daxpy(t, v, a=1 - self.b2)
                dscal(self.b1, m)
                daxpy(g, m, a=1 - self.b1)
                np.sqrt(v, out=t)
                t += eps
                np.divide(m, t, out=t)
                daxpy(t, p, a=-rate)
                continue
            t = np.subtract(g, m)
            t *= 1 - self.b1
            m += t
            np.multiply(g, g, out=t)
            t -= v
            t *= 1 - self.b2
            v += t
            np.sqrt(v, out=t)
            t += eps
            np.divide(m, t, out=t)
            t *= rate
            p -= t


def make_optimizer(optimizer, learning_rate):
    """An optimiser from a name ("sgd", "momentum", "adam") or an object with ``step``."""
    if hasattr(optimizer, "step"):
        return optimizer
    table = {"sgd": SGD, "gd": SGD, "momentum": Momentum, "adam": Adam}
    if optimizer not in table:
        raise SheafError(f"optimizer must be 'sgd', 'momentum' or 'adam', got {optimizer!r}")
    return table[optimizer](learning_rate)
