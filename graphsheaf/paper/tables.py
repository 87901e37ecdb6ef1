"""Table E.1 (sheaf against SGD on every task and depth) and E.3 (what the 1H networks
learned)."""

import numpy as np

from .. import neural as gn
from . import plots_spectra as plots
from .context import Figure, Result
from .published import published
from .report import Row
from .shared import table_e1_pair

__all__ = ["learned_outputs", "table_e1"]


def table_e1(ctx):
    """Table E.1: sheaf vs SGD on every task and depth (seed 42, β = 1/300, equal step counts)."""
    P = published("table_e1")
    keys = ["paraboloid 1H"] if ctx.quick else list(P["rows"])
    rows = []
    for key in keys:
        task, depth = key.split()
        _, _, _, h, hs = table_e1_pair(ctx, task, depth)
        ours = (h.train_loss[-1], hs.train_loss[-1], h.test_loss[-1], hs.test_loss[-1],
                h.test_loss[-1] / hs.test_loss[-1])
        for label, p, o in zip(P["columns"], P["rows"][key], ours):
            rows.append(Row("table_e1", f"{task} {depth} {label}", p, o, 1e-3))
        # the paper's reading: SGD wins on test loss everywhere except blobs, where it overfits
        claim = ours[4] < 1 if task == "blobs" else ours[4] > 1
        side = "< 1" if task == "blobs" else "> 1"
        rows.append(Row("table_e1", f"{task} {depth}: sheaf/SGD test ratio {side} (1 = holds)", 1.0,
                        float(claim), 0.0, "band"))
        ctx.log(f"[table_e1]   {task} {depth} done")
    return Result(rows)


TARGETS = {
    "paraboloid": (lambda x1, x2: x1 ** 2 + x2 ** 2 - 2 / 3, (-2, 2)),
    "saddle": (lambda x1, x2: x1 ** 2 - x2 ** 2 + 0.5 * np.sin(2 * x1), (0, 2)),
}


def _classes(net, X):
    out = gn.predict(net, X)
    return (out[0] > 0.5).astype(int) if out.shape[0] == 1 else out.argmax(axis=0)


def learned_outputs(ctx):
    """E.3: what the 1H sheaf- and SGD-trained nets learned (the Table E.1 networks)."""
    tasks = ["paraboloid"] if ctx.quick else ["paraboloid", "saddle", "circles", "blobs"]
    rows, grids = [], {}
    for task in tasks:
        S, S2, d, _, _ = table_e1_pair(ctx, task, "1H")
        if task in TARGETS:
            f, (lo, hi) = TARGETS[task]
            g = np.linspace(lo, hi, 60)
            G1, G2 = np.meshgrid(g, g)
            P = np.stack([G1.ravel(), G2.ravel()])
            target = f(G1, G2)
            sheaf = gn.predict(S, P)[0].reshape(G1.shape)
            sgd = gn.predict(S2, P)[0].reshape(G1.shape)
            corr = float(np.corrcoef(sheaf.ravel(), target.ravel())[0, 1])
            rows.append(Row("learned_outputs", f"{task}: sheaf surface correlates with the target over "
                            "the domain, r > 0.9 (1 = holds)", 1.0, float(corr > 0.9), 0.0, "band",
                            f"r = {corr:.3f}"))
        else:
            lo, hi = d.X_train.min(axis=1) - 0.5, d.X_train.max(axis=1) + 0.5
            G1, G2 = np.meshgrid(np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120))
            P = np.stack([G1.ravel(), G2.ravel()])
            target = None
            sheaf, sgd = _classes(S, P).reshape(G1.shape), _classes(S2, P).reshape(G1.shape)
            truth = d.Y_test[0].astype(int) if d.Y_test.shape[0] == 1 else d.Y_test.argmax(axis=0)
            acc = float(np.mean(_classes(S, d.X_test) == truth))
            if task == "circles":  # spec §7 item 20: a closed boundary separating disk and annulus
                rows.append(Row("learned_outputs", "circles: the sheaf-trained boundary separates the "
                                "disk from the annulus, test accuracy ≥ 0.95 (1 = holds)", 1.0,
                                float(acc >= 0.95), 0.0, "band", f"accuracy {acc:.3f}"))
        grids[task] = (G1, G2, target, sheaf, sgd, d)
    return Result(rows, [Figure("learned_outputs", plots.learned_outputs, grids=grids,
                                regression=set(TARGETS))])
