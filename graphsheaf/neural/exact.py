"""The exact fast phase: the pinned equilibrium of a training batch, found by sweeps.

With the input pinned, a cochain of the neural sheaf is fixed by its edge residuals
``s`` (``s^W_ℓ`` on the affine edges, ``s^R_ℓ`` on the gate edges)::

    z_ℓ = W_ℓ a_{ℓ-1} + b_ℓ + s^W_ℓ,        a_ℓ = σ_ℓ ⊙ z_ℓ + τ_ℓ + s^R_ℓ,

which is the unitriangular solve with δ_Ω (Lemma 3.2). The fast phase minimises, per
sample, ``E(s) = ½‖s‖² + γ U(z_out; y)`` where every hidden neuron is in a region of
its piecewise-linear gate (slope σ, intercept τ; for ReLU *on* σ = 1 or *off* σ = 0)
or held at one of its breakpoints t (a *kink*: σ = 0, τ = g(t), and z = t a linear
constraint on s; see :mod:`.pinning`). For a fixed pattern the output ``z_out = f + G s`` and the kink
coordinates ``h + H s`` are affine in s, and the minimiser is::

    s = -Gᵀλ - Hᵀμ,     λ = γ ∇U(z_out),     H s = -h.

with ``h`` the kink coordinates' distance from their breakpoints at the pattern's
forward sweep. Everything reduces to the Gram matrix of the rows of [G; H] (``n_out``
+ number of kinks transposed sweeps) and a problem of size ``n_out`` per sample::

    v = ∇U(f + c - γ K' v),   K' = K_GG - K_GH K_HH⁻¹ K_HG,   c = -K_GH K_HH⁻¹ h,

with λ = γ v. The first pass takes the forward pass's pattern for every sample and
needs no kinks; its Gram matrix comes from one small product per layer. The
patterns are then checked with the three-state rules and only the samples that
moved are solved again, all of them at once.
"""

from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np

from .._repr import short_repr
from .kernels import forward_calls, forward_sweep, product, run, transposed_sweep
from .duals import apply_gram, output_dual, pattern_gram, seed_gram_calls

__all__ = ["BatchEquilibrium", "batch_equilibrium", "exact_gradients"]


@dataclass
class BatchEquilibrium:
    """The pinned equilibrium of a batch (samples as columns).

    Attributes
    ----------
    z : list of arrays
        Pre-activations z_1 … z_{k+1} at the equilibrium.
    a : list of arrays
        Activations a_0 = X, a_1 … a_k at the equilibrium.
    r : list of arrays
        Affine-edge residuals divided by the stiffness, ``(W_ℓ a_{ℓ-1} + b_ℓ - z_ℓ) / γ``:
        the local weight gradient is ``r_ℓ a_{ℓ-1}ᵀ``.
    pattern : list of int8 arrays
        Per hidden layer and sample: the region (ReLU: 1 on, 0 off) or -(j + 1) when
        held at breakpoint j (ReLU: -1, the kink).
    energy : array (M,) or None
        ½‖s‖² per sample: the edge discrepancy left at the equilibrium.
    passes : array (M,)
        Pattern passes per sample.
    sweeps : int
        Applications of δ_Ω⁻¹ or δ_Ω⁻ᵀ to a batch of cochains (the Gram matrices count
        one sweep per row), every pass counted in full however few samples it solves.
    sample_sweeps : float
        The same, each pass weighted by the share of the samples it solves: the work
        per sample, comparable with an Euler step's two sweeps.
    unsettled : array of bool (M,)
        Samples whose pattern cycled or was still changing after ``max_passes``.
    """

    def __repr__(self):
        return short_repr(self)

    z: list
    a: list
    r: list
    pattern: list
    energy: np.ndarray
    passes: np.ndarray
    sweeps: int
    unsettled: np.ndarray
    sample_sweeps: float = 0.0
    forward_output: np.ndarray = None

    @property
    def kinked(self):
        """Samples with at least one neuron at its kink."""
        if not self.pattern:
            return 0
        return int((np.concatenate(self.pattern) < 0).any(axis=0).sum())


