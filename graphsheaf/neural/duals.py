"""The output problem of the exact fast phase: ``v = ∇U(z0 - γ K v)`` per sample, and
the Gram matrix ``K = G Gᵀ`` it needs.

``K`` is the Gram matrix of the output's response G to residuals on every edge, for a
fixed activation pattern (:func:`seed_gram`, :func:`pattern_gram`; the passes that use
it are :mod:`.exact`'s); ``λ = γ v`` is the output edge's pull at the pinned equilibrium.
"""

import numpy as np

from .kernels import transposed_sweep
from .losses import L1, L2, Huber, SigmoidBCE

__all__ = ["MaskedGram", "apply_gram", "output_dual", "pattern_gram", "seed_gram"]


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


def seed_gram(W, sig, M, stacked=None, seed=None):
    """One output: the rows of G -- one transposed sweep from the seed 1 (the sweep from any
    output pull v is this one scaled by v per sample) -- and K = ‖G‖² per sample.

    ``stacked = (rows, yW, yR, scratch, ones)``: the (2H, M) array of the stacked affine
    and gate rows and the per-layer views of its two halves, which receive the hidden
    rows, a free (2H, M) array and 2H ones: K is then the squares summed by one BLAS
    product (2.3 µs against 4.5 µs for einsum's reduction on 192 × 32); ``seed`` an array
    of ones (1, M) to start from. Returns ``(K, yW, yR)``, the rows as per-layer lists
    (``yW[k]`` is the seed)."""
    k = len(sig)
    out = {} if stacked is None else {"yW": stacked[1], "yR": stacked[2]}
    yW, yR = transposed_sweep(W, sig, np.ones((1, M)) if seed is None else seed, **out)
    if stacked is None:
        K = np.ones(M)
        for Y in yW[:k] + yR:
            K += np.einsum("dm,dm->m", Y, Y)
    else:
        rows, _, _, square, ones = stacked
        np.multiply(rows, rows, out=square)
        K = np.dot(ones, square)
        K += 1.0
    return K, yW, yR


def pattern_gram(W, sig, sig2, n, rows=False):
    """K = G Gᵀ per sample for kink-free patterns with slopes ``sig`` (feature-major).

    The last hidden layer's rows of G are W_{k+1} scaled by the slopes, so its
    contribution is one product with the squared slopes ``sig2``; deeper layers
    propagate the n_out rows per sample, and since a gate edge's rows are its affine
    edge's scaled by σ, each layer adds one product weighted by 1 + σ². Returns shape
    (M,) when n_out = 1, else (M, n, n) or a :class:`MaskedGram`; with ``rows`` (several
    outputs) also the gate edges' rows below the last hidden layer, per layer an
    (M, n, d) array, from which the residuals of any output pull v are ``q = Rᵀv``.

    Examples
    --------
    One hidden layer of two neurons, both on, one output with weights (1, 2): the output
    moves by 1 on its own edge and by 1 and 2 on each of the two edges of each neuron, so
    K = 1 + 2 (1² + 2²):

    >>> import numpy as np
    >>> from graphsheaf.neural.duals import pattern_gram
    >>> W = [np.eye(2), np.array([[1.0, 2.0]])]
    >>> pattern_gram(W, [np.ones((2, 1))], [np.ones((2, 1))], 1)
    array([11.])
    """
    k = len(sig)
    C = W[k]
    if k == 0:
        return np.ones(1) if n == 1 else np.eye(n)[None]
    M = sig[0].shape[1]
    # the last hidden layer's rows in closed form; deeper layers through the transposed sweep
    if n == 1:
        return seed_gram(W, sig, M)[0]
    if k == 1:
        K = MaskedGram(C, sig2[0])
        return (K, []) if rows else K
    K = MaskedGram(C, sig2[k - 1]).dense()  # the last hidden layer's part, in closed form
    # the rows sample-major, (M, n, d): each layer's are one product of all M·n rows with
    # W_ℓ, already in the layout of the per-sample Gram products (no transposed copy)
    Y = C[None, :, :] * sig[k - 1].T[:, None, :]  # the last hidden layer's affine rows
    blocks = [None] * (k - 1)
    for l in range(k - 2, -1, -1):
        R = (Y.reshape(M * n, -1) @ W[l + 1]).reshape(M, n, -1)  # the gate edge's rows
        K += (R * (1.0 + sig2[l].T[:, None, :])) @ R.transpose(0, 2, 1)
        blocks[l] = R
        if l:
            Y = R * sig[l].T[:, None, :]
    return (K, blocks) if rows else K


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
