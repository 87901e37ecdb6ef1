"""The one copy of each sweep of a compiled network (:mod:`.plan`).

Lists follow one convention everywhere: ``z[l]`` is ``z_{l+1}`` (l = 0..k) and ``a[l]``
is ``a_l`` with ``a[0] = X`` (l = 0..k), free coordinates only, samples as columns.

* :func:`forward_sweep` -- δ_Ω⁻¹ applied to the pinned data (Lemma 3.2: block forward
  substitution), at the gates' own states or at a fixed pattern (slopes σ, intercepts τ);
* :func:`forward_output` -- the forward pass's output, a large set in chunks;
* :func:`transposed_sweep` -- δ_Ω⁻ᵀ applied to an output-side vector (backpropagation's
  deltas are its affine blocks);
* :func:`residuals` -- the edge residuals ``r_ℓ = W_ℓ a_{ℓ-1} + b_ℓ - z_ℓ`` and
  ``q_ℓ = g_ℓ(z_ℓ) - a_ℓ``;
* :func:`hidden_forces` -- minus the (generalised) gradient of the Dirichlet energy in
  the hidden stalks, the heat equation's and paper-mode training's force;
* :func:`edge_square_norms` -- ``‖(δc)_e‖²`` per edge, the one energy kernel;
* :func:`product`, :func:`axpy_into`, :func:`blas_ready` -- the small BLAS helpers the
  sweeps, the flows and the optimisers share.
"""

from functools import partial

import numpy as np
from scipy.linalg.blas import daxpy, dgemm, dger

_F64 = np.dtype(np.float64)

__all__ = ["axpy_into", "blas_ready", "edge_square_norms", "force_calls", "forward_calls",
           "forward_output", "forward_sweep", "hidden_forces", "product", "residual_calls",
           "residuals", "run", "transposed_calls", "transposed_sweep"]


def blas_ready(x):
    """True when ``x`` is float64, C-contiguous, writeable and not empty: BLAS's wrappers
    then work on its memory (else they would work on a copy)."""
    flags = x.flags
    return bool(x.dtype is _F64 and flags.c_contiguous and flags.writeable and x.size)


def product(A, B, out=None):
    """``A @ B`` for 1- or 2-D float64 operands, written into ``out`` when given.

    ``np.dot`` when ``out`` is None or C-contiguous -- the same BLAS call as ``np.matmul``
    with 0.4 µs less overhead (1.8 against 2.2 µs on 32 × 32, 0.7 against 1.1 µs on
    32 × 2 by 2 × 32), which the sweeps on small networks pay several times a step --
    else ``np.matmul``, which writes into any layout.

    Examples
    --------
    >>> import numpy as np
    >>> from graphsheaf.neural.kernels import product
    >>> out = np.empty((2, 2))
    >>> product(np.eye(2), np.array([[1.0, 2.0], [3.0, 4.0]]), out=out)
    array([[1., 2.],
           [3., 4.]])
    """
    if out is None or out.flags.c_contiguous:
        return np.dot(A, B, out=out)
    return np.matmul(A, B, out=out)


def axpy_into(y, x):
    """Return ``f`` with ``f(a)`` doing ``y += a * x`` in place (``x`` unchanged), the
    layouts checked once.

    A step of the flows moves every stalk by its scaled force; NumPy needs two passes
    over the buffer for that (``x *= a``, ``y += x``), BLAS's ``daxpy`` one, with less
    overhead a call: 3.0 µs against 5.4 µs on 18,300 coordinates, 0.24 µs against 0.9 µs
    on 61. BLAS may round ``a*x + y`` once (a fused multiply-add) where NumPy rounds
    twice: the results agree to the last bit of each step, not bit for bit.

    Examples
    --------
    >>> import numpy as np
    >>> from graphsheaf.neural.kernels import axpy_into
    >>> y, x = np.zeros(2), np.array([1.0, 2.0])
    >>> move = axpy_into(y, x); move(0.5); move(0.5); y
    array([1., 2.])
    """
    if y.shape == x.shape and blas_ready(y) and blas_ready(x):
        flat_y, flat_x = y.reshape(-1), x.reshape(-1)

        def move(a):
            daxpy(flat_x, flat_y, a=a)  # (contiguous float64: written in place)
    else:
        def move(a):
            np.add(y, a * x, out=y)
    return move