def exact_gradients(plan, X, Y, loss, gamma, max_passes=10, details=True, out=None):
    """Local rule at the equilibrium: ``∂E/∂W_ℓ / γ = r_ℓ a_{ℓ-1}ᵀ``, summed over samples.

    ``plan`` is the compiled network (:class:`~graphsheaf.neural.plan.NetworkPlan`).
    Returns ``(grads_W, grads_b, info)``; ``info["output"]`` is the network output at the
    current weights (the forward pass); ``details=False`` leaves out of ``info`` what costs
    a pass over the batch (``kinked``, ``mean_passes``, ``equilibrium_energy``). ``out``
    (two lists of arrays of the gradients' shapes, e.g. views of an optimiser's flat
    buffer) receives the gradients, which are then those arrays.
    """
    if not details and plan.k and plan.gate_table().relu:
        r, acts, info = _relu_gradients(plan, X, Y, loss, gamma, max_passes)
    else:
        eq = batch_equilibrium(plan, X, Y, loss, gamma, max_passes, energy=details)
        r, acts, info = eq.r, eq.a, None
    gW, gb = out if out is not None else ([None] * len(r), [None] * len(r))
    gW = [product(x, a.T, out=o) for x, a, o in zip(r, acts, gW)]
    # Σ_m r_m as one BLAS product with ones (0.6 µs against 2.8 µs for np.sum on 32 × 32)
    ones = _ones(X.shape[1])
    gb = [product(x, ones, out=o) for x, o in zip(r, gb)]
    if info is not None:
        return gW, gb, info
    info = {"sweeps": eq.sweeps, "sample_sweeps": eq.sample_sweeps,
            "pattern_passes": int(eq.passes.max()),
            "unsettled": int(eq.unsettled.sum()), "output": eq.forward_output}
    if details:
        info.update(mean_passes=float(eq.passes.mean()), kinked=eq.kinked,
                    equilibrium_energy=float(eq.energy.sum()))
    return gW, gb, info


@lru_cache(maxsize=16)
def _ones(M):
    """A read-only array of M ones (the local rule's sums), made once per batch size."""
    ones = np.ones(M)
    ones.flags.writeable = False
    return ones


@lru_cache(maxsize=16)
def _hash_weights(size):
    return np.random.default_rng(size).integers(1, 2 ** 63, size, dtype=np.uint64)


def _pattern_keys(P):
    """A 64-bit hash of each column's pattern (states -J..J)."""
    return _hash_weights(P.shape[0]) @ (P.astype(np.int64) + 128).astype(np.uint64)


def _stack(xs):
    return xs[0] if len(xs) == 1 else np.concatenate(xs)


def _pattern_arrays(table, P):
    """Per-layer slopes σ, squared slopes, intercepts τ (None entries when all zero)."""
    sig = table.split(table.sigma(P))
    sig2 = sig if table.relu else [s * s for s in sig]
    tau = table.tau(P)
    return sig, sig2, (table.split(tau) if tau is not None else None)


def _crossed_kinks(table, P, z, wrong):
    """States of the neurons ``wrong`` set to the kink their z crossed (from region r:
    breakpoint r-1 below, r above)."""
    if table.relu:
        return np.where(wrong, np.int8(-1), P)
    r = P.astype(np.intp)
    lo = np.where(r > 0, np.take_along_axis(table.bp, np.maximum(r - 1, 0), axis=1), -np.inf)
    code = np.where(z <= lo, -r, -r - 1)
    return np.where(wrong, code, P).astype(np.int8)


