"""The neural algorithms on DAG sheaves: forward pass, boundary, local (exact-mode) and
backpropagation gradients, each computed from the compiled :class:`~.plan.DagPlan`."""

import numpy as np

from ...exceptions import SheafError
from .plan import DagPlan

__all__ = ["dag_backprop_gradients", "dag_boundary", "dag_forward", "dag_local_gradients",
           "dag_predict", "named"]


def as_columns(plan, X):
    X = np.asarray(X, dtype=float)
    n = plan.dims[plan.input]
    if X.ndim == 1 and X.size % n == 0:
        X = X.reshape(n, -1)
    if X.shape[0] != n:
        raise SheafError(f"X has shape {X.shape}; the input vertex {plan.input!r} has {n} coordinates "
                         "(samples are columns, an image flattened in (C, H, W) order)")
    if not np.all(np.isfinite(X)):
        raise SheafError("X has entries that are not finite")
    return X


def dag_forward(S, X):
    """Every vertex's full stalk ``[v; 1]`` at the forward pass (dict vertex -> (dim, M))."""
    plan = DagPlan(S)
    return plan.forward(as_columns(plan, X))


def dag_predict(S, X):
    """The output vertex's value at the forward pass, shape (n_out, M)."""
    plan = DagPlan(S)
    vals = plan.forward(as_columns(plan, X))
    return vals[plan.output][:-1]


def dag_boundary(S, X):
    """The pins of the forward pass: the input stalk ``[X; 1]`` and every vertex's constant 1
    (values of shape (dim,) for one input given as a vector, (dim, M) for columns)."""
    plan = DagPlan(S)
    one = np.ndim(X) == 1
    X = as_columns(plan, X)
    out = {plan.input: np.vstack([X, np.ones((1, X.shape[1]))])}
    for v in plan.order[1:]:
        out[v] = {plan.dims[v]: np.ones(X.shape[1])}
    if one:
        out = {v: (x[:, 0] if not isinstance(x, dict) else {k: float(c[0]) for k, c in x.items()})
               for v, x in out.items()}
    return out


def _targets(plan, Y, M):
    Y = np.asarray(Y, dtype=float).reshape(plan.dims[plan.output], -1)
    if Y.shape[1] != M:
        raise SheafError(f"Y has {Y.shape[1]} samples, X has {M}")
    return Y


def _gram_solve(plan, vals, e, gamma, tol=1e-9, max_iter=None):
    """Solve ``(I + γ J Jᵀ) s = e`` column by column (J: the output of δ_Ω⁻¹ at the forward
    state) by conjugate gradients; J Jᵀ p costs one transposed and one tangent sweep.

    The sweeps are linear in what they are given, so the edge adjoints ``(Jᵀ s)_e`` and the
    tangent ``δ_Ω⁻¹(Jᵀ s)`` of the solution are carried along as the same combinations of
    those of the search directions: no sweep is repeated after convergence. With one
    output J Jᵀ is a number per sample, the output of the tangent of Jᵀ 1, and the sweeps of
    s are those of 1 scaled per sample: two sweeps in all, no iteration.
    Returns ``(s, per_edge, tangent, iterations)``.
    """
    out = plan.output
    frozen = plan.freeze(vals)

    def sweeps(p):
        _, per_edge = plan.transposed(vals, {out: p}, frozen)
        return per_edge, plan.tangent(vals, per_edge, frozen)

    def axpy(dst, a, src):  # dst += a * src for dicts of (rows, M) arrays, a per column
        for k, v in src.items():
            dst[k] = dst[k] + a * v

    if e.shape[0] == 1:  # one output: J Jᵀ is a number per sample, read off the tangent of
        # Jᵀ 1 (the sweeps of any s are those of 1 scaled per sample): two sweeps, not four
        g_edge, g_tan = sweeps(np.ones_like(e))
        s = e / (1.0 + gamma * g_tan[out][:-1])
        return s, {k: v * s for k, v in g_edge.items()}, {k: v * s for k, v in g_tan.items()}, 0
    s = e.copy()
    s_edge, s_tan = sweeps(s)
    r = -gamma * s_tan[out][:-1]              # e − (I + γG) e
    p, p_edge, p_tan = r.copy(), None, None
    rr = np.einsum("ij,ij->j", r, r)
    scale = np.maximum(np.einsum("ij,ij->j", e, e), 1e-300)
    it = 0
    while it < (max_iter or e.shape[0] + 5):
        if np.all(rr <= tol ** 2 * scale):
            break
        it += 1
        p_edge, p_tan = sweeps(p)
        Ap = p + gamma * p_tan[out][:-1]
        alpha = rr / np.maximum(np.einsum("ij,ij->j", p, Ap), 1e-300)
        s += alpha * p
        axpy(s_edge, alpha, p_edge)
        axpy(s_tan, alpha, p_tan)
        r -= alpha * Ap
        rr_new = np.einsum("ij,ij->j", r, r)
        p = r + (rr_new / np.maximum(rr, 1e-300)) * p
        rr = rr_new
    return s, s_edge, s_tan, it