def forward_sweep(plan, X, *, z=None, a=None, first=None, sigma=None, tau=None, edge=None,
                  bias=True, output=True):
    """``δ_Ω⁻¹``: ``z_ℓ = W_ℓ a_{ℓ-1} + b_ℓ``, ``a_ℓ = g_ℓ(z_ℓ)`` (or ``σ_ℓ z_ℓ + τ_ℓ``).

    With the defaults this is the forward pass (Lemma 3.2: block forward substitution).
    At a fixed pattern (``sigma``, ``tau``) it is the sweep of that linear sheaf; with
    ``edge = (s^W, s^R)`` it adds data on every edge (``z_ℓ = ... + s^W_ℓ``,
    ``a_ℓ = ... + s^R_ℓ``), and with ``X=None, bias=False`` it applies δ_Ω⁻¹ to edge data
    alone (the exact solver's cochain from its residuals).

    Parameters
    ----------
    plan : NetworkPlan
    X : array (n_0,) or (n_0, M), or None (a zero input)
    z, a : lists of arrays, optional
        Outputs written in place (``a[0]`` is left alone).
    first : array, optional
        ``z_1`` if already known (it does not depend on the pattern).
    sigma, tau : lists of arrays, optional
        Slopes and intercepts (or None entries) of a fixed pattern.
    edge : pair of lists, optional
        ``s^W`` (k + 1 arrays) and ``s^R`` (k arrays) added on the edges.
    bias : bool
        Add the biases ``b_ℓ`` (the pinned constants' share).
    output : bool
        Also compute z_{k+1} (else ``z[k]`` is left None: the hidden layers only).

    Returns
    -------
    z, a : lists (``a[0]`` is X)

    The work is :func:`forward_calls`'s (missing outputs are allocated first).
    """
    k = plan.k
    tail = (X if X is not None else edge[0][0]).shape[1:]  # (the samples' axes)
    zs = list(z) if z is not None else [None] * (k + 1)
    acts = list(a) if a is not None else [None] * (k + 1)
    for l in range(k + 1 if output else k):
        if l == 0 and first is not None:
            zs[0] = first
        elif zs[l] is None:
            zs[l] = np.empty((plan.W[l].shape[0],) + tail)
        if l < k and acts[l + 1] is None:
            acts[l + 1] = np.empty((plan.W[l].shape[0],) + tail)
    run(forward_calls(plan, X, zs, acts, first=first, sigma=sigma, tau=tau, edge=edge, bias=bias,
                      output=output))
    acts[0] = X
    if z is not None:  # (the lists given are filled in, as NumPy's out= arrays are)
        z[:] = zs
    if a is not None:
        a[:] = acts
    return zs, acts