def batch_equilibrium(plan, X, Y, loss, gamma, max_passes=10, energy=True):
    """Minimise ``½‖δc‖² + γ U(z_out; y)`` per sample (columns of X, Y), input pinned.

    Returns a :class:`BatchEquilibrium` (``energy=False``: its ``energy`` is None).
    """
    W, k = plan.W, plan.k
    n, M = W[k].shape[0], X.shape[1]
    table = plan.gate_table()
    zs, acts = forward_sweep(plan, X)
    P0 = table.regions(_stack(zs[:k])) if k else np.zeros((0, M), dtype=np.int8)
    sig, sig2, _ = _pattern_arrays(table, P0) if k else ([], [], None)
    z, a, r, e = _fast_pass(plan, Y, loss, gamma, zs, acts[1:], sig, sig2, with_energy=energy)
    eq = BatchEquilibrium(z=z, a=[X] + a, r=r, pattern=table.split(P0) if k else [],
                          energy=e, passes=np.ones(M, dtype=int), sweeps=n + 3,
                          unsettled=np.zeros(M, dtype=bool), sample_sweeps=float(n + 3),
                          forward_output=zs[k])
    if k == 0:
        return eq
    # a neuron whose z left the part of its region the gate's tie rule gives it goes to the
    # kink it crossed
    zc = _stack(z[:k])
    wrong = table.regions(zc) != P0
    bad = np.flatnonzero(wrong.any(axis=0))
    if bad.size == 0:
        return eq
    if max_passes < 2:
        eq.unsettled[bad] = True
        return eq
    res = _settle(plan, X[:, bad], Y[:, bad], loss, gamma, P0[:, bad], wrong[:, bad],
                  zc[:, bad], zs[0][:, bad], r[k][:, bad], max_passes, energy)
    eq.sweeps += res["sweeps"]
    eq.sample_sweeps += res["sample_sweeps"] / M
    eq.passes[bad] = res["passes"]
    eq.unsettled[bad] = res["unsettled"]
    for l in range(k + 1):
        eq.z[l][:, bad] = res["z"][l]
        eq.r[l][:, bad] = res["r"][l]
        if l < k:
            eq.a[l + 1][:, bad] = res["a"][l]
            eq.pattern[l][:, bad] = res["pattern"][l]
    if energy:
        eq.energy[bad] = res["energy"]
    return eq


def _settle(plan, X, Y, loss, gamma, P, wrong, z_eq, z_first, v_first, max_passes, with_energy):
    """The active-set loop for the samples whose forward pattern was inconsistent.

    ``X``, ``Y``, ``P`` (their forward patterns, stacked), ``wrong`` (their neurons out of
    their regions), ``z_eq`` (stacked hidden z of the first pass), ``z_first`` (first-layer
    pre-activations, or None to compute them) and ``v_first`` (the first pass's output
    pull) are their columns.
    Returns their solved columns (``z``, ``a``, ``r``, ``pattern`` lists, ``energy``),
    ``passes``, ``unsettled``, and the ``sweeps`` (and sweep-samples) spent.
    """
    W, k = plan.W, plan.k
    table = plan.gate_table()
    n, B = W[k].shape[0], X.shape[1]
    out = {"passes": np.ones(B, dtype=int), "unsettled": np.zeros(B, dtype=bool), "sweeps": 0,
           "sample_sweeps": 0}
    solved = [(np.arange(B), P)]  # patterns solved so far, for cycle checks (P is not written)
    P = _crossed_kinks(table, P, z_eq, wrong)
    first_rows = table.sizes[0]
    pos = np.arange(B)
    for it in range(1, max_passes):
        solved.append((pos, P))
        Xs, Ys = (X, Y) if pos.size == B else (X[:, pos], Y[:, pos])
        if k == 1 or not (P[first_rows:] < 0).any():  # kinks only in the first hidden layer
            sig, sig2, tau = _pattern_arrays(table, P)
            first = None if z_first is None else z_first[:, pos]
            zs, acts = forward_sweep(plan, Xs, first=first, sigma=sig, tau=tau)
            v0 = v_first if it == 1 else out["r"][k][:, pos]
            kink0 = P[:first_rows] < 0
            t0 = None if table.relu or not kink0.any() else table.split(table.kink_points(P))[0]
            z, a, r, energy = _fast_pass(plan, Ys, loss, gamma, zs, acts[1:], sig, sig2, kink0,
                                         t0, with_energy=with_energy, v0=v0)
            sweeps = n + 4
        else:
            z, a, r, energy, sweeps = _pattern_pass(plan, Xs, Ys, P, loss, gamma, with_energy)
        out["sweeps"] += sweeps
        out["sample_sweeps"] += sweeps * pos.size
        out["passes"][pos] += 1
        if it == 1:  # every sample: the pass's own arrays are the result so far
            out.update(z=z, a=a, r=r, energy=energy, final=P.copy())  # P stays in `solved`
        else:
            for l in range(k + 1):
                out["z"][l][:, pos] = z[l]
                out["r"][l][:, pos] = r[l]
                if l < k:
                    out["a"][l][:, pos] = a[l]
            out["final"][:, pos] = P
            if with_energy:
                out["energy"][pos] = energy
        # the region/kink rules; at a kink the affine edge's own slope is z - W a - b = -γ r
        P, moved = table.transition(P, _stack(z[:k]), -gamma * _stack(r[:k]), _stack(a))
        moved = np.flatnonzero(moved.any(axis=0))
        if moved.size == 0:
            pos = pos[:0]
            break
        # a sample whose new pattern was solved before is cycling: it stays unsettled
        keys = _pattern_keys(P[:, moved])
        seen = np.zeros(moved.size, dtype=bool)
        for pos_t, P_t in solved:
            seen |= _pattern_keys(P_t[:, np.searchsorted(pos_t, pos[moved])]) == keys
        out["unsettled"][pos[moved[seen]]] = True
        go = moved[~seen]
        pos, P = pos[go], P[:, go]
        if pos.size == 0:
            break
    out["unsettled"][pos] = True
    out["pattern"] = table.split(out["final"])
    return out


