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
from functools import lru_cache

import numpy as np

from .._repr import short_repr
from .kernels import forward_sweep, transposed_sweep
from .losses import L1, L2, Huber, SigmoidBCE

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


def exact_gradients(plan, X, Y, loss, gamma, max_passes=10, details=True):
    """Local rule at the equilibrium: ``∂E/∂W_ℓ / γ = r_ℓ a_{ℓ-1}ᵀ``, summed over samples.

    ``plan`` is the compiled network (:class:`~graphsheaf.neural.plan.NetworkPlan`).
    Returns ``(grads_W, grads_b, info)``; ``info["output"]`` is the network output at the
    current weights (the forward pass); ``details=False`` leaves out of ``info`` what costs
    a pass over the batch (``kinked``, ``mean_passes``, ``equilibrium_energy``).
    """
    if not details and plan.k == 1 and plan.W[1].shape[0] == 1:
        return _scalar_one_hidden_gradients(plan, X, Y, loss, gamma, max_passes)
    eq = batch_equilibrium(plan, X, Y, loss, gamma, max_passes, energy=details)
    gW = [r @ a.T for r, a in zip(eq.r, eq.a)]
    gb = [r.sum(axis=1) for r in eq.r]
    info = {"sweeps": eq.sweeps, "sample_sweeps": eq.sample_sweeps,
            "pattern_passes": int(eq.passes.max()),
            "unsettled": int(eq.unsettled.sum()), "output": eq.forward_output}
    if details:
        info.update(mean_passes=float(eq.passes.mean()), kinked=eq.kinked,
                    equilibrium_energy=float(eq.energy.sum()))
    return gW, gb, info


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
    pre-activations) and ``v_first`` (the first pass's output pull) are their columns.
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
            zs, acts = forward_sweep(plan, Xs, first=z_first[:, pos], sigma=sig, tau=tau)
            v0 = v_first if it == 1 else out["r"][k][:, pos]
            kink0 = P[:first_rows] < 0
            t0 = None if table.relu or not kink0.any() else table.split(table.kink_points(P))[0]
            z, a, r, energy = _fast_pass(plan, Ys, loss, gamma, zs, acts[1:], sig, sig2, kink0,
                                         t0, with_energy=with_energy, v0=v0)
            sweeps = n + 4
        else:
            z, a, r, energy, sweeps = _pattern_pass(plan, Xs, Ys, P, loss, gamma)
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


def _scalar_one_hidden_gradients(plan, X, Y, loss, gamma, max_passes):
    """:func:`exact_gradients` for one hidden layer and one output, without the cochain.

    With output weights w, the first pass (forward pattern, slopes σ) has r_1 = w ⊗ v ⊙ σ
    and a_1 = a_f - γ w ⊗ v ⊙ (1 + σ²), so the local rule r aᵀ reduces to products of
    the slopes with v, X and the forward activations; the samples with a neuron that
    left its region are solved again and their contributions exchanged.
    """
    W = plan.W
    table = plan.gate_table()
    w = W[1][0]
    zs, acts = forward_sweep(plan, X)
    M = X.shape[1]
    P0 = table.regions(zs[0])
    m = P0.view(bool).astype(float) if table.relu else table.sigma(P0)  # (ReLU: P0 is a 0/1 view)
    m2 = m if table.relu else m * m
    c2 = w * w
    K = (1.0 + c2.sum()) + c2 @ m2
    v = _output_dual(zs[1], Y, K, loss, gamma)
    vr = v[0]
    v2 = vr * vr
    gW = [w[:, None] * (m @ (X * vr).T), vr @ acts[1].T - gamma * w * (v2.sum() + m2 @ v2)]
    gW[1] = gW[1][None]
    gb = [w * (m @ vr), v.sum(axis=1)]
    info = {"sweeps": 4, "sample_sweeps": 4.0, "pattern_passes": 1, "unsettled": 0,
            "output": zs[1]}
    # the first pass moves z by -γ w v σ: the neurons that leave their region
    shift = (gamma * w)[:, None] * v
    if table.relu:  # only "on" neurons move: they leave when z < γ w v (z <= for a strict gate)
        wrong = (zs[0] <= shift) if table.strict[0, 0] else (zs[0] < shift)
        wrong &= P0.view(bool)
        z_eq = None
    else:
        shift *= m
        z_eq = zs[0] - shift
        wrong = table.regions(z_eq) != P0
    bad = np.flatnonzero(wrong.any(axis=0))
    if bad.size == 0:
        return gW, gb, info
    if max_passes < 2:
        info["unsettled"] = bad.size
        return gW, gb, info
    wrong = wrong[:, bad]
    Xb, vb = X[:, bad], v[:, bad]
    r1 = w[:, None] * (vb * m[:, bad])
    a1 = acts[1][:, bad] - gamma * w[:, None] * (vb * (1.0 + m2[:, bad]))
    res = _settle(plan, Xb, Y[:, bad], loss, gamma, P0[:, bad], wrong,
                  None if z_eq is None else z_eq[:, bad], zs[0][:, bad], vb, max_passes, False)
    # exchange the first pass's contributions of these samples for the settled ones
    r1_new, v_new, a1_new = res["r"][0], res["r"][1], res["a"][0]
    gW[0] += (r1_new - r1) @ Xb.T
    gb[0] += (r1_new - r1).sum(axis=1)
    gW[1] += v_new @ a1_new.T - vb @ a1.T
    gb[1] += (v_new - vb).sum(axis=1)
    info.update(sweeps=4 + res["sweeps"], sample_sweeps=4.0 + res["sample_sweeps"] / M,
                pattern_passes=int(res["passes"].max()), unsettled=int(res["unsettled"].sum()))
    return gW, gb, info


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
    K = _forward_pattern_gram(W, sig, sig2, n)
    v = _output_dual(zs[k], Y, K, loss, gamma, v0=v0)
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
            energy = 0.5 * gamma ** 2 * np.einsum("im,im->m", v, _apply(K, v))
    if kink0 is not None and kink0.any():
        held = zs[0] * kink0 if t0 is None else (zs[0] - t0) * kink0
        yW[0] = yW[0] + held / gamma
        z_eq[0] = z_eq[0] - held  # exactly at the breakpoint
        if with_energy:
            energy = energy + 0.5 * np.einsum("dm,dm->m", held, held)
    return z_eq, a_eq, yW, energy


def _forward_pattern_gram(W, sig, sig2, n):
    """K = G Gᵀ per sample for kink-free patterns with slopes ``sig`` (feature-major).

    The last hidden layer's rows of G are W_{k+1} scaled by the slopes, so its
    contribution is one product with the squared slopes ``sig2``; deeper layers
    propagate the n_out rows per sample. Returns shape (M,) when n_out = 1, else
    (M, n, n) or a :class:`_MaskedGram`.
    """
    k = len(sig)
    C = W[k]
    if k == 0:
        return np.ones(1) if n == 1 else np.eye(n)[None]
    M = sig[0].shape[1]
    # the last hidden layer's rows in closed form; deeper layers through the transposed sweep
    if n == 1:
        c2 = C[0] * C[0]
        K = (1.0 + c2.sum()) + c2 @ sig2[k - 1]
        if k > 1:
            yW, yR = transposed_sweep(W[:k], sig[:k - 1], C.T * sig[k - 1])
            for Y in yR + yW[:k - 1]:
                K += np.einsum("dm,dm->m", Y, Y)
        return K
    if k == 1:
        return _MaskedGram(C, sig2[0])
    Q = (C[:, None, :] * C[None, :, :]).reshape(n * n, -1)
    K = (Q @ sig2[k - 1]).T.reshape(M, n, n) + (np.eye(n) + C @ C.T)
    yW, yR = transposed_sweep(W[:k], sig[:k - 1], C.T[:, :, None] * sig[k - 1][:, None, :])
    for Y in yR + yW[:k - 1]:
        Yt = np.ascontiguousarray(Y.transpose(2, 1, 0))  # (M, n, d): one Gram product per sample
        K += Yt @ Yt.transpose(0, 2, 1)
    return K


class _MaskedGram:
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


# ------------------------------------------------------------ kinks in deeper layers

def _pattern_pass(plan, X, Y, P, loss, gamma):
    """One solve for any pattern ``P`` (stacked (H, B) states) with kinks anywhere.

    Kinks below the first hidden layer couple to everything beneath them, so each
    adds a row to the Gram matrix; the r = n_out + (kinks) rows of every sample go
    through one batched transposed sweep, a kink's row starting at its own affine
    edge. Returns the solved z, hidden a, r = residual/γ (feature-major lists),
    energy and sweeps.
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
    starts = np.concatenate([[0], np.cumsum(table.sizes)])
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
    # Gram matrix of the rows on every edge (the output's own affine edge gives the identity)
    gram = np.zeros((B, r, r))
    gram[:, np.arange(n), np.arange(n)] = 1.0
    for Yl in yW[:k] + yR:
        Yt = np.ascontiguousarray(Yl.transpose(2, 1, 0))
        gram += Yt @ Yt.transpose(0, 2, 1)
    pad_b, pad_c = np.nonzero(np.arange(q)[None, :] >= count[:, None])
    gram[pad_b, n + pad_c, n + pad_c] = 1.0  # unused kink slots: μ = 0
    Kgh = gram[:, :n, n:]
    sol = np.linalg.solve(gram[:, n:, n:], np.concatenate([gram[:, n:, :n], h[:, n:, None]], axis=2))
    Kp = gram[:, :n, :n] - Kgh @ sol[:, :, :n]
    z0 = zf[k] - (Kgh @ sol[:, :, n:])[:, :, 0].T
    v = _output_dual(z0, Y, Kp[:, 0, 0] if n == 1 else Kp, loss, gamma)
    nu = np.empty((r, B))
    nu[:n] = gamma * v
    nu[n:] = (sol[:, :, n] - (sol[:, :, :n] @ (gamma * v).T[:, :, None])[:, :, 0]).T
    sW = [-np.einsum("rb,drb->db", nu, y) for y in yW]
    sR = [-np.einsum("rb,drb->db", nu, y) for y in yR]
    # forward sweep of the residuals: the solved cochain
    u, ua = forward_sweep(plan, None, sigma=sig, edge=(sW, sR), bias=False)
    zs = [zf[l] + u[l] for l in range(k + 1)]
    acts = [af[l + 1] + ua[l + 1] for l in range(k)]
    for l in range(k):
        zs[l][kink[l]] = t_k[l][kink[l]]  # held exactly, not up to rounding
    energy = 0.5 * sum(np.einsum("db,db->b", s, s) for s in sW + sR)
    return zs, acts, [-s / gamma for s in sW], energy, r + 2


# ------------------------------------------------------------- the output problem

def _apply(K, v):
    """K v per sample; K is (M,) for one output, (M, n, n) or a _MaskedGram; v is (n, M)."""
    if isinstance(K, _MaskedGram):
        return K.apply(v)
    if K.ndim == 1:
        return K * v
    return (K @ v.T[:, :, None])[:, :, 0].T


def _output_dual(z0, Y, K, loss, gamma, tol=1e-14, fixed_point=30, newton=50, v0=None):
    """Solve ``v = ∇U(z0 - γ K v)`` per sample (columns); ``λ = γ v`` is the output pull.

    L2 is linear (closed form for one output); L1 with one output is a clipped ratio.
    Otherwise the fixed point iteration runs while it contracts (γ‖K‖ times the
    curvature of U is small, the usual case) and damped Newton finishes.
    """
    n = z0.shape[0]
    if type(loss) is L2:
        if n == 1:
            return (z0 - Y) / (1.0 + gamma * K)
        if isinstance(K, _MaskedGram):
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
        nxt = loss.grad(z0 - gamma * _apply(K, v), Y)
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
    if isinstance(K, _MaskedGram):
        K = K.dense()
    Kb = K[:, None, None] if K.ndim == 1 else K
    eye = np.eye(n)

    def slope(v, step):  # directional derivative of ψ / γ along step
        F = v - loss.grad(z0 - gamma * _apply(K, v), Y)
        return np.einsum("im,im->m", step, _apply(K, F))

    for _ in range(iters):
        z = z0 - gamma * _apply(K, v)
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