def forward_calls(plan, X, z, a, *, first=None, sigma=None, tau=None, edge=None, bias=True,
                  output=True):
    """:func:`forward_sweep` as a list of argument-free calls bound to its arrays (see
    :func:`residual_calls`): every output ``z[l]`` (l ≤ k, or < k without ``output``;
    ``z[0]`` is ``first`` when given) and ``a[l]`` (1 ≤ l ≤ k) must be an array. A pass
    that runs again and again on the same buffers (the exact mode's, per batch size)
    binds it once: a [2,32,32,32,1] sweep of 32 samples, 14.8 µs called, 11.9 µs bound.

    Examples
    --------
    >>> import numpy as np
    >>> import graphsheaf.neural as gn
    >>> from graphsheaf.neural.kernels import forward_calls, run
    >>> from graphsheaf.neural.plan import NetworkPlan
    >>> plan = NetworkPlan(gn.neural_sheaf([np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]])],
    ...                                    [np.zeros(2), np.zeros(1)]))
    >>> X = np.array([[2.0, -3.0]])
    >>> z, a = [np.empty((2, 2)), np.empty((1, 2))], [None, np.empty((2, 2))]
    >>> run(forward_calls(plan, X, z, a)); z[1]
    array([[2., 3.]])
    """
    W, b, k = plan.W, plan.b, plan.k
    relu = sigma is None and plan.gate_table().relu
    calls = []
    prev = X
    for l in range(k + 1 if output else k):
        zl = z[l]
        if l > 0 or first is None:
            if prev is None:  # a zero input: the first edge carries only its own data
                calls.append(partial(np.copyto, zl, edge[0][0]))
            else:
                calls.append(_product_call(W[l], prev, zl))
                if edge is not None:
                    calls.append(partial(np.add, zl, edge[0][l], zl))
            if bias:
                calls.append(partial(np.add, zl, b[l] if zl.ndim == 1 else b[l][:, None], zl))
        if l < k:
            al = a[l + 1]
            if relu:  # (against a zero array, as in residuals: the same values, faster)
                calls.append(partial(np.maximum, zl, _zeros(zl.shape), out=al))
            elif sigma is None:
                calls.append(partial(plan.gates[l].value, zl, out=al))
            else:
                calls.append(partial(np.multiply, sigma[l], zl, al))
                if tau is not None and tau[l] is not None:
                    calls.append(partial(np.add, al, tau[l], al))
            if edge is not None:
                calls.append(partial(np.add, al, edge[1][l], al))
            prev = al
    return calls


def forward_output(plan, X, *, chunk=512):
    """The network's output pre-activation ``z_{k+1}`` for the columns of ``X``: the
    forward pass (:func:`forward_sweep`) ``chunk`` columns at a time.

    With more than ``chunk`` samples the hidden layers live in buffers of ``chunk``
    columns the plan keeps (``plan.scratch``), so that evaluating a whole data set does
    not fault in fresh pages for every layer (per-epoch losses on the 1,437 digits,
    [64,128,128,10]: 4.8 ms as one sweep, 1.9 ms in chunks of 512); up to ``chunk``
    samples it is one sweep. ``X`` may be any strided view (a transposed matrix of rows
    included): each chunk is read where it lies. Chunks agree with one whole sweep to
    rounding (BLAS may order a product's sums differently for other widths).

    Examples
    --------
    >>> import numpy as np
    >>> import graphsheaf.neural as gn
    >>> from graphsheaf.neural.kernels import forward_output
    >>> from graphsheaf.neural.plan import NetworkPlan
    >>> S = gn.neural_sheaf([np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]])],
    ...                     [np.zeros(2), np.zeros(1)])
    >>> forward_output(NetworkPlan(S), np.array([[2.0, -3.0, 0.5]]), chunk=2)
    array([[2. , 3. , 0.5]])
    """
    M = X.shape[1] if X.ndim == 2 else 0
    if M <= chunk:
        return forward_sweep(plan, X)[0][-1]
    k = plan.k
    out = np.empty((plan.W[k].shape[0], M))
    key = ("forward chunks", chunk)
    bufs = plan.scratch.get(key)
    if bufs is None:
        bufs = plan.scratch[key] = [(np.empty((w.shape[0], chunk)), np.empty((w.shape[0], chunk)))
                                    for w in plan.W[:k]]
    for s in range(0, M, chunk):
        c = min(chunk, M - s)
        forward_sweep(plan, X[:, s:s + c], z=[z[:, :c] for z, _ in bufs] + [out[:, s:s + c]],
                      a=[None] + [a[:, :c] for _, a in bufs])
    return out