def _relu_pass(plan, X, Y, loss, gamma, on=None):
    """One kink-free pass of a ReLU chain on stacked hidden arrays.

    ``on`` (bool, (H, M)) fixes each neuron on or off; by default the forward pass's
    pattern. The hidden layers' z and a live in one (H, M) array each, so that the
    slopes, the pattern check and the equilibrium shift are one operation for all
    layers. With one output the rows of G are one transposed sweep from the seed 1 (the
    sweep from v is that one scaled by v per sample), so a pass costs the forward sweep,
    one transposed sweep and the tangent sweep of the residuals; with several outputs
    the Gram matrix is :func:`.duals.pattern_gram`'s. The sweeps run as calls bound once
    to the plan's scratch arrays for this batch size (:class:`_Pass`). Returns ``(r, acts,
    Z, on, v, f)``: residuals/γ per affine edge, the equilibrium's activations (``acts[0]``
    is X), its stacked hidden z, the pattern, the output pull v and the pattern's output
    f -- views of the scratch arrays, valid until the next pass of this kind and size.
    """
    W, k = plan.W, plan.k
    n, M = W[k].shape[0], X.shape[1]
    ws = _scratch(plan, M, "first" if on is None else "again")
    p = ws.bound(plan, X.shape[0], n, on is None)
    np.copyto(p.X, X)
    if on is not None:
        np.copyto(ws.slope, on)
    run(p.forward)
    if on is None:
        run(p.pattern)
        on = ws.on
    f = p.f
    if n == 1:  # K = ‖G‖² per sample; the residuals are the seed's rows scaled by v
        run(p.gram)
        v = output_dual(f, Y, p.K, loss, gamma)
        ws.rows *= v  # (YW and YR)
    else:  # several outputs: the residuals are combinations of the Gram matrix's rows
        K, blocks = pattern_gram(W, ws.slopes, ws.slopes, n, rows=True, buffers=ws.gram)
        v = output_dual(f, Y, K, loss, gamma)
        vt = v.T[:, None, :]
        for Rt, q in zip(blocks, p.q):
            np.copyto(q, np.matmul(vt, Rt)[:, 0, :].T)
        product(W[k].T, v, out=p.q[k - 1])
        for s, x, r in zip(ws.slopes, p.q, p.r):
            np.multiply(s, x, out=r)
    # the tangent sweep u = δ_Ω⁻¹ (r, q): the equilibrium is the pattern's sweep - γ u
    run(p.tangent)
    ws.tangent *= -gamma  # (U and UA, then plus Zh and Ah)
    ws.tangent += ws.state
    return p.r + [v], [p.X] + ws.parts[5], ws.arrays[4], on, v, f