def nudged_equilibrium(plan, X, Y, gamma, energy=True):
    """The exact equilibrium with the input pinned and the output tied to Y by stiffness γ,
    at the forward pass's activation pattern (exact for γ below the first kink).

    With r the edge residuals, x = x_f + δ_Ω⁻¹ r and J = P δ_Ω⁻¹ (P reads the output), the
    energy ½‖r‖² + γ/2‖x_out − Y‖² is least at ``r = −γ Jᵀ s``, ``(I + γ J Jᵀ) s = e``, e the
    forward pass's output error. Returns ``(vals, adjoints, equilibrium, info)``: forward
    values, each edge's ``(Jᵀ s)_e = −r_e / γ``, the equilibrium's vertex values and
    solver information (with the equilibrium's energy unless ``energy=False``: a pass
    over every edge that training does not need).
    """
    vals = plan.forward(X)
    Y = _targets(plan, Y, X.shape[1])
    e = vals[plan.output][:-1] - Y
    s, per_edge, tan, iters = _gram_solve(plan, vals, e, gamma)
    eq = {v: vals[v] - gamma * tan[v] for v in vals}
    info = {"gram_iterations": iters}
    if energy:
        info["equilibrium_energy"] = \
            0.5 * gamma ** 2 * sum(float(np.sum(g * g)) for g in per_edge.values()) \
            + 0.5 * gamma * float(np.sum((eq[plan.output][:-1] - Y) ** 2))
    return vals, per_edge, eq, info


def dag_local_gradients(S, X, Y, *, gamma=1e-3, by_name=False):
    """Exact-mode gradients: the local rule ``−r_e ū_eᵀ / γ`` of every parameter edge at the
    nudged equilibrium, summed over the samples and over the positions that share a weight."""
    plan = DagPlan(S)
    X = as_columns(plan, X)
    _, per_edge, eq, info = nudged_equilibrium(plan, X, Y, gamma)
    grads = {e.edge: e.local_gradient(per_edge[e.edge], eq[e.tail]) for e in plan.param_edges}
    return (named(plan, grads) if by_name else grads), info


def dag_backprop_gradients(S, X, Y, *, by_name=False):
    """The gradients of ½‖output − Y‖² (summed over samples) by one transposed sweep."""
    plan = DagPlan(S)
    X = as_columns(plan, X)
    vals = plan.forward(X)
    e = vals[plan.output][:-1] - _targets(plan, Y, X.shape[1])
    _, per_edge = plan.transposed(vals, {plan.output: e})
    grads = {p.edge: p.local_gradient(per_edge[p.edge], vals[p.tail]) for p in plan.param_edges}
    return named(plan, grads) if by_name else grads


def named(plan, flat):
    """Edge -> flat parameter vector as name -> array shaped like the source parameter."""
    out = {}
    for e in plan.param_edges:
        if e.edge not in flat:
            continue
        theta = flat[e.edge]
        names = e.params
        if e.kind == "batchnorm":
            C = len(e.data["bn"]["mean"])
            out[names["weight"]] = theta[:C]
            out[names["bias"]] = theta[C:2 * C]
            continue
        shape = tuple(e.data["weight_shape"]) if "weight_shape" in e.data else \
            (e.rows.size, np.shape(e.A)[1] - 1)
        n_w = int(np.prod(shape))
        out[names["weight"]] = theta[:n_w].reshape(shape)
        if "bias" in names:
            out[names["bias"]] = theta[n_w:]
    return out
