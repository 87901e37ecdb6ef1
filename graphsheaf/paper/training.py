"""Training without a backward pass, Experiment B (paraboloid and circles against SGD) and
E.4 (depth against integration time)."""

import numpy as np

from .. import datasets
from .. import neural as gn
from . import plots_training as plots
from .context import Figure, Result
from .published import published
from .report import Row
from .shared import experiment_b_network

__all__ = ["circles", "depth_time", "training"]


def curve_rows(experiment, method, metric, unit, curve, hist, last, stride, tol):
    """Rows comparing a history's train/test losses at checkpoints k (record k·stride)."""
    rows = []
    for k, (train, test) in curve.items():
        i = int(k) * stride
        if i <= last:
            rows.append(Row(experiment, f"{method} train {metric} at {k}{unit}", train,
                            hist.train_loss[i], tol))
            rows.append(Row(experiment, f"{method} test {metric} at {k}{unit}", test,
                            hist.test_loss[i], tol))
    return rows


EDGE_NAMES = {("z1", "a1"): "ReLU edge 1", ("x", "z1"): "weight edge 1", ("a1", "z2"): "weight edge 2"}


def training(ctx):
    """B: paraboloid [2,30,1], weights seed 0, stalks seed 42, β = 1/300, Δt = 0.005."""
    P = published("training")
    S, _trainer, d, epochs, h, W, b = experiment_b_network(ctx)
    rows = curve_rows("training", "sheaf", "MSE", "k steps", P["sheaf curve (k steps: train, test)"], h,
                      epochs, 1, 5e-4)
    if epochs == 100:
        rows.append(Row("training", "final sheaf test MSE within the band [0.07, 0.11] (1 = holds)", 1.0,
                        float(0.07 <= h.test_loss[-1] <= 0.11), 0.0, "band"))
    # per-edge training discord (the authors' notebook) at 1k / 20k / 100k steps
    discord = P["training discord (k steps: total, then edges at 1k, 20k, 100k)"]
    for i, k in enumerate((1, 20, 100)):
        if k > epochs:
            continue
        at = h.discord[k]
        rows.append(Row("training", f"sheaf training discord at {k}k steps, total over the three edges",
                        discord["total"][str(k)], sum(at[e] for e in EDGE_NAMES), 1e-3))
        for e, name in EDGE_NAMES.items():
            rows.append(Row("training", f"sheaf training discord at {k}k steps, {name}", discord[name][i],
                            at[e], 1e-3))
        rows.append(Row("training", f"the ReLU edge carries the most discord at {k}k steps (1 = holds)", 1.0,
                        float(at[("z1", "a1")] == max(at[e] for e in EDGE_NAMES)), 0.0, "band"))
    S2 = gn.neural_sheaf([w.copy() for w in W], [v.copy() for v in b])
    sgd_epochs = 1000 if ctx.quick else 10_000
    hs = gn.train_backprop(S2, d.X_train, d.Y_train, d.X_test, d.Y_test, objective="logged",
                           learning_rate=0.005, epochs=sgd_epochs // 100, steps_per_epoch=100)
    rows += curve_rows("training", "SGD", "MSE", "k epochs", P["SGD curve (k epochs: train, test)"], hs,
                       sgd_epochs // 100, 10, 5e-3)
    figures = [Figure("training_paraboloid", plots.training_curves, sheaf=h, sgd=hs),
               Figure("training_discord", plots.training_discord, history=h, names=EDGE_NAMES)]
    return Result(rows, figures)


def circles(ctx):
    """B: circles [2,25,1] sigmoid + BCE, forward-pass stalk resets each epoch, SGD lr 0.01."""
    P = published("circles")
    d = datasets.circles(rng=ctx.seed(42))
    W, b = gn.init_weights([2, 25, 1], rng=ctx.seed(0))
    S = gn.neural_sheaf([w.copy() for w in W], [v.copy() for v in b], output="sigmoid")
    epochs = 10 if ctx.quick else 100
    h = gn.SheafTrainer(S, mode="paper", dt=0.005).train(
        d.X_train, d.Y_train, d.X_test, d.Y_test, epochs=epochs, steps_per_epoch=1000,
        rng=ctx.seed(42), warm_start=False, init="forward", progress=False)
    rows = curve_rows("circles", "sheaf", "CE", "k steps", P["sheaf curve (k steps: train, test)"], h,
                      epochs, 1, 5e-4)
    S2 = gn.neural_sheaf([w.copy() for w in W], [v.copy() for v in b], output="sigmoid")
    sgd_epochs = 1000 if ctx.quick else 10_000
    hs = gn.train_backprop(S2, d.X_train, d.Y_train, d.X_test, d.Y_test, objective="logged",
                           learning_rate=0.01, epochs=sgd_epochs // 100, steps_per_epoch=100)
    rows += curve_rows("circles", "SGD", "CE", "k epochs", P["SGD curve (k epochs: train, test)"], hs,
                       sgd_epochs // 100, 10, 5e-3)
    g = np.linspace(-3.5, 3.5, 80)
    G = np.stack(np.meshgrid(g, g)).reshape(2, -1)
    surfaces = {title: gn.predict(net, G)[0].reshape(80, 80)
                for net, title in ((S, "sheaf-trained"), (S2, "SGD-trained"))}
    return Result(rows, [Figure("circles_boundaries", plots.circles_boundaries, grid=g, surfaces=surfaces,
                                data=d)])


def depth_time(ctx):
    """E.4: test MSE vs integration time T = Δt·steps for 1, 2, 3 hidden layers (seed 42)."""
    P = published("depth_time")
    d = datasets.paraboloid(rng=ctx.seed(42))
    Ts = [float(t) for t in P["T"]]
    configs = [("1H", [2, 30, 1], 0.005), ("2H", [2, 10, 8, 1], 0.01), ("3H", [2, 8, 6, 4, 1], 0.01)]
    rows, curves = [], {}
    for name, dims, dt in configs:
        losses = []
        for T, ref in zip(Ts, P[f"{name} {dims}"]):
            n = max(int(T / dt), 100)  # the authors' rule: epochs of at most 1,000 steps
            S = gn.neural_sheaf(*gn.init_weights(dims, rng=ctx.seed(42)))
            h = gn.SheafTrainer(S, mode="paper", dt=dt).train(
                d.X_train, d.Y_train, d.X_test, d.Y_test, epochs=max(n // 1000, 1),
                steps_per_epoch=min(n, 1000), rng=ctx.seed(42), progress=False)
            losses.append(h.test_loss[-1])
            rows.append(Row("depth_time", f"{name} {dims} test MSE at T = {_t(T)}", ref, h.test_loss[-1],
                            1e-3))
        curves[name] = losses
    return Result(rows, [Figure("depth_time", plots.depth_time, Ts=Ts, curves=curves)])


def _t(T):
    """T as the original labels printed it (0.5, 1, 2.5, ...)."""
    return int(T) if float(T).is_integer() else T