class _Pass:
    """The calls of one pass bound to a scratch's arrays: the forward sweep (at the
    gates, or at the scratch's slopes), the pattern check, the one-output Gram matrix
    and the tangent sweep of the residuals, with the input and output buffers they use.
    Built once per plan arrays, batch size and kind of pass: a [2,32,32,32,1] pass of 32
    samples spends about 10 µs less in per-layer bookkeeping than called sweeps."""

    def __init__(self, plan, ws, n_in, n, first):
        table, M = plan.gate_table(), ws.M
        z, a, yW, yR, u, ua = ws.parts
        self.X, self.f = np.empty((n_in, M)), np.empty((n, M))
        self.forward = forward_calls(plan, self.X, z + [self.f], [None] + a,
                                     sigma=None if first else ws.slopes)
        compare = np.greater if table.strict[0, 0] else np.greater_equal
        self.pattern = [partial(compare, ws.arrays[0], 0, ws.on),
                        partial(np.copyto, ws.slope, ws.on)]
        if n == 1:
            self.K = np.empty(M)
            self.gram = seed_gram_calls(plan.W, ws.slopes, (ws.rows, yW, yR, ws.tangent,
                                                            ws.sum_rows), ws.ones, self.K)
            self.r, self.q = yW, yR
        else:
            self.r = [np.empty_like(x) for x in z]
            self.q = [np.empty_like(x) for x in z]
        self.tangent = forward_calls(plan, None, u + [None], [None] + ua, sigma=ws.slopes,
                                     edge=(self.r + [None], self.q), bias=False, output=False)


class _Scratch:
    """The stacked (H, M) arrays of one ReLU pass (z, a, the seed rows of the affine and
    gate edges, the tangent sweep's z and a), a bool pattern and its 0/1 slopes as floats,
    and their per-layer views. (The slopes are copied to floats once per pass: every
    sweep multiplies by them, and a bool or int8 array times floats goes through a
    casting loop, 1.0-1.4 µs against 0.4-0.6 µs a product on these sizes.)"""

    def __init__(self, table, M):
        self.M = M
        self.arrays = np.empty((6, sum(table.sizes), M))
        self.parts = [table.split(x) for x in self.arrays]
        self.on = np.empty((self.arrays.shape[1], M), dtype=bool)
        # (z, a), the seed rows (YW, YR) and the tangent (U, UA) pairwise as single blocks
        self.state, self.rows, self.tangent = (self.arrays[i:i + 2].reshape(-1, M)
                                               for i in (0, 2, 4))
        self.slope = np.empty((self.arrays.shape[1], M))
        self.slopes = table.split(self.slope)
        self.ones = _ones(M)[None, :]  # the seed of the one-output transposed sweep (read only)
        self.sum_rows = np.ones(2 * self.arrays.shape[1])  # sums the stacked rows' squares
        self.gram = {}  # several outputs: the Gram matrices' and rows' buffers (pattern_gram)
        self._bound = (None, None)

    def bound(self, plan, n_in, n, first):
        """This scratch's :class:`_Pass`, bound again when the plan's weight or bias arrays
        are not the ones it was bound to (the calls hold those arrays themselves)."""
        key = plan.parameter_ids() + (n_in, n, first)
        if self._bound[0] != key:
            self._bound = (key, _Pass(plan, self, n_in, n, first))
        return self._bound[1]