def transposed_sweep(W, sigma, v, inject=None, *, yW=None, yR=None):
    """``δ_Ω⁻ᵀ`` on an output-side vector: the edge blocks ``y^W_ℓ``, ``y^R_ℓ``.

    ``y^W_{k+1} = v``, ``y^R_ℓ = W_{ℓ+1}ᵀ y^W_{ℓ+1}``, ``y^W_ℓ = σ_ℓ ⊙ y^R_ℓ``. With
    ``v = ∂U/∂z_{k+1}`` the affine blocks are backpropagation's deltas. ``v`` may carry
    extra axes after the feature axis (several rows per sample: shape (n, r, M) with
    ``sigma`` of shape (d, M)). ``inject(l, yW_l)`` may edit each affine block in
    place before it travels on (rows that start inside the network). ``yW``, ``yR``
    (lists of k arrays, one row per sample) receive the hidden blocks in place. The work
    is :func:`transposed_calls`'s.
    """
    k = len(sigma)
    yW = [None] * k + [v] if yW is None else list(yW) + [v]
    yR = [None] * k if yR is None else list(yR)
    for l in range(k - 1, -1, -1):
        shape = (W[l + 1].shape[1],) + v.shape[1:]
        if yR[l] is None:
            yR[l] = np.empty(shape)
        if yW[l] is None:
            yW[l] = np.empty(shape)
    run(transposed_calls(W, sigma, yW, yR, inject=inject))
    return yW, yR


def transposed_calls(W, sigma, yW, yR, inject=None):
    """:func:`transposed_sweep` as a list of argument-free calls bound to its arrays (see
    :func:`residual_calls`): ``yW`` (k + 1 arrays, the last the seed v) and ``yR`` (k
    arrays) receive the blocks."""
    k = len(sigma)
    calls = []
    for l in range(k - 1, -1, -1):
        y, r = yW[l + 1], yR[l]
        if y.ndim == 2 and y.shape[0] == 1:
            # one row: an outer product (np.dot's is the fastest, and exact)
            calls.append(partial(np.dot, W[l + 1].T, y, r))
        elif y.ndim == 2:
            calls.append(_product_call(W[l + 1].T, y, r))
        else:  # several rows per sample: one product over the flattened trailing axes
            calls.append(partial(np.dot, W[l + 1].T, y.reshape(y.shape[0], -1),
                                 r.reshape(r.shape[0], -1)))
        s = sigma[l]
        calls.append(partial(np.multiply, r, s if r.ndim == s.ndim else s[:, None, :], yW[l]))
        if inject is not None:
            calls.append(partial(inject, l, yW[l]))
    return calls


_ZEROS = {}


def _zeros(shape):
    """An array of zeros: shared and read-only for small shapes (up to 32 of them kept),
    fresh for large ones (a dict lookup: this runs once per layer of every sweep)."""
    z = _ZEROS.get(shape)
    if z is None:
        z = np.zeros(shape)
        if z.size <= 1 << 16 and len(_ZEROS) < 32:
            z.flags.writeable = False
            _ZEROS[shape] = z
    return z


def residuals(plan, z, a, r=None, q=None, *, augmented=None, bias=None, input_term=None):
    """Edge residuals ``r_ℓ = W_ℓ a_{ℓ-1} + b_ℓ - z_ℓ`` and ``q_ℓ = g_ℓ(z_ℓ) - a_ℓ``.

    ``r``, ``q`` are optional output lists (buffers reused by iterative callers).
    ``augmented = (blocks, a_aug)`` gives each layer's ``[W_ℓ | b_ℓ]`` and ``[a_{ℓ-1}; 1]``,
    so that the affine part is one product; ``bias`` the b_ℓ already repeated over the
    samples (fixed weights: the same sums, without NumPy's slower broadcasting loop);
    ``input_term`` the first edge's ``W_1 a_0 + b_1``, constant while the input is pinned
    and the weights are fixed. The work is :func:`residual_calls`'s.
    """
    if r is None:
        r = [np.empty_like(v) for v in z]
        q = [np.empty_like(v) for v in z[:plan.k]]
    run(residual_calls(plan, z, a, r, q, augmented=augmented, bias=bias,
                       input_term=input_term))
    return r, q


def run(calls):
    """Run bound calls in order (:func:`residual_calls`, :func:`force_calls`)."""
    for call in calls:
        call()


