"""Spectral diagnostics of trained networks: Experiment D (where the slowest and fastest
modes live) and E.5 (how λ_1, λ_max and κ evolve during training)."""

import numpy as np

from .. import datasets
from .. import neural as gn
from . import plots_spectra as plots
from .context import Figure, Result
from .published import published
from .report import Row
from .shared import experiment_b_network, spectral_runs

__all__ = ["diagnostics", "spectral_evolution"]


def _diagnosed(ctx, name, cfg):
    """The network Experiment D diagnoses: B's 1H network, or the 3H one trained here."""
    if name == "1H":
        S, trainer, d, epochs, *_ = experiment_b_network(ctx)
        return S, trainer, d, epochs
    d = datasets.paraboloid(rng=ctx.seed(42))
    S = gn.neural_sheaf(*gn.init_weights(cfg["dims"], rng=ctx.seed(0)))
    trainer = gn.SheafTrainer(S, mode="paper", dt=cfg["dt"])
    epochs = 10 if ctx.quick else cfg["steps"] // 1000
    trainer.train(d.X_train, d.Y_train, d.X_test, d.Y_test, epochs=epochs, steps_per_epoch=1000,
                  rng=ctx.seed(42), progress=False)
    return S, trainer, d, epochs


def diagnostics(ctx):
    """D: spectra of the trained 1H and 3H nets on 50 diagnostic inputs (weights 0, stalks 42)."""
    configs = published("diagnostics")
    src = ctx.seed(99)
    X_diag = (src.uniform((2, 50)) if hasattr(src, "uniform")
              else np.random.default_rng(src).uniform(size=(2, 50))) * 4 - 2
    rows, panels = [], []
    for name, cfg in configs.items():
        if ctx.quick and name == "3H":
            continue  # 200k steps: full run only
        S, trainer, d, epochs = _diagnosed(ctx, name, cfg)
        diag = gn.spectral_diagnostics(S, X_diag)
        blocks = list(diag.fiedler_energy)
        fied = [float(np.mean(diag.fiedler_energy[v])) for v in blocks]
        top = [float(np.mean(diag.top_energy[v])) for v in blocks]
        if epochs * 1000 == cfg["steps"]:
            test = float(np.mean((gn.predict(S, d.X_test) - d.Y_test) ** 2))
            lam1 = diag.lambda_min
            rows += [Row("diagnostics", f"{name} final test MSE", cfg["test"], test, 1e-3),
                     Row("diagnostics", f"{name} λ_1 median", cfg["lam1"], float(np.median(lam1)), 1e-3),
                     Row("diagnostics", f"{name} λ_1 min", cfg["lam1_min"], float(lam1.min()), 1e-3),
                     Row("diagnostics", f"{name} λ_max median", cfg["lam_max"],
                         float(np.median(diag.lambda_max)), 1e-3),
                     Row("diagnostics", f"{name} κ median", cfg["kappa"], float(np.median(diag.condition)),
                         2e-3)]
            for v, p_f, p_t, o_f, o_t in zip(blocks, cfg["fiedler"], cfg["top"], fied, top):
                rows.append(Row("diagnostics", f"{name} Fiedler-vector energy on {v}", p_f, o_f, 1e-3))
                rows.append(Row("diagnostics", f"{name} λ_max-vector energy on {v}", p_t, o_t, 1e-3))
        # the bottleneck claim (§6.3) holds at any stage the paper reports
        rows.append(Row("diagnostics", f"{name}: slowest mode lives on the output block {blocks[-1]} "
                        "(largest Fiedler energy; 1 = holds)", 1.0,
                        float(int(np.argmax(fied)) == len(blocks) - 1), 0.0, "band",
                        f"{fied[-1]:.3f} of the energy" + ("" if epochs * 1000 == cfg["steps"] else
                                                           f" after {epochs}k steps")))
        z, a = trainer.state
        W, b = gn.to_weights(S)
        panels.append(dict(name=name, dims=cfg["dims"], blocks=blocks, diag=diag, z=z[0],
                           r_weight=W[0] @ a[0] + b[0][:, None] - z[0], r_relu=np.maximum(z[0], 0) - a[1]))
    return Result(rows, [Figure("diagnostics", plots.diagnostics, panels=panels)])


def spectral_evolution(ctx):
    """E.5: λ_1, λ_max, κ during sheaf and SGD training, [2,30,1] paraboloid, seed 42, 100k steps each."""
    P = published("spectral_evolution")
    track, _, _, _ = spectral_runs(ctx)
    rows = []
    for key, paper in P["rows"].items():
        method, k = key.split()
        if (method, int(k)) in track:
            for name, p, o in zip(P["columns"], paper, track[(method, int(k))][:4]):
                rows.append(Row("spectral_evolution", f"{method} at {k}k steps: {name}", p, o, 1e-3))
    last = max(k for m, k in track if m == "sheaf")
    rows.append(Row("spectral_evolution",
                    f"sheaf ends with a smaller λ_1 than SGD at {last}k steps (1 = holds)", 1.0,
                    float(track[("sheaf", last)][1] < track[("SGD", last)][1]), 0.0, "band"))
    stages = [k for k in (1, 20, 100) if ("sheaf", k) in track] or [min(k for m, k in track)]
    return Result(rows, [Figure("spectral_evolution", plots.spectral_evolution, track=track),
                         Figure("spectral_gap_stages", plots.gap_stages, track=track, stages=stages)])