def _scratch(plan, M, slot):
    """The plan's scratch arrays for batches of M samples (``slot`` keeps the first pass's
    arrays alive while a later pass on other samples runs)."""
    key = ("relu pass", slot, M)
    ws = plan.scratch.get(key)
    if ws is None:
        ws = _Scratch(plan.gate_table(), M)
        if ws.arrays.nbytes <= _SCRATCH_BYTES:  # (large batches: not kept between calls)
            if len(plan.scratch) > 8:
                plan.scratch.clear()
            plan.scratch[key] = ws
    return ws


_SCRATCH_BYTES = 64 << 20


def _relu_gradients(plan, X, Y, loss, gamma, max_passes):
    """The equilibrium's residuals/γ and activations ``(r, acts, info)`` for
    :func:`exact_gradients` on ReLU chains: lean passes, then the general rules.

    The first pass takes the forward pattern (:func:`_relu_pass`). A neuron that left
    its region is tried first in the region it crossed into, another kink-free pass for
    those samples only; where that pattern is consistent it is the equilibrium (its one
    neuron's energy profile along z, a convex piece on each side of 0, then has its
    minimum inside the new region, which is where the three-state rules lead through the
    kink). Samples where the flipped pattern is inconsistent too, and samples with a
    crossed neuron in the first hidden layer (whose flip cannot hold, see
    :func:`_resolve`), go to the active-set loop (:func:`_settle`) from their forward
    pattern, exactly as in :func:`batch_equilibrium`.
    Each stage overwrites its samples' columns; the local rule is summed once at the end.
    """
    k = plan.k
    n = plan.W[k].shape[0]
    strict = plan.gate_table().strict[0, 0]
    r, acts, U, on, v, f = _relu_pass(plan, X, Y, loss, gamma)
    info = {"sweeps": n + 3, "sample_sweeps": float(n + 3), "pattern_passes": 1,
            "unsettled": 0, "output": f.copy()}  # (f is the pass's buffer)
    wrong = ((U > 0) if strict else (U >= 0)) != on
    bad = np.flatnonzero(wrong.any(axis=0)) if wrong.any() else None
    if bad is not None and max_passes < 2:
        info["unsettled"] = bad.size
    elif bad is not None:
        _resolve(plan, X, Y, loss, gamma, max_passes, r, acts, U, on, v, wrong, bad, info)
    return r, acts, info


def _resolve(plan, X, Y, loss, gamma, max_passes, r, acts, U, on, v, wrong, bad, info):
    """Solve the samples ``bad`` again and write their columns of ``r`` and ``acts``."""
    k = plan.k
    n, M = plan.W[k].shape[0], X.shape[1]
    strict = plan.gate_table().strict[0, 0]
    if bad.size == 1:  # (usually one sample: a slice reads and writes its column as views,
        bad = slice(int(bad[0]), int(bad[0]) + 1)  # several times cheaper than an index array)
    v_first = v[:, bad].copy()  # (v is r[k], whose columns are overwritten below)
    B = v_first.shape[1]

    def write(cols, r_new, acts_new):
        for l in range(k + 1):
            r[l][:, cols] = r_new[l]
            if l:
                acts[l][:, cols] = acts_new[l - 1]

    worse = np.arange(B)
    # a first-hidden-layer neuron's z moves only with its own affine edge, which carries no
    # residual once the neuron is off: flipped off, its z is the forward pass's (≥ 0) again,
    # so a sample with such a neuron goes to the general rules without the flipped pass
    # (on [2,30,1] every re-solved sample; off -> on cannot happen in that layer)
    trial = np.flatnonzero(~wrong[:plan.gate_table().sizes[0], bad].any(axis=0))
    if max_passes >= 3 and trial.size:
        cols = bad if trial.size == B else bad[trial]
        flipped = on[:, cols] ^ wrong[:, cols]
        r2, acts2, U2, _, _, _ = _relu_pass(plan, X[:, cols], Y[:, cols], loss, gamma, on=flipped)
        write(cols, r2, acts2[1:])
        info.update(sweeps=2 * (n + 3), sample_sweeps=n + 3 + (n + 3) * trial.size / M,
                    pattern_passes=2)
        wrong2 = ((U2 > 0) if strict else (U2 >= 0)) != flipped
        if not wrong2.any() and trial.size == B:
            return
        left = np.ones(B, dtype=bool)
        left[trial[~wrong2.any(axis=0)]] = False  # (the flipped pattern held)
        worse = np.flatnonzero(left)
    # the general rules from the forward pattern, as if the flip had not been tried
    cols = bad if isinstance(bad, slice) else bad[worse]
    res = _settle(plan, X[:, cols], Y[:, cols], loss, gamma, on.view(np.int8)[:, cols],
                  wrong[:, cols], U[:, cols], None, v_first[:, worse], max_passes, False)
    write(cols, res["r"], res["a"])
    info.update(sweeps=info["sweeps"] + res["sweeps"],
                sample_sweeps=info["sample_sweeps"] + res["sample_sweeps"] / M,
                pattern_passes=max(2, int(res["passes"].max())),
                unsettled=int(res["unsettled"].sum()))