def residual_calls(plan, z, a, r, q, *, augmented=None, bias=None, input_term=None):
    """:func:`residuals` as a list of argument-free calls bound to these arrays; run in
    order (:func:`run`) they write ``r`` and ``q``.

    A flow whose arrays stay where they are (the stalks, the residual buffers, the
    parameters updated in place) binds them once and runs the list every step: the
    per-layer bookkeeping (layouts, gate kinds, views) is then paid once, not per step
    (a paper-mode step on [2,30,1] with 300 samples: about 4 µs of its 35). Outputs are
    bound as positional arguments (a keyword in a bound call costs 0.1-0.2 µs a call),
    except for ``np.maximum``, which deprecates a positional output.

    Examples
    --------
    The calls read the arrays when they run, so a stalk moved in place is seen:

    >>> import numpy as np
    >>> import graphsheaf.neural as gn
    >>> from graphsheaf.neural.kernels import residual_calls, run
    >>> from graphsheaf.neural.plan import NetworkPlan
    >>> plan = NetworkPlan(gn.neural_sheaf([np.array([[2.0]]), np.array([[1.0]])],
    ...                                    [np.zeros(1), np.zeros(1)]))
    >>> z, a = [np.zeros((1, 1)), np.zeros((1, 1))], [np.ones((1, 1)), np.zeros((1, 1))]
    >>> r, q = [np.empty((1, 1)), np.empty((1, 1))], [np.empty((1, 1))]
    >>> calls = residual_calls(plan, z, a, r, q)
    >>> run(calls); float(r[0][0, 0])  # W a - z = 2
    2.0
    >>> z[0] += 0.5; run(calls); float(r[0][0, 0]), float(q[0][0, 0])
    (1.5, 0.5)
    """
    W, b, k = plan.W, plan.b, plan.k
    calls = []
    for l in range(k + 1):
        if l == 0 and input_term is not None:
            calls.append(partial(np.subtract, input_term, z[0], r[0]))
            continue
        if augmented is not None:
            calls.append(_product_call(augmented[0][l], augmented[1][l], r[l]))
        else:
            calls.append(_product_call(W[l], a[l], r[l]))
            shift = bias[l] if bias is not None else b[l] if r[l].ndim == 1 else b[l][:, None]
            calls.append(partial(np.add, r[l], shift, r[l]))
        calls.append(partial(np.subtract, r[l], z[l], r[l]))
    relu = plan.gate_table().relu
    for l in range(k):
        if relu:  # (against a zero array: NumPy's scalar-broadcasting loop is twice as slow)
            calls.append(partial(np.maximum, z[l], _zeros(z[l].shape), out=q[l]))
        else:
            calls.append(partial(plan.gates[l].value, z[l], out=q[l]))
        calls.append(partial(np.subtract, q[l], a[l + 1], q[l]))
    return calls


def _product_call(A, B, out):
    """:func:`product` bound to its operands and output."""
    return partial(np.dot if out.flags.c_contiguous else np.matmul, A, B, out)


_SMALL = 512  # hidden layers of up to this many coordinates take heaviside's slopes


def hidden_forces(plan, z, r, q, Fz, Fa, last=True):
    """Minus the energy gradient in the hidden stalks, written into ``Fz``, ``Fa``.

    ``Fz[l] = r_l - σ_l(z_l) q_l`` (``Fz[k] = r_k``; the caller adds the output edge's
    term; ``last=False`` leaves ``Fz[k]`` to the caller), ``Fa[l] = q_{l-1} - W_lᵀ r_l`` for
    l = 1..k (``Fa[0]`` is not touched). At a kink the gate's tie rule picks σ, the
    authors' generalised gradient. ``q[l]`` may be ``Fa[l + 1]`` itself (the flows write
    the gate residuals into the force buffer): it is then turned into the force in place.
    The work is :func:`force_calls`'s.
    """
    run(force_calls(plan, z, r, q, Fz, Fa, last))


