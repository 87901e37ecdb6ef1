"""The output problem of the exact fast phase: ``v = ∇U(z0 - γ K v)`` per sample.

``K`` is the Gram matrix of the output's response to residuals on every edge
(:mod:`.exact`); ``λ = γ v`` is the output edge's pull at the pinned equilibrium.
"""

import numpy as np

from .losses import L1, L2, Huber, SigmoidBCE

__all__ = ["MaskedGram", "apply_gram", "output_dual"]


class MaskedGram:
    """K = I + C diag(1 + σ²) Cᵀ per sample: one hidden layer with slopes σ.

    Applied as two thin products (cheaper than forming n_out² entries per sample);
    :meth:`dense` forms it when a solver needs the matrices.
    """

    def __init__(self, C, sig2):
        self.C, self.w = C, 1.0 + sig2

    def apply(self, v):
        return v + self.C @ (self.w * (self.C.T @ v))

    def dense(self):
        C, n = self.C, self.C.shape[0]
        Q = (C[:, None, :] * C[None, :, :]).reshape(n * n, -1)
        return np.ascontiguousarray((Q @ self.w).T).reshape(-1, n, n) + np.eye(n)



def apply_gram(K, v):
    """K v per sample; K is (M,) for one output, (M, n, n) or a MaskedGram; v is (n, M)."""
    if isinstance(K, MaskedGram):
        return K.apply(v)
    if K.ndim == 1:
        return K * v
    return (K @ v.T[:, :, None])[:, :, 0].T


def output_dual(z0, Y, K, loss, gamma, tol=1e-14, fixed_point=30, newton=50, v0=None):
    """Solve ``v = ∇U(z0 - γ K v)`` per sample (columns); ``λ = γ v`` is the output pull.

    L2 is linear (closed form for one output); L1 with one output is a clipped ratio.
    Otherwise the fixed point iteration runs while it contracts (γ‖K‖ times the
    curvature of U is small, the usual case) and damped Newton finishes.
    """
    n = z0.shape[0]
    if type(loss) is L2:
        if n == 1:
            return (z0 - Y) / (1.0 + gamma * K)
        if isinstance(K, MaskedGram):
            K = K.dense()
        return np.linalg.solve(np.eye(n) + gamma * K, (z0 - Y).T[:, :, None])[:, :, 0].T
    if type(loss) is L1:
        if n == 1:
            return np.clip((z0 - Y) / (gamma * K), -1.0, 1.0)
        loss = _SmoothL1(1e-9 * max(1.0, float(np.abs(z0 - Y).max())))
    v = loss.grad(z0, Y) if v0 is None else v0.copy()  # the result may be written into later
    if n == 1:  # scalar Newton; a sample it does not settle goes to the safeguarded solver
        gK = gamma * K
        scale = tol * (1.0 + float(np.abs(v).max()))
        for _ in range(8):
            z = z0 - gK * v
            g = loss.grad(z, Y)
            F = v - g
            if np.abs(F).max() <= scale:
                return v
            v = v - F / (1.0 + gK * _curvature(loss, z, Y, g))
        return _dual_newton(z0, Y, K, loss, gamma, v, newton)
    last = np.inf
    scale = tol * (1.0 + float(np.abs(v).max()))
    for _ in range(fixed_point):
        nxt = loss.grad(z0 - gamma * apply_gram(K, v), Y)
        step = float(np.abs(nxt - v).max())
        v = nxt
        q = step / last  # the observed contraction: what is left is about step q / (1 - q)
        if step <= scale or (0 < q < 0.5 and step * q <= scale * (1 - q)):
            return v
        if q > 0.5:
            break
        last = step
    return _dual_newton(z0, Y, K, loss, gamma, v, newton)


def _curvature(loss, z, y, g):
    """U'' for one output, elementwise; ``g`` is U'(z) (the sigmoid reuses it)."""
    if type(loss) is SigmoidBCE:
        s = g + y
        return s * (1.0 - s)
    return loss.hess(z, y)[:, 0, 0][None]


def _dual_newton(z0, Y, K, loss, gamma, v, iters):
    """Newton on ψ(v) = γ/2 vᵀKv + U(z0 - γKv), convex, whose minimiser solves the dual.

    A step that overshoots (ψ rises again along it: U with unbounded curvature, as
    Lp for p < 2 or L1, make plain Newton oscillate) is cut back to the minimum of ψ
    along its line, found by bisection on the directional derivative.
    """
    n, M = z0.shape
    if isinstance(K, MaskedGram):
        K = K.dense()
    Kb = K[:, None, None] if K.ndim == 1 else K
    eye = np.eye(n)

    def slope(v, step):  # directional derivative of ψ / γ along step
        F = v - loss.grad(z0 - gamma * apply_gram(K, v), Y)
        return np.einsum("im,im->m", step, apply_gram(K, F))

    for _ in range(iters):
        z = z0 - gamma * apply_gram(K, v)
        F = v - loss.grad(z, Y)
        if np.abs(F).max() <= 1e-13 * max(1.0, float(np.abs(v).max())):
            break
        J = eye + gamma * (loss.hess(z, Y) @ Kb)
        step = -np.linalg.solve(J, F.T[:, :, None])[:, :, 0].T
        over = slope(v + step, step) > 0
        t = np.ones(M)
        if over.any():
            lo, hi = np.zeros(M), np.ones(M)
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                down = slope(v + mid * step, step) < 0
                lo, hi = np.where(down, mid, lo), np.where(down, hi, mid)
            t = np.where(over, 0.5 * (lo + hi), 1.0)
        v = v + t * step
    return v


class _SmoothL1(Huber):
    """Huber(ε)/ε: L1 away from a cap of width ε (for the several-output L1 dual)."""

    def values(self, z, y):
        return super().values(z, y) / self.delta

    def grad(self, z, y):
        return super().grad(z, y) / self.delta

    def hess(self, z, y):
        return super().hess(z, y) / self.delta