# ------------------------------------------------------ fixed regions (+ first-layer kinks)

def _fast_pass(plan, Y, loss, gamma, zs, acts, sig, sig2, kink0=None, t0=None, with_energy=True,
               v0=None):
    """Solve for patterns whose kinks, if any, are all in the first hidden layer.

    ``zs``, ``acts`` (hidden layers) are the forward sweep at the pattern, ``sig`` its
    slopes (kinks as 0) and ``sig2`` their squares; feature-major arrays; ``v0`` a
    starting guess for the output pull (a previous pass's). A first-layer kink sees
    only the pinned input, so holding its z at its breakpoint ``t0`` costs a fixed
    residual ``t0 - z_f`` on its own affine edge and nothing else: it decouples, and
    the Gram matrix keeps its kink-free form.
    Returns the solved z (list), hidden a (list), r = residual/γ (list), energy (or None
    without ``with_energy``).
    """
    W, k = plan.W, plan.k
    n = W[k].shape[0]
    K = pattern_gram(W, sig, sig2, n)
    v = output_dual(zs[k], Y, K, loss, gamma, v0=v0)
    # one transposed sweep with v gives Gᵀv = -s/γ
    yW, yR = transposed_sweep(W, sig, v)
    # one forward sweep: u = δ_Ω⁻¹ Gᵀv, and the equilibrium is the pattern's forward sweep - γ u
    # (in place: these are the largest arrays of a training step)
    u, ua = forward_sweep(plan, None, sigma=sig, edge=(yW, yR), bias=False)
    z_eq, a_eq = [], []
    for l in range(k + 1):
        u[l] *= -gamma
        u[l] += zs[l]
        z_eq.append(u[l])
        if l < k:
            ua[l + 1] *= -gamma
            ua[l + 1] += acts[l]
            a_eq.append(ua[l + 1])
    energy = None
    if with_energy:  # ½‖s‖² = ½γ² vᵀKv
        if n == 1:
            energy = 0.5 * gamma ** 2 * K * v[0] ** 2
        else:
            energy = 0.5 * gamma ** 2 * np.einsum("im,im->m", v, apply_gram(K, v))
    if kink0 is not None and kink0.any():
        held = zs[0] * kink0 if t0 is None else (zs[0] - t0) * kink0
        yW[0] = yW[0] + held / gamma
        z_eq[0] = z_eq[0] - held  # exactly at the breakpoint
        if with_energy:
            energy = energy + 0.5 * np.einsum("dm,dm->m", held, held)
    return z_eq, a_eq, yW, energy


# ------------------------------------------------------------ kinks in deeper layers

