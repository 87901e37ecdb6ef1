"""Experiment C: the β scaling law of sheaf training (the output edge's weight β against
the training-set size)."""

import numpy as np

from .. import datasets
from .. import neural as gn
from . import plots_training as plots
from .context import Figure, Result
from .published import published
from .report import Row

__all__ = ["beta_law"]


def beta_law(ctx):
    """C: β scaling law, paraboloid [2,30,1], 100k steps, 3 seeds per β (weights si·100, stalks 42+si)."""
    table = {float(k): v for k, v in
             published("beta_law")["mean and std of the final test MSE by β·n_train"].items()}
    d = datasets.paraboloid(rng=ctx.seed(42))
    n = d.X_train.shape[1]
    products = [0.003, 1.5, 30.0] if ctx.quick else list(table)
    seeds = [0] if ctx.quick else [0, 1, 2]
    epochs = 20 if ctx.quick else 100
    finals = {}
    for bn in products:
        beta = bn / n
        losses = []
        for si in seeds:
            S = gn.neural_sheaf(*gn.init_weights([2, 30, 1], rng=ctx.seed(si * 100)))
            h = gn.SheafTrainer(S, mode="paper", dt=0.005, beta=beta).train(
                d.X_train, d.Y_train, d.X_test, d.Y_test, epochs=epochs, steps_per_epoch=1000,
                rng=ctx.seed(42 + si), progress=False)
            losses.append(h.test_loss[-1])
        finals[bn] = (float(np.mean(losses)), float(np.std(losses)))
        ctx.log(f"[beta_law]   β·n = {_g(bn)}: mean test MSE {finals[bn][0]:.4g} over {len(seeds)} seed(s)")
    means = {bn: m for bn, (m, _) in finals.items()}
    best = min(means, key=means.get)
    rows = []
    if not ctx.quick:
        for bn, (mean, std) in finals.items():
            rows.append(Row("beta_law", f"β·n = {_g(bn)}: mean final test MSE (3 seeds)", table[bn][0],
                            mean, 5e-3))
            rows.append(Row("beta_law", f"β·n = {_g(bn)}: std over seeds", table[bn][1], std, 0.05))
        # the claims of spec §7 item 22 (the "flat within ≈±7%" of §5.5 is a reading, not a
        # claim: the paper's own means are 18% above the minimum at β·n = 0.6, 6.9% at 3)
        high = all(means[bn] > 1.4 * means[best] for bn in (9.0, 30.0))
        rows += [
            Row("beta_law", "law: argmin of the mean lies in β·n ∈ [0.6, 3] (1 = holds)", 1.0,
                float(0.6 <= best <= 3), 0.0, "band", f"argmin β·n = {_g(best)}"),
            Row("beta_law", "law: means at β·n ≥ 9 exceed the minimum by > 40% (1 = holds)", 1.0,
                float(high), 0.0, "band"),
        ]
    stagnates = means[0.003] > 10 * means[best]
    rows.append(Row("beta_law", "law: mean at β·n = 0.003 exceeds 10× the minimum (1 = holds)", 1.0,
                    float(stagnates), 0.0, "band",
                    f"ratio {means[0.003] / means[best]:.1f}" + (" (quick run: 20k steps, 1 seed)"
                                                                  if ctx.quick else "")))
    paper = {bn: float(table[bn][0]) for bn in finals}
    return Result(rows, [Figure("beta_law", plots.beta_law, finals=finals, paper=paper, n=n,
                                seeds=len(seeds))])


def _g(x):
    """β·n as the original labels printed it (0.003, 1.5, 3, 30)."""
    return int(x) if float(x).is_integer() else x
