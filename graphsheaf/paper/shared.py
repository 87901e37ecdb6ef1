"""Networks that several experiments read, trained by name (once per run, through
:meth:`.context.Context.shared`): no experiment depends on another having run first."""

import numpy as np

from .. import datasets
from .. import neural as gn

__all__ = ["experiment_b_network", "spectral_runs", "table_e1_pair"]


def experiment_b_network(ctx):
    """Experiment B's paraboloid [2,30,1] trained in paper mode (weights seed 0, stalks seed
    42, Δt = 0.005, 1,000 steps per epoch; 10 epochs quick, 100 full): the training curves
    and Experiment D's 1H diagnostics are both about this network.

    Returns ``(S, trainer, data, epochs, history, W, b)`` with W, b the initial weights.
    """
    def train():
        d = datasets.paraboloid(rng=ctx.seed(42))
        W, b = gn.init_weights([2, 30, 1], rng=ctx.seed(0))
        S = gn.neural_sheaf([w.copy() for w in W], [v.copy() for v in b])
        epochs = 10 if ctx.quick else 100
        trainer = gn.SheafTrainer(S, mode="paper", dt=0.005)
        h = trainer.train(d.X_train, d.Y_train, d.X_test, d.Y_test, epochs=epochs,
                          steps_per_epoch=1000, rng=ctx.seed(42), progress=False)
        return S, trainer, d, epochs, h, W, b
    return ctx.shared("experiment B network", train)


TASKS = {"paraboloid": ("paraboloid", "identity", 1), "saddle": ("saddle", "identity", 1),
         "circles": ("circles", "sigmoid", 1), "blobs": ("blobs", "softmax", 4)}


def table_e1_pair(ctx, task, depth):
    """Table E.1's sheaf-trained and SGD-trained networks for one task and depth (seed 42,
    β = 1/300, equal step counts); Table E.2 and E.3 diagnose them.

    Returns ``(S_sheaf, S_sgd, data, sheaf_history, sgd_history)``.
    """
    def train():
        name, output, n_out = TASKS[task]
        d = getattr(datasets, name)(rng=ctx.seed(42))
        width = 30 if task in ("paraboloid", "saddle") else 25
        dims = [2] + ([width] if depth == "1H" else [10, 8]) + [n_out]
        dt, steps = (0.005, 100_000) if depth == "1H" else (0.01, 200_000)
        W, b = gn.init_weights(dims, rng=ctx.seed(42))
        regression = output == "identity"
        S = gn.neural_sheaf([w.copy() for w in W], [v.copy() for v in b], output=output)
        h = gn.SheafTrainer(S, mode="paper", dt=dt).train(
            d.X_train, d.Y_train, d.X_test, d.Y_test, epochs=steps // 1000, steps_per_epoch=1000,
            rng=ctx.seed(42), warm_start=regression, init="random" if regression else "forward",
            progress=False)
        S2 = gn.neural_sheaf([w.copy() for w in W], [v.copy() for v in b], output=output)
        hs = gn.train_backprop(S2, d.X_train, d.Y_train, d.X_test, d.Y_test, objective="logged",
                               learning_rate=0.005 if regression else 0.01, epochs=100,
                               steps_per_epoch=steps // 100)
        return S, S2, d, h, hs
    return ctx.shared(("table E.1", task, depth), train)


def spectral_runs(ctx):
    """E.5's runs: [2,30,1] paraboloid trained by the sheaf (paper mode) and by SGD from the
    same weights (seed 42), with spectra of 50 training inputs every 5k steps and weight
    snapshots at 1k, 20k and 100k steps (for E.6).

    Returns ``(track, snapshots, data, epochs)``: track maps (method, k) to (train loss,
    median λ_1, median λ_max, median κ, all λ_1), snapshots (method, k) to (W, b).
    """
    def run():
        d = datasets.paraboloid(rng=ctx.seed(42))
        X50 = d.X_train[:, :50]
        W0, b0 = gn.init_weights([2, 30, 1], rng=ctx.seed(42))
        epochs = 10 if ctx.quick else 100
        track, snapshots = {}, {}

        def spectra(method, k, W, b, loss):
            diag = gn.spectral_diagnostics(gn.neural_sheaf(W, b), X50)
            track[(method, k)] = (loss, float(np.median(diag.lambda_min)),
                                  float(np.median(diag.lambda_max)), float(np.median(diag.condition)),
                                  diag.lambda_min)

        def recorder(method):
            def callback(epoch, logs):
                if epoch % 5 == 0:
                    spectra(method, epoch, logs["weights"], logs["biases"], logs["train_loss"])
                if epoch in (1, 20, 100) or epoch == epochs:
                    snapshots[(method, epoch)] = (logs["weights"], logs["biases"])
                return False
            return callback

        S = gn.neural_sheaf([w.copy() for w in W0], [v.copy() for v in b0])
        h = gn.SheafTrainer(S, mode="paper", dt=0.005).train(
            d.X_train, d.Y_train, epochs=epochs, steps_per_epoch=1000, rng=ctx.seed(42),
            progress=False, callback=recorder("sheaf"))
        spectra("sheaf", 0, W0, b0, h.train_loss[0])
        S2 = gn.neural_sheaf([w.copy() for w in W0], [v.copy() for v in b0])
        gn.train_backprop(S2, d.X_train, d.Y_train, objective="logged", learning_rate=0.005,
                          epochs=epochs, steps_per_epoch=1000, callback=recorder("SGD"))
        return track, snapshots, d, epochs
    return ctx.shared("E.5 runs", run)
