"""The output problem of the exact fast phase: ``v = ∇U(z0 - γ K v)`` per sample, and
the Gram matrix ``K = G Gᵀ`` it needs.

``K`` is the Gram matrix of the output's response G to residuals on every edge, for a
fixed activation pattern (:func:`seed_gram`, :func:`pattern_gram`; the passes that use
it are :mod:`.exact`'s); ``λ = γ v`` is the output edge's pull at the pinned equilibrium.
"""

from functools import partial

import numpy as np

from .kernels import run, transposed_calls, transposed_sweep
from .losses import L1, L2, Huber, SigmoidBCE

__all__ = ["MaskedGram", "apply_gram", "output_dual", "pattern_gram", "seed_gram",
           "seed_gram_calls"]


class MaskedGram:
    """K = I + C diag(1 + σ²) Cᵀ per sample: one hidden layer with slopes σ.

    Applied as two thin products (cheaper than forming n_out² entries per sample);
    :meth:`dense` forms it when a solver needs the matrices.
    """

    def __init__(self, C, sig2):
        self.C, self.w = C, 1.0 + sig2

    def apply(self, v):
        return v + self.C @ (self.w * (self.C.T @ v))

    def dense(self, out=None):
        """The (M, n, n) matrices, written into ``out`` (C-contiguous) when given: the
        n² products of C's rows weighted per sample, one product already sample-major."""
        C, n = self.C, self.C.shape[0]
        QT = (C.T[:, :, None] * C.T[:, None, :]).reshape(-1, n * n)  # (d, n²)
        K = np.dot(self.w.T, QT, out=None if out is None else out.reshape(-1, n * n))
        K[:, ::n + 1] += 1.0
        return K.reshape(-1, n, n)



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
    seed = np.ones((1, M)) if seed is None else seed
    if stacked is None:
        yW, yR = transposed_sweep(W, sig, seed)
        K = np.ones(M)
        for Y in yW[:k] + yR:
            K += np.einsum("dm,dm->m", Y, Y)
        return K, yW, yR
    K = np.empty(M)
    run(seed_gram_calls(W, sig, stacked, seed, K))
    return K, list(stacked[1]) + [seed], list(stacked[2])


def seed_gram_calls(W, sig, stacked, seed, K):
    """:func:`seed_gram` with ``stacked`` buffers as calls bound to its arrays (see
    :func:`.kernels.residual_calls`); ``K`` (M,) receives the Gram values."""
    rows, yW, yR, square, ones = stacked
    return (transposed_calls(W, sig, list(yW) + [seed], yR)
            + [partial(np.multiply, rows, rows, square), partial(np.dot, ones, square, K),
               partial(np.add, K, 1.0, K)])


def pattern_gram(W, sig, sig2, n, rows=False, buffers=None):
    """K = G Gᵀ per sample for kink-free patterns with slopes ``sig`` (feature-major).

    The last hidden layer's rows of G are W_{k+1} scaled by the slopes, so its
    contribution is one product with the squared slopes ``sig2``; deeper layers
    propagate the n_out rows per sample, and since a gate edge's rows are its affine
    edge's scaled by σ, each layer adds one product weighted by 1 + σ². Returns shape
    (M,) when n_out = 1, else (M, n, n) or a :class:`MaskedGram`; with ``rows`` (several
    outputs) also the gate edges' rows below the last hidden layer, per layer an
    (M, n, d) array, from which the residuals of any output pull v are ``q = Rᵀv``.
    ``buffers`` (a dict the caller keeps between calls) holds the arrays of several
    outputs, which are then views of it, valid until the next call: on the digits'
    [64,128,128,10] a call allocates 1.3 MB, and fresh pages cost more than the
    arithmetic (a call 0.79 ms with them, 0.34 ms in kept buffers).

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
    buf = _Buffers({} if buffers is None else buffers)
    # the last hidden layer's part, in closed form
    K = MaskedGram(C, sig2[k - 1]).dense(out=buf("K", (M, n, n)))
    # the rows sample-major, (M, n, d): each layer's are one product of all M·n rows with
    # W_ℓ, already in the layout of the per-sample Gram products (no transposed copy)
    Y = np.multiply(C[None, :, :], buf.samples(("s", k - 1), sig[k - 1])[:, None, :],
                    out=buf("Y", (M,) + C.shape))  # the last hidden layer's affine rows
    blocks = [None] * (k - 1)
    for l in range(k - 2, -1, -1):
        d = W[l + 1].shape[1]
        R = buf(("R", l), (M, n, d))  # the gate edge's rows
        np.dot(Y.reshape(M * n, -1), W[l + 1], out=R.reshape(M * n, d))
        w = np.add(sig2[l].T, 1.0, out=buf(("w", l), (M, d)))
        Rw = np.multiply(R, w[:, None, :], out=buf(("Rw", l), (M, n, d)))
        K += np.matmul(Rw, R.transpose(0, 2, 1), out=buf("KR", (M, n, n)))
        blocks[l] = R
        if l:
            Y = np.multiply(R, buf.samples(("s", l), sig[l])[:, None, :],
                            out=buf(("Y", l), (M, n, d)))
    return (K, blocks) if rows else K


class _Buffers:
    """Arrays by name and shape from a dict kept between calls (made when missing)."""

    def __init__(self, store):
        self.store = store

    def __call__(self, key, shape):
        x = self.store.get(key)
        if x is None or x.shape != shape:
            x = self.store[key] = np.empty(shape)
        return x

    def samples(self, key, x):
        """``x`` (d, M) copied sample-major, (M, d): products broadcasting it per sample
        then run along contiguous rows."""
        return np.copyto(self(key, x.shape[::-1]), x.T) or self.store[key]


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