def _pattern_pass(plan, X, Y, P, loss, gamma, with_energy=True):
    """One solve for any pattern ``P`` (stacked (H, B) states) with kinks anywhere.

    Kinks below the first hidden layer couple to everything beneath them, so each
    adds a row to the Gram matrix; the r = n_out + (kinks) rows of every sample go
    through one batched transposed sweep, a kink's row starting at its own affine
    edge. Returns the solved z, hidden a, r = residual/γ (feature-major lists),
    energy (None without ``with_energy``) and sweeps.
    """
    W, k = plan.W, plan.k
    table = plan.gate_table()
    B, n = X.shape[1], W[k].shape[0]
    sig, _, tau = _pattern_arrays(table, P)
    zf, af = forward_sweep(plan, X, sigma=sig, tau=tau)  # a kink passes only g(t) on
    kinkP = P < 0
    kink = table.split(kinkP)
    t_k = table.split(table.kink_points(P))
    count = kinkP.sum(axis=0)
    q = int(count.max())
    r = n + q
    row = np.cumsum(kinkP, axis=0) + (n - 1)  # G rows first, then one row per kink
    starts = table.starts
    h = np.zeros((B, r))  # the kink coordinates' distance from their breakpoints

    def inject(l, Yw):  # Yw: (d_l, r, B); z_j = ... + s^W_j, and nothing above depends on it
        j, bi = np.nonzero(kink[l])
        if j.size:
            rows = row[starts[l] + j, bi]
            Yw[j, rows, bi] = 1.0
            h[bi, rows] = zf[l][j, bi] - t_k[l][j, bi]

    v0 = np.zeros((n, r, B))
    v0[np.arange(n), np.arange(n), :] = 1.0
    yW, yR = transposed_sweep(W, sig, v0, inject=inject)
    # the rows on every hidden edge stacked (affine edges, then gate edges): one product
    # for the Gram matrix and one for the residuals instead of one per edge
    rows = np.concatenate(yW[:k] + yR)  # (2H, r, B)
    Yt = np.ascontiguousarray(rows.transpose(2, 1, 0))
    gram = Yt @ Yt.transpose(0, 2, 1)
    gram.reshape(B, r * r)[:, :n * (r + 1):r + 1] += 1.0  # the output's own affine edge
    if count.min() < q:  # unused kink slots (samples with fewer kinks): μ = 0
        pad_b, pad_c = np.nonzero(np.arange(q)[None, :] >= count[:, None])
        gram[pad_b, n + pad_c, n + pad_c] = 1.0
    Kgh = gram[:, :n, n:]
    rhs = np.concatenate([gram[:, n:, :n], h[:, n:, None]], axis=2)
    # (one kink per sample, the usual case: a division, without LAPACK's batched solve)
    sol = rhs / gram[:, n:, n:] if q == 1 else np.linalg.solve(gram[:, n:, n:], rhs)
    Kp = gram[:, :n, :n] - Kgh @ sol[:, :, :n]
    z0 = zf[k] - (Kgh @ sol[:, :, n:])[:, :, 0].T
    v = output_dual(z0, Y, Kp[:, 0, 0] if n == 1 else Kp, loss, gamma)
    nu = np.empty((r, B))
    nu[:n] = gamma * v
    nu[n:] = (sol[:, :, n] - (sol[:, :, :n] @ (gamma * v).T[:, :, None])[:, :, 0]).T
    # the residuals s = -(rows)ᵀν on every edge: the hidden ones in one product
    S = np.einsum("rb,drb->db", nu, rows)  # (2H, B): -s on the hidden edges
    S_out = np.einsum("rb,drb->db", nu, yW[k])  # -s on the output's affine edge
    H = S.shape[0] // 2
    # forward sweep of the residuals (linear: of -s, then subtracted): the solved cochain
    u, ua = forward_sweep(plan, None, sigma=sig, edge=(table.split(S[:H]) + [S_out],
                                                       table.split(S[H:])), bias=False)
    zs = [zf[l] - u[l] for l in range(k + 1)]
    acts = [af[l + 1] - ua[l + 1] for l in range(k)]
    for l in range(k):
        zs[l][kink[l]] = t_k[l][kink[l]]  # held exactly, not up to rounding
    energy = None
    if with_energy:
        energy = 0.5 * (np.einsum("db,db->b", S, S) + np.einsum("db,db->b", S_out, S_out))
    return zs, acts, table.split(S[:H] / gamma) + [S_out / gamma], energy, r + 2
