"""Training DAG sheaves: exact mode (the local rule at the nudged equilibrium), its
small-nudge limit (backprop-equivalent) and the authors' joint Euler dynamics (paper)."""

import time

import numpy as np

from ..._random import random_source
from .api import as_columns, nudged_equilibrium
from .plan import DagPlan

__all__ = ["dag_train"]


def _loss(plan, X, Y):
    vals = plan.forward(X)
    out = vals[plan.output][:-1]
    mse = float(np.mean((out - Y) ** 2))
    acc = float(np.mean(out.argmax(axis=0) == Y.argmax(axis=0))) if Y.shape[0] > 1 else None
    return mse, acc


def _record(history, plan, X, Y, X_test, Y_test, epoch, step):
    history.epochs.append(epoch)
    history.steps.append(step)
    mse, acc = _loss(plan, X, Y)
    history.train_loss.append(mse)
    if acc is not None:
        history.train_accuracy.append(acc)
    if X_test is not None:
        mse, acc = _loss(plan, X_test, Y_test)
        history.test_loss.append(mse)
        if acc is not None:
            history.test_accuracy.append(acc)
    history.discord.append(None)


def _end_epoch(history, plan, X, Y, X_test, Y_test, epoch, step, callback):
    """Record the epoch; True when the callback asks to stop (``stopped_early`` is set)."""
    _record(history, plan, X, Y, X_test, Y_test, epoch, step)
    if callback is not None and callback(epoch, {"train_loss": history.train_loss[-1]}):
        history.stopped_early = True
        return True
    return False


def _batch_gradients(plan, mode, X, Y, gamma):
    if mode == "exact":
        _, per_edge, eq, info = nudged_equilibrium(plan, X, Y, gamma, energy=False)
        return {e.edge: e.local_gradient(per_edge[e.edge], eq[e.tail]) for e in plan.param_edges}, \
            1 + 2 * (1 + info["gram_iterations"])
    vals = plan.forward(X)
    _, per_edge = plan.transposed(vals, {plan.output: vals[plan.output][:-1] - Y})
    return {e.edge: e.local_gradient(per_edge[e.edge], vals[e.tail]) for e in plan.param_edges}, 2


def dag_train(S, X, Y, X_test=None, Y_test=None, *, history, mode="exact", epochs=10, batch_size=None,
              optimizer=None, gamma=1e-3, rng=None, weight_decay=0.0, steps_per_epoch=None, dt=0.005,
              alpha=1.0, beta=None, callback=None):
    """Train the parameters on the maps of a DAG sheaf (written back after every update)."""
    plan = DagPlan(S)
    X = as_columns(plan, X)
    Y = np.asarray(Y, dtype=float).reshape(plan.dims[plan.output], -1)
    if X_test is not None:
        X_test = as_columns(plan, X_test)
        Y_test = np.asarray(Y_test, dtype=float).reshape(plan.dims[plan.output], -1)
    N = X.shape[1]
    edges = plan.param_edges
    thetas = [e.theta() for e in edges]
    masks = [e.weight_mask() for e in edges] if weight_decay else None
    t0 = time.perf_counter()
    _record(history, plan, X, Y, X_test, Y_test, 0, 0)
    if mode == "paper":
        return _paper(plan, X, Y, X_test, Y_test, history, edges, thetas, epochs,
                      steps_per_epoch or 1000, dt, alpha, 1.0 / N if beta is None else beta, rng, t0,
                      callback)
    order_rng = np.random.default_rng(None if rng is None else rng)
    bs = N if batch_size is None else min(int(batch_size), N)
    step = 0
    for epoch in range(1, epochs + 1):
        perm = order_rng.permutation(N)
        for start in range(0, N, bs):
            idx = perm[start:start + bs]
            grads, sweeps = _batch_gradients(plan, mode, X[:, idx], Y[:, idx], gamma)
            g = [grads[e.edge] / idx.size for e in edges]
            if weight_decay:
                g = [gi + weight_decay * th * m for gi, th, m in zip(g, thetas, masks)]
            optimizer.step(thetas, g)
            for e, th in zip(edges, thetas):
                e.set_theta(th)
            history.sweeps.append(sweeps)
            history.pattern_passes.append(1)
            step += 1
        if _end_epoch(history, plan, X, Y, X_test, Y_test, epoch, step, callback):
            break
    history.seconds = time.perf_counter() - t0
    return history


def _paper(plan, X, Y, X_test, Y_test, history, edges, thetas, epochs, steps, dt, alpha, beta, rng, t0,
           callback):
    """Joint Euler dynamics of the cochain and the weights on one energy
    ``½Σ_e‖r_e‖² + ½‖x_out − Y‖²`` (the output tied to the labels by a unit edge)."""
    vals = plan.random_state(X, random_source(rng))
    step = 0
    for epoch in range(1, epochs + 1):
        for _ in range(steps):
            r = plan.residuals(vals)
            force = plan.forces(vals, r)
            force[plan.output][:-1] -= vals[plan.output][:-1] - Y
            for e, th in zip(edges, thetas):  # θ ← θ − dt β ∂E/∂θ, ∂E/∂θ = −Σ r ūᵀ
                th += dt * beta * e.local_gradient(r[e.edge], vals[e.tail])
                e.set_theta(th)
            for v in plan.order[1:]:
                vals[v][:-1] += dt * alpha * force[v][:-1]
            step += 1
        if _end_epoch(history, plan, X, Y, X_test, Y_test, epoch, step, callback):
            break
    history.seconds = time.perf_counter() - t0
    return history