def force_calls(plan, z, r, q, Fz, Fa, last=True):
    """:func:`hidden_forces` as a list of argument-free calls bound to these arrays (see
    :func:`residual_calls`)."""
    W, k = plan.W, plan.k
    table = plan.gate_table()
    calls = []
    for l in range(k):
        F = Fz[l]
        if table.relu and z[l].size <= _SMALL:
            # the 0/1 slope written as floats by heaviside (its value at 0 is the tie rule),
            # then scaled by q: no bool-to-float casting loop (0.95 µs against 1.6 µs on 30
            # coordinates), but heaviside is not vectorised (19.5 µs against 6.5 µs on 9,000)
            calls.append(partial(np.heaviside, z[l], 0.0 if table.strict[0, 0] else 1.0, F))
            calls.append(partial(np.multiply, F, q[l], F))
        elif table.relu:  # the comparison written as floats, then scaled (0.5 µs less
            # than a bool mask times floats on 30 × 300, whose casting loop is slower)
            compare = np.greater if table.strict[0, 0] else np.greater_equal
            calls.append(partial(compare, z[l], 0.0, F))
            calls.append(partial(np.multiply, F, q[l], F))
        else:
            calls.append(partial(plan.gates[l].slope, z[l], out=F))
            calls.append(partial(np.multiply, F, q[l], F))
        calls.append(partial(np.subtract, r[l], F, F))
        if q[l] is not Fa[l + 1]:  # (a caller may have let q_l live in the force buffer)
            calls.append(partial(np.copyto, Fa[l + 1], q[l]))
        calls.append(_subtract_transposed_call(Fa[l + 1], W[l + 1], r[l + 1]))
    if last:
        calls.append(partial(np.copyto, Fz[k], r[k]))
    return calls


def _subtract_transposed_call(F, W, y):
    """``F -= Wᵀ y`` in place, bound to its arrays. On arrays of 512 entries or more
    this goes through BLAS on F's own memory (F's transpose is Fortran-ordered, so BLAS
    updates it where it lies), with no temporary for the product: one row in ``y`` (one
    output, or the last hidden layer of a one-output net) is a rank-one update (2.4 µs
    against 5.2 µs for a product and a subtraction on 30 × 300), several rows one
    ``dgemm`` with β = 1 (2.3 µs against 3.4 µs on 12 × 300 from 8 rows). Below that size
    the wrappers' overhead loses."""
    if F.size < 512 or F.ndim != 2 or not blas_ready(F) or y.dtype is not _F64 \
            or W.dtype is not _F64:
        return partial(_subtract_product, F, W, y)
    if y.shape[0] == 1:
        return partial(dger, -1.0, y[0], W[0], a=F.T, overwrite_a=True)
    if y.flags.c_contiguous and (W.flags.c_contiguous or 8 * W.size <= F.size):
        # (a strided W, a column block of [W | b], is copied by the wrapper: worth it
        # only while that copy is small against the update)
        return partial(dgemm, -1.0, y.T, W.T, beta=1.0, c=F.T, overwrite_c=True, trans_b=True)
    return partial(_subtract_product, F, W, y)


def _subtract_product(F, W, y):
    F -= np.dot(W.T, y) if y.shape[0] == 1 else W.T @ y  # (np.dot: the fastest outer product)


def _sq(x):
    """Sum of squares (a BLAS dot: cheaper than a reduction for the small arrays here)."""
    x = x.ravel()
    return float(x @ x)


def edge_square_norms(plan, r, q, d=None, *, per_sample=True):
    """``‖(δc)_e‖²`` of every edge: edge -> array (M,) (``per_sample=False``: batch sums).

    ``r``, ``q`` from :func:`residuals`; ``d`` the output edge's residual ``φ(z) - y``.
    """
    f = (lambda x: np.einsum("i...,i...->...", x, x)) if per_sample else _sq
    out = {e: f(x) for e, x in zip(plan.affine_edges, r)}
    out.update({e: f(x) for e, x in zip(plan.gate_edges, q)})
    if d is not None and plan.output_edge is not None:
        out[plan.output_edge] = f(d)
    return out
