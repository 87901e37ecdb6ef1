"""Regenerate the paper's experiments and put every number beside the published one.

``graphsheaf reproduce [--quick] [--only NAME ...] [--out DIR] [--rng torch|numpy]``
writes figures (PNG and PDF, when matplotlib is installed), ``report.csv`` and
``report.md``. Paper values come from ``paper-spec.md`` (§5, §7). With ``--rng torch``
(PyTorch installed) data, weights and stalks are drawn exactly as the authors' code does
and "exact" rows are compared digit for digit; with NumPy streams only the "band" rows
are meaningful and exact rows are reported for information.

Experiments implemented so far: convergence (A / Fig. 6), sigmoid (E.1), phase_planes (E.2;
the quick run draws [2,4,1] only), pinning (§5.1),
spectral_depth (the spectral-gap-vs-depth table), training and circles (B), beta_law (C; the
quick run checks only the stagnation claim, on 20k steps and one seed), diagnostics (D; the
quick run checks the bottleneck claim on the 10k-step 1H net), spectral_evolution (E.5),
residual_stages (E.6, from the E.5 runs),
depth_time (E.4),
table_e1 (Table E.1; the quick run does its first row only), table_e2 (Table E.2),
learned_outputs (E.3, from the Table E.1 networks; the quick run draws the paraboloid only).
"""

import csv
import decimal
import io
import os
import time
from dataclasses import dataclass

import numpy as np

from ._files import atomic_path, atomic_write_text

__all__ = ["run", "EXPERIMENTS", "Row"]


@dataclass
class Row:
    experiment: str
    quantity: str
    paper: float
    ours: float
    tol: float  # relative tolerance (absolute when paper == 0)
    kind: str = "exact"  # "exact" (needs the authors' streams) or "band"
    note: str = ""

    def __post_init__(self):
        # the paper's value may be given as printed ("0.0030"): its digits set the rounding
        self.printed = self.paper if isinstance(self.paper, str) else repr(float(self.paper))
        self.paper = float(self.paper)

    @property
    def tolerance(self):
        """``tol``, but never below half a unit of the paper's last printed digit."""
        if self.paper == 0:
            return self.tol
        exponent = decimal.Decimal(self.printed).as_tuple().exponent
        return max(self.tol, 0.5 * 10.0 ** exponent / abs(self.paper))

    @property
    def rel_diff(self):
        if self.paper == 0:
            return abs(self.ours)
        return abs(self.ours - self.paper) / abs(self.paper)

    @property
    def ok(self):
        return bool(self.rel_diff <= self.tolerance * (1 + 1e-9))


class _Context:
    def __init__(self, out, quick, rng):
        self.out, self.quick, self.rng = out, quick, rng
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            self.plt = plt
        except ImportError:
            self.plt = None
        self.figures = []
        self.cache = {}  # results one experiment shares with another (e.g. trained networks)
        self.log = print  # progress lines inside long experiments

    def seed(self, s):
        import graphsheaf.neural as gn
        return gn.TorchSeed(s) if self.rng == "torch" else s

    def save(self, fig, name):
        for ext in ("png", "pdf"):
            path = os.path.join(self.out, f"{name}.{ext}")
            with atomic_path(path) as tmp:  # a failed save keeps an earlier figure whole
                fig.savefig(tmp, dpi=150, bbox_inches="tight", format=ext)
            self.figures.append(path)
        self.plt.close(fig)


def _output_panel(ax, result, forward_value, label, title):
    """The output stalk along a heat-equation run against the forward-pass value."""
    ax.plot(result.output[:, 0, 0], lw=1.2, label=label)
    ax.axhline(forward_value, ls="--", color="k", label="forward pass")
    ax.set(xlabel="iteration", ylabel="value", title=title)
    ax.legend()


def exp_convergence(ctx):
    """A / Fig. 6: [2,4,1], weights seed 7, x = (0.5, −0.3), Δt = 0.01, stalks seed 42."""
    import graphsheaf.neural as gn
    S = gn.neural_sheaf(*gn.init_weights([2, 4, 1], rng=ctx.seed(7)))
    x = np.array([0.5, -0.3])
    steps = 10_000
    r = gn.heat_equation(S, x, steps=steps, tol=0, rng=ctx.seed(42))
    lam = gn.restricted_spectrum(S, x).lambda_min
    slope = np.polyfit(np.arange(3000, 7000), np.log(r.total_discord[3000:7000]), 1)[0]
    rows = [Row("convergence", "forward value", -0.7105655, float(gn.predict(S, x)[0]), 1e-6),
            Row("convergence", "initial total discord", 10.30, r.total_discord[0], 0.01),
            Row("convergence", "total discord at 5,000", 1.35e-8, r.total_discord[5000], 0.1),
            Row("convergence", "total discord at 10,000 (< 1e-14)", 9.3e-16,
                r.total_discord[steps], 10.0, note="paper: < 1e-14"),
            Row("convergence", "λ_min(L_σ*)", 0.16477, lam, 1e-4),
            Row("convergence", "log-discord slope per step", -0.003295, slope, 0.02, note="−2Δtλ_min"),
            Row("convergence", "slope / (−2Δt λ_min) of this network (Theorem 4.1)", 1.0,
                slope / (-2 * 0.01 * lam), 0.02, "band"),
            Row("convergence", "every ReLU crossing within the first ~100 steps (1 = holds)", 1.0,
                float(bool(r.switches) and max(r.switches) <= 100), 0.0,
                note="true of the authors' network; other draws chatter at a kink for longer"),
            Row("convergence", "first ReLU crossing step", 50, r.switches[0] if r.switches else -1, 0),
            Row("convergence", "number of crossings", 2, len(r.switches), 0)]
    if ctx.plt:
        fig, ax = ctx.plt.subplots(1, 2, figsize=(10, 3.6))
        half = steps // 2
        ax[0].semilogy(r.total_discord[:half + 1], lw=1.2)
        for s in r.switches:
            ax[0].axvline(s, color="red", lw=0.8, alpha=0.7)
        ax[0].set(xlabel="iteration", ylabel="total discord", title="(a) total discord; red: ReLU crossings")
        _output_panel(ax[1], r, gn.predict(S, x)[0], "output stalk $z^{(2)}$", "(b) output stalk")
        ctx.save(fig, "convergence")
    return rows


def exp_sigmoid(ctx):
    """E.1: [2,6,4,4,1] sigmoid output, weights seed 0, x = next randn(2,1), Δt = 0.01."""
    import graphsheaf.neural as gn
    rng = ctx.seed(0)
    W, b = gn.init_weights([2, 6, 4, 4, 1], rng=rng)
    x = rng.normal((2, 1))[:, 0] if ctx.rng == "torch" else np.random.default_rng(0).standard_normal(2)
    S = gn.neural_sheaf(W, b, output="sigmoid")
    steps = 20_000 if ctx.quick else 62_500
    r = gn.heat_equation(S, x, steps=steps, tol=1e-12, rng=ctx.seed(42), criterion="step")
    rows = [Row("sigmoid", "forward value", 0.703263, float(gn.predict(S, x)[0]), 1e-6),
            Row("sigmoid", "initial total discord", 44.2, r.total_discord[0], 0.01),
            Row("sigmoid", "total discord at 1,000", 0.107, r.total_discord[1000], 0.02),
            Row("sigmoid", "total discord at 10,000", 7.4e-4, r.total_discord[10_000], 0.02),
            Row("sigmoid", "total discord at 20,000", 1.6e-5, r.total_discord[20_000], 0.05)]
    if not ctx.quick:
        rows.append(Row("sigmoid", "output stalk at 62,500", 0.703262, r.state["y"][0], 2e-6))
    if ctx.plt:
        fig, ax = ctx.plt.subplots(1, 2, figsize=(10, 3.6))
        ax[0].semilogy(r.total_discord, lw=1.2, label="total")
        for e, v in r.edge_discord.items():
            ax[0].semilogy(v, lw=0.8, alpha=0.7, label=f"{e[0]}→{e[1]}")
        ax[0].set(xlabel="iteration", ylabel="discord", title="discord by edge")
        ax[0].legend(fontsize=7, ncol=2)
        _output_panel(ax[1], r, gn.predict(S, x)[0], "σ($z^{(4)}$)", "output stalk")
        ctx.save(fig, "sigmoid_dashboard")
    return rows


def exp_pinning(ctx):
    """§5.1: [2,4,1], weights seed 42, x = (1, 0.5): hard pin z1_0 = 0.5, soft pins of z1."""
    import graphsheaf.neural as gn
    S = gn.neural_sheaf(*gn.init_weights([2, 4, 1], rng=ctx.seed(42)))
    x = np.array([1.0, 0.5])
    rows = [Row("pinning", "forward output", 1.278224, float(gn.predict(S, x)[0]), 1e-6)]
    eq = gn.equilibrium(S, x, pins={"z1": {0: 0.5}})
    rows.append(Row("pinning", "output with z1[0] := 0.5", 1.310511, eq.state["z2"][0], 1e-5))
    for gamma, out, z10 in [(0.1, 1.162022, 0.364632), (1, 0.639112, 0.200548),
                            (10, 0.116202, 0.036463), (100, 0.012656, 0.003971)]:
        eq = gn.equilibrium(S, x, soft_pins={"z1": 0.0}, stiffness=gamma)
        rows.append(Row("pinning", f"soft pin γ={gamma}: output", out, eq.state["z2"][0], 1e-5))
        rows.append(Row("pinning", f"soft pin γ={gamma}: z1[0]", z10, eq.state["z1"][0], 1e-4))
    return rows


def exp_phase_planes(ctx):
    """E.2: trajectories of (z¹₁, z¹₂) under the heat equation; weights seed 0, trials x ~ seed 7t+3."""
    import graphsheaf.neural as gn
    nets = [[2, 4, 1]] if ctx.quick else [[2, 4, 1], [2, 6, 4, 1], [2, 6, 4, 4, 1]]
    rows, shown = [], []
    for dims in nets:
        S = gn.neural_sheaf(*gn.init_weights(dims, rng=ctx.seed(0)))
        best = None
        for t in range(40):
            x = (ctx.seed(7 * t + 3).normal((2, 1))[:, 0] if ctx.rng == "torch"
                 else np.random.default_rng(7 * t + 3).standard_normal(2))
            r = gn.heat_equation(S, x, dt=0.01, tol=1e-12, steps=100_000, rng=ctx.seed(t),
                                 criterion="step",
                                 record=False, trace=["z1"])
            path = r.trace["z1"][:, :2, 0]
            active = path >= 0  # the tie rule: z ≥ 0 is active
            # steps at which the pair's pattern changes (both crossing at once counts once,
            # as the authors' red crosses do)
            hits = np.flatnonzero((active[1:] != active[:-1]).any(axis=1)) + 1
            crossings = len(hits)
            if best is None or crossings > best[1]:
                best = (t, crossings, path, gn.forward(S, x)["z1"][:2], hits)
            if crossings >= 5:  # the authors show the first trial with at least 5 crossings
                break
        shown.append((dims, best))
        if dims == [2, 4, 1]:
            t, crossings, path, *_ = best
            rows += [Row("phase_planes", "[2,4,1] trial shown (first with ≥ 5 crossings)", 1, t, 0.0),
                     Row("phase_planes", "[2,4,1] crossings of the ReLU boundaries", 8, crossings, 0.0),
                     Row("phase_planes", "[2,4,1] states on the trajectory", 7701, len(path), 0.0)]
    if ctx.plt:
        fig, axes = ctx.plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 4.2), squeeze=False)
        for (dims, (t, crossings, path, fixed, hit)), ax in zip(shown, axes[0]):
            n = len(path)
            ax.scatter(path[:, 0], path[:, 1], c=np.linspace(0.15, 1, n), cmap="Blues", s=2, lw=0)
            ax.plot(path[:, 0], path[:, 1], lw=0.4, color="tab:blue", alpha=0.5)
            ax.axhline(0, ls="--", color="gray", lw=0.8)
            ax.axvline(0, ls="--", color="gray", lw=0.8)
            ax.scatter(path[hit, 0], path[hit, 1], marker="x", color="red", s=25, label="crossing")
            ax.scatter(*path[0], color="gray", s=30, label="start")
            ax.scatter(*fixed, marker="*", color="gold", edgecolor="k", s=160, label="forward pass", zorder=5)
            ax.set(xlabel="z¹₁", ylabel="z¹₂",
                   title=f"{dims}: trial {t}, {crossings} crossings, {n:,} states")
            ax.legend(fontsize=8)
        fig.tight_layout()
        ctx.save(fig, "phase_planes")
    return rows


def exp_spectral_depth(ctx):
    """Table: spectral gap λ_1 at initialisation vs depth (weights seed 42, 50 inputs)."""
    import graphsheaf as gs
    import graphsheaf.neural as gn
    d = gs.datasets.paraboloid(rng=ctx.seed(42))
    X = d.X_train[:, :50]
    rows = []
    for dims, med, std in [([2, 30, 1], 0.2248, 0.0200), ([2, 10, 8, 1], 0.0602, 0.0047),
                           ([2, 8, 6, 4, 1], 0.0281, 0.0060)]:
        S = gn.neural_sheaf(*gn.init_weights(dims, rng=ctx.seed(42)))
        lam = gn.restricted_spectrum(S, X).lambda_min
        rows.append(Row("spectral_depth", f"{dims} λ_1 median", med, float(np.median(lam)), 1e-3))
        rows.append(Row("spectral_depth", f"{dims} λ_1 std", std, float(np.std(lam)), 0.02))
    return rows


def _curve_rows(experiment, method, metric, unit, curve, hist, last, stride, tol):
    """Rows comparing a history's train/test losses at checkpoints k (record k·stride)."""
    rows = []
    for k, (train, test) in curve.items():
        i = k * stride
        if i <= last:
            rows.append(Row(experiment, f"{method} train {metric} at {k}{unit}", train,
                            hist.train_loss[i], tol))
            rows.append(Row(experiment, f"{method} test {metric} at {k}{unit}", test,
                            hist.test_loss[i], tol))
    return rows


def exp_training(ctx):
    """B: paraboloid [2,30,1], weights seed 0, stalks seed 42, β = 1/300, Δt = 0.005."""
    import graphsheaf as gs
    import graphsheaf.neural as gn
    d = gs.datasets.paraboloid(rng=ctx.seed(42))
    W, b = gn.init_weights([2, 30, 1], rng=ctx.seed(0))
    S = gn.neural_sheaf([w.copy() for w in W], [v.copy() for v in b])
    epochs = 10 if ctx.quick else 100
    trainer = gn.SheafTrainer(S, mode="paper", dt=0.005)
    h = trainer.train(d.X_train, d.Y_train, d.X_test, d.Y_test, epochs=epochs, steps_per_epoch=1000,
                      rng=ctx.seed(42), progress=False)
    ctx.cache["training 1H"] = (S, trainer, d, epochs)  # Experiment D diagnoses this network
    curve = {0: ("12.0996", "10.8848"), 1: ("1.8925", "1.7274"), 2: ("1.3962", "1.3305"),
             5: ("0.9076", "0.8350"), 10: ("0.5293", "0.4731"), 20: ("0.2310", "0.2049"),
             50: ("0.0841", "0.1019"), 100: ("0.063092", "0.086497")}
    rows = _curve_rows("training", "sheaf", "MSE", "k steps", curve, h, epochs, 1, 5e-4)
    if epochs == 100:
        rows.append(Row("training", "final sheaf test MSE within the band [0.07, 0.11] (1 = holds)", 1.0,
                        float(0.07 <= h.test_loss[-1] <= 0.11), 0.0, "band"))
    # per-edge training discord (the authors' notebook): edge -> value at 1k / 20k / 100k steps
    discord = {("z1", "a1"): ("0.159", "6.08e-3", "1.42e-3"), ("x", "z1"): ("0.118", "3.18e-3", "6.26e-4"),
               ("a1", "z2"): ("0.030", "4.37e-4", "7.66e-5")}
    names = {("z1", "a1"): "ReLU edge 1", ("x", "z1"): "weight edge 1", ("a1", "z2"): "weight edge 2"}
    for i, (k, total) in enumerate(((1, "0.306"), (20, "9.69e-3"), (100, "2.12e-3"))):
        if k > epochs:
            continue
        at = h.discord[k]
        rows.append(Row("training", f"sheaf training discord at {k}k steps, total over the three edges",
                        total, sum(at[e] for e in discord), 1e-3))
        for e, values in discord.items():
            rows.append(Row("training", f"sheaf training discord at {k}k steps, {names[e]}", values[i],
                            at[e], 1e-3))
        rows.append(Row("training", f"the ReLU edge carries the most discord at {k}k steps (1 = holds)", 1.0,
                        float(at[("z1", "a1")] == max(at[e] for e in discord)), 0.0, "band"))
    S2 = gn.neural_sheaf([w.copy() for w in W], [v.copy() for v in b])
    sgd_epochs = 1000 if ctx.quick else 10_000
    hs = gn.train_backprop(S2, d.X_train, d.Y_train, d.X_test, d.Y_test, objective="logged",
                           learning_rate=0.005, epochs=sgd_epochs // 100, steps_per_epoch=100)
    sgd = {1: ("0.1387", "0.1592"), 10: ("0.029372", "0.042516")}
    rows += _curve_rows("training", "SGD", "MSE", "k epochs", sgd, hs, sgd_epochs // 100, 10, 5e-3)
    if ctx.plt:
        fig, ax = ctx.plt.subplots(figsize=(6, 3.8))
        steps = np.array(h.steps)
        ax.semilogy(steps, h.train_loss, label="sheaf train")
        ax.semilogy(steps, h.test_loss, label="sheaf test")
        ax.semilogy(np.array(hs.steps), hs.train_loss, "--", label="SGD train (per epoch)")
        ax.semilogy(np.array(hs.steps), hs.test_loss, "--", label="SGD test (per epoch)")
        ax.set(xlabel="Euler step (sheaf) / epoch (SGD)", ylabel="MSE", title="paraboloid [2,30,1]")
        ax.legend()
        ctx.save(fig, "training_paraboloid")
        fig, ax = ctx.plt.subplots(figsize=(6, 3.8))
        for e, name in names.items():
            ax.semilogy(steps[1:], [dd[e] for dd in h.discord[1:]], label=name)
        ax.set(xlabel="Euler step", ylabel="batch-mean discord", title="training discord by edge")
        ax.legend()
        ctx.save(fig, "training_discord")
    return rows


def exp_circles(ctx):
    """B: circles [2,25,1] sigmoid + BCE, forward-pass stalk resets each epoch, SGD lr 0.01."""
    import graphsheaf as gs
    import graphsheaf.neural as gn
    d = gs.datasets.circles(rng=ctx.seed(42))
    W, b = gn.init_weights([2, 25, 1], rng=ctx.seed(0))
    S = gn.neural_sheaf([w.copy() for w in W], [v.copy() for v in b], output="sigmoid")
    epochs = 10 if ctx.quick else 100
    h = gn.SheafTrainer(S, mode="paper", dt=0.005).train(
        d.X_train, d.Y_train, d.X_test, d.Y_test, epochs=epochs, steps_per_epoch=1000,
        rng=ctx.seed(42), warm_start=False, init="forward", progress=False)
    curve = {0: ("0.8076", "0.8347"), 1: ("0.5768", "0.6255"), 10: ("0.2648", "0.2889"),
             50: ("0.0941", "0.0930"), 100: ("0.055875", "0.053357")}
    rows = _curve_rows("circles", "sheaf", "CE", "k steps", curve, h, epochs, 1, 5e-4)
    S2 = gn.neural_sheaf([w.copy() for w in W], [v.copy() for v in b], output="sigmoid")
    sgd_epochs = 1000 if ctx.quick else 10_000
    hs = gn.train_backprop(S2, d.X_train, d.Y_train, d.X_test, d.Y_test, objective="logged",
                           learning_rate=0.01, epochs=sgd_epochs // 100, steps_per_epoch=100)
    sgd = {1: ("0.2740", "0.2940"), 5: ("0.0511", "0.0487"), 10: ("0.023926", "0.022224")}
    rows += _curve_rows("circles", "SGD", "CE", "k epochs", sgd, hs, sgd_epochs // 100, 10, 5e-3)
    if ctx.plt:
        g = np.linspace(-3.5, 3.5, 80)
        G = np.stack(np.meshgrid(g, g)).reshape(2, -1)
        fig, ax = ctx.plt.subplots(1, 2, figsize=(9, 4))
        for a, net, title in ((ax[0], S, "sheaf-trained"), (ax[1], S2, "SGD-trained")):
            p = gn.predict(net, G)[0].reshape(80, 80)
            a.contour(g, g, p, levels=[0.5], colors="k")
            a.scatter(*d.X_train, c=d.Y_train[0], cmap="coolwarm", s=8)
            a.set(title=f"{title}: p = 0.5 boundary", xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
        ctx.save(fig, "circles_boundaries")
    return rows


def exp_depth_time(ctx):
    """E.4: test MSE vs integration time T = Δt·steps for 1, 2, 3 hidden layers (seed 42)."""
    import graphsheaf as gs
    import graphsheaf.neural as gn
    d = gs.datasets.paraboloid(rng=ctx.seed(42))
    Ts = (0.5, 1, 2.5, 5, 10, 25, 50)
    configs = [("1H", [2, 30, 1], 0.005, (3.733, 3.174, 1.933, 1.347, 1.131, 0.751, 0.429)),
               ("2H", [2, 10, 8, 1], 0.01, (5.578, 5.578, 4.160, 3.525, 3.177, 2.964, 2.000)),
               ("3H", [2, 8, 6, 4, 1], 0.01, (5.691, 5.691, 3.974, 3.302, 2.988, 2.694, 1.905))]
    rows, curves = [], {}
    for name, dims, dt, paper in configs:
        losses = []
        for T, ref in zip(Ts, paper):
            n = max(int(T / dt), 100)  # the authors' rule: epochs of at most 1,000 steps
            S = gn.neural_sheaf(*gn.init_weights(dims, rng=ctx.seed(42)))
            h = gn.SheafTrainer(S, mode="paper", dt=dt).train(
                d.X_train, d.Y_train, d.X_test, d.Y_test, epochs=max(n // 1000, 1),
                steps_per_epoch=min(n, 1000), rng=ctx.seed(42), progress=False)
            losses.append(h.test_loss[-1])
            rows.append(Row("depth_time", f"{name} {dims} test MSE at T = {T}", ref, h.test_loss[-1], 1e-3))
        curves[name] = losses
    if ctx.plt:
        fig, ax = ctx.plt.subplots(figsize=(5.5, 3.8))
        for name, losses in curves.items():
            ax.loglog(Ts, losses, "o-", label=name)
        ax.set(xlabel="integration time T = Δt · steps", ylabel="test MSE",
               title="paraboloid: depth × integration time")
        ax.legend()
        ctx.save(fig, "depth_time")
    return rows


BETA_LAW = {  # β·n_train: (mean, std) of the final test MSE over 3 seeds, as printed (spec §5.5)
    0.003: ("1.118", "0.098"), 0.009: ("0.827", "0.038"), 0.03: ("0.428", "0.033"),
    0.09: ("0.192", "0.014"), 0.3: ("0.124", "0.004"), 0.6: ("0.0978", "0.0041"),
    0.999: ("0.0849", "0.0049"), 1.5: ("0.0827", "0.0038"), 3: ("0.0884", "0.0032"),
    9: ("0.133", "0.010"), 30: ("0.131", "0.021"),
}


def exp_beta_law(ctx):
    """C: β scaling law, paraboloid [2,30,1], 100k steps, 3 seeds per β (weights si·100, stalks 42+si)."""
    import graphsheaf as gs
    import graphsheaf.neural as gn
    d = gs.datasets.paraboloid(rng=ctx.seed(42))
    n = d.X_train.shape[1]
    products = [0.003, 1.5, 30] if ctx.quick else list(BETA_LAW)
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
        ctx.log(f"[beta_law]   β·n = {bn}: mean test MSE {finals[bn][0]:.4g} over {len(seeds)} seed(s)")
    means = {bn: m for bn, (m, _) in finals.items()}
    best = min(means, key=means.get)
    rows = []
    if not ctx.quick:
        for bn, (mean, std) in finals.items():
            rows.append(Row("beta_law", f"β·n = {bn}: mean final test MSE (3 seeds)", BETA_LAW[bn][0],
                            mean, 5e-3))
            rows.append(Row("beta_law", f"β·n = {bn}: std over seeds", BETA_LAW[bn][1], std, 0.05))
        # the claims of spec §7 item 22 (the "flat within ≈±7%" of §5.5 is a reading, not a
        # claim: the paper's own means are 18% above the minimum at β·n = 0.6, 6.9% at 3)
        high = all(means[bn] > 1.4 * means[best] for bn in (9, 30))
        rows += [
            Row("beta_law", "law: argmin of the mean lies in β·n ∈ [0.6, 3] (1 = holds)", 1.0,
                float(0.6 <= best <= 3), 0.0, "band", f"argmin β·n = {best}"),
            Row("beta_law", "law: means at β·n ≥ 9 exceed the minimum by > 40% (1 = holds)", 1.0,
                float(high), 0.0, "band"),
        ]
    stagnates = means[0.003] > 10 * means[best]
    rows.append(Row("beta_law", "law: mean at β·n = 0.003 exceeds 10× the minimum (1 = holds)", 1.0,
                    float(stagnates), 0.0, "band",
                    f"ratio {means[0.003] / means[best]:.1f}" + (" (quick run: 20k steps, 1 seed)"
                                                                  if ctx.quick else "")))
    if ctx.plt:
        x = np.array(list(finals))
        m = np.array([finals[bn][0] for bn in x])
        sd = np.array([finals[bn][1] for bn in x])
        fig, ax = ctx.plt.subplots(figsize=(5.8, 3.8))
        ax.axvspan(x.min() / 1.5, 0.3, color="tab:red", alpha=0.08, label="stagnation")
        ax.axvspan(0.3, 10, color="tab:green", alpha=0.08, label="optimal")
        ax.axvspan(10, x.max() * 1.5, color="tab:orange", alpha=0.08, label="divergence")
        ax.fill_between(x, np.maximum(m - sd, 1e-6), m + sd, alpha=0.3)
        ax.loglog(x, m, "o-", label=f"ours (mean ± std, {len(seeds)} seed{'s' * (len(seeds) > 1)})")
        paper = [float(BETA_LAW[bn][0]) for bn in x]
        ax.loglog(x, paper, "k^--", ms=4, lw=0.8, label="paper")
        ax.axvline(1.0, ls="--", color="gray", lw=0.8)
        ax.set(xlabel="β · n_train", ylabel="final test MSE",
               title=f"β scaling law, paraboloid [2,30,1], n_train = {n}")
        ax.legend(fontsize=8)
        ctx.save(fig, "beta_law")
    return rows


TABLE_E1 = {  # (task, depth): sheaf train, SGD train, sheaf test, SGD test, ratio, as printed
    ("paraboloid", "1H"): ("0.0756", "0.0030", "0.0884", "0.0044", "19.9"),
    ("saddle", "1H"): ("0.0108", "0.0010", "0.0106", "0.0013", "8.4"),
    ("circles", "1H"): ("0.0652", "0.0021", "0.0679", "0.0031", "22.0"),
    ("blobs", "1H"): ("0.1368", "0.0657", "0.1212", "0.2613", "0.5"),
    ("paraboloid", "2H"): ("0.0764", "0.0065", "0.0880", "0.0095", "9.2"),
    ("saddle", "2H"): ("0.0110", "0.0009", "0.0126", "0.0011", "11.0"),
    ("circles", "2H"): ("0.0180", "0.0001", "0.0188", "0.0003", "58.7"),
    ("blobs", "2H"): ("0.1319", "0.0249", "0.1323", "0.6758", "0.2"),
}


def exp_table_e1(ctx):
    """Table E.1: sheaf vs SGD on every task and depth (seed 42, β = 1/300, equal step counts)."""
    keys = [("paraboloid", "1H")] if ctx.quick else list(TABLE_E1)
    rows = []
    for task, depth in keys:
        rows += exp_table_e1_row(ctx, task, depth)
        ctx.log(f"[table_e1]   {task} {depth} done")
    return rows


def exp_table_e1_row(ctx, task, depth):
    """One task/depth of Table E.1 (the paraboloid 1H networks are kept for Table E.2)."""
    import graphsheaf as gs
    import graphsheaf.neural as gn
    makers = {"paraboloid": (gs.datasets.paraboloid, "identity", 1),
              "saddle": (gs.datasets.saddle, "identity", 1),
              "circles": (gs.datasets.circles, "sigmoid", 1),
              "blobs": (gs.datasets.blobs, "softmax", 4)}
    rows = []
    make, output, n_out = makers[task]
    d = make(rng=ctx.seed(42))
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
    if (task, depth) == ("paraboloid", "1H"):  # Table E.2 diagnoses these two networks
        ctx.cache["paraboloid 1H"] = (S, S2, d)
    if depth == "1H":  # E.3 draws what every 1H pair learned
        ctx.cache[("learned", task)] = (S, S2, d)
    ours = (h.train_loss[-1], hs.train_loss[-1], h.test_loss[-1], hs.test_loss[-1],
            h.test_loss[-1] / hs.test_loss[-1])
    labels = ("sheaf train", "SGD train", "sheaf test", "SGD test", "ratio sheaf/SGD test")
    for label, p, o in zip(labels, TABLE_E1[(task, depth)], ours):
        rows.append(Row("table_e1", f"{task} {depth} {label}", p, o, 1e-3))
    # the paper's reading: SGD wins on test loss everywhere except blobs, where it overfits
    claim = ours[4] < 1 if task == "blobs" else ours[4] > 1
    rows.append(Row("table_e1", f"{task} {depth}: sheaf/SGD test ratio {'< 1' if task == 'blobs' else '> 1'} "
                    "(1 = holds)", 1.0, float(claim), 0.0, "band"))
    return rows


DIAGNOSTICS = {  # spec §5.6, as printed: λ_1 median, λ_1 min, λ_max median, κ median, energies by block
    "1H": dict(dims=[2, 30, 1], dt=0.005, steps=100_000, test="0.086497", lam1="0.0334",
               lam1_min="0.0291", lam_max="20.47", kappa="612",
               fiedler=("0.011", "0.053", "0.936"), top=("0.001", "0.952", "0.047")),
    "3H": dict(dims=[2, 12, 8, 6, 1], dt=0.05, steps=200_000, test="0.048573", lam1="0.0011",
               lam1_min="0.0007", lam_max="18.54", kappa="16379",
               fiedler=("0.0002", "0.0011", "0.007", "0.008", "0.058", "0.056", "0.870"),
               top=("0", "0", "0", "0.0005", "0.004", "0.945", "0.051")),
}


def exp_diagnostics(ctx):
    """D: spectra of the trained 1H and 3H nets on 50 diagnostic inputs (weights 0, stalks 42)."""
    import graphsheaf as gs
    import graphsheaf.neural as gn
    src = ctx.seed(99)
    X_diag = (src.uniform((2, 50)) if hasattr(src, "uniform")
              else np.random.default_rng(src).uniform(size=(2, 50))) * 4 - 2
    rows, panels = [], []
    for name, cfg in DIAGNOSTICS.items():
        if ctx.quick and name == "3H":
            continue  # 200k steps: full run only
        cached = ctx.cache.get("training 1H") if name == "1H" else None
        if cached is not None:
            S, trainer, d, epochs = cached
        else:
            d = gs.datasets.paraboloid(rng=ctx.seed(42))
            S = gn.neural_sheaf(*gn.init_weights(cfg["dims"], rng=ctx.seed(0)))
            trainer = gn.SheafTrainer(S, mode="paper", dt=cfg["dt"])
            epochs = (10 if ctx.quick else cfg["steps"] // 1000)
            trainer.train(d.X_train, d.Y_train, d.X_test, d.Y_test, epochs=epochs,
                          steps_per_epoch=1000, rng=ctx.seed(42), progress=False)
        diag = gn.spectral_diagnostics(S, X_diag)
        blocks = list(diag.fiedler_energy)
        fied = [float(np.mean(diag.fiedler_energy[v])) for v in blocks]
        top = [float(np.mean(diag.top_energy[v])) for v in blocks]
        out_block = blocks[-1]
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
        rows.append(Row("diagnostics", f"{name}: slowest mode lives on the output block {out_block} "
                        "(largest Fiedler energy; 1 = holds)", 1.0,
                        float(int(np.argmax(fied)) == len(blocks) - 1), 0.0, "band",
                        f"{fied[-1]:.3f} of the energy" + ("" if epochs * 1000 == cfg["steps"] else
                                                           f" after {epochs}k steps")))
        panels.append((name, cfg, S, trainer, d, blocks, diag))
    if ctx.plt:
        fig, axes = ctx.plt.subplots(len(panels), 4, figsize=(16, 3.6 * len(panels)), squeeze=False)
        for (name, cfg, S, trainer, _d, blocks, diag), ax in zip(panels, axes):
            for a_, energy, title in ((ax[0], diag.fiedler_energy, "Fiedler (λ_1) vector"),
                                      (ax[1], diag.top_energy, "λ_max vector")):
                m = [np.mean(energy[v]) for v in blocks]
                sd = [np.std(energy[v]) for v in blocks]
                a_.bar(blocks, m, yerr=sd, capsize=3)
                a_.set(ylabel="fraction of energy", title=f"{name} {cfg['dims']}: {title}", ylim=(0, 1.05))
            z, a = trainer.state
            W, b = gn.to_weights(S)
            r_w = W[0] @ a[0] + b[0][:, None] - z[0]
            active = z[0] >= 0
            ax[2].scatter(z[0][active], r_w[active], s=2, label="active", alpha=0.5)
            ax[2].scatter(z[0][~active], r_w[~active], s=2, label="inactive", alpha=0.5)
            ax[2].set(xlabel="z¹_j", ylabel="(W¹a⁰ + b¹)_j − z¹_j", title="weight edge 1 residual")
            ax[2].legend(markerscale=4)
            r_r = np.maximum(z[0], 0) - a[1]
            ax[3].scatter(z[0][active], r_r[active], s=2, label="active", alpha=0.5)
            ax[3].scatter(z[0][~active], r_r[~active], s=2, label="inactive", alpha=0.5)
            ax[3].set(xlabel="z¹_j", ylabel="ReLU(z¹_j) − a¹_j", title="ReLU edge 1 residual")
            ax[3].legend(markerscale=4)
        fig.tight_layout()
        ctx.save(fig, "diagnostics")
    return rows


TARGETS = {
    "paraboloid": (lambda x1, x2: x1 ** 2 + x2 ** 2 - 2 / 3, (-2, 2)),
    "saddle": (lambda x1, x2: x1 ** 2 - x2 ** 2 + 0.5 * np.sin(2 * x1), (0, 2)),
}


def exp_learned_outputs(ctx):
    """E.3: what the 1H sheaf- and SGD-trained nets learned (the Table E.1 networks)."""
    import graphsheaf.neural as gn
    if not any(key[0] == "learned" for key in ctx.cache if isinstance(key, tuple)):
        exp_table_e1_row(ctx, "paraboloid", "1H")  # the quick run draws only this row
    tasks = [t for t in ("paraboloid", "saddle", "circles", "blobs") if ("learned", t) in ctx.cache]
    rows, grids = [], {}
    for task in tasks:
        S, S2, d = ctx.cache[("learned", task)]
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

            def classes(net, X):
                out = gn.predict(net, X)
                return (out[0] > 0.5).astype(int) if out.shape[0] == 1 else out.argmax(axis=0)
            target = None
            sheaf, sgd = classes(S, P).reshape(G1.shape), classes(S2, P).reshape(G1.shape)
            truth = d.Y_test[0].astype(int) if d.Y_test.shape[0] == 1 else d.Y_test.argmax(axis=0)
            acc = float(np.mean(classes(S, d.X_test) == truth))
            if task == "circles":  # spec §7 item 20: a closed boundary separating disk and annulus
                rows.append(Row("learned_outputs", "circles: the sheaf-trained boundary separates the "
                                "disk from the annulus, test accuracy ≥ 0.95 (1 = holds)", 1.0,
                                float(acc >= 0.95), 0.0, "band", f"accuracy {acc:.3f}"))
        grids[task] = (G1, G2, target, sheaf, sgd, d)
    if ctx.plt:
        fig, axes = ctx.plt.subplots(len(tasks), 3, figsize=(11, 3.3 * len(tasks)), squeeze=False)
        for task, ax in zip(tasks, axes):
            G1, G2, target, sheaf, sgd, d = grids[task]
            for a_, Z, title in zip(ax, (target, sheaf, sgd), ("target", "sheaf", "SGD")):
                if task in TARGETS:
                    cs = a_.contourf(G1, G2, Z, levels=20, cmap="viridis")
                    fig.colorbar(cs, ax=a_)
                elif Z is not None:
                    a_.contourf(G1, G2, Z, alpha=0.35, cmap="tab10", vmin=0, vmax=9)
                if task not in TARGETS:
                    lab = d.Y_train[0] if d.Y_train.shape[0] == 1 else d.Y_train.argmax(axis=0)
                    a_.scatter(d.X_train[0], d.X_train[1], c=lab, s=6, cmap="tab10", vmin=0, vmax=9)
                a_.set(xlabel="x₁", ylabel="x₂", title=f"{task}: {title}")
        fig.tight_layout()
        ctx.save(fig, "learned_outputs")
    return rows


SPECTRAL_EVOLUTION = {  # (method, k steps): train loss, λ_1, λ_max, κ medians over 50 inputs (spec §5.7 E.5)
    ("sheaf", 0): ("3.4988", "0.2248", "3.20", "14.3"), ("sheaf", 5): ("0.8557", "0.0678", "9.97", "147"),
    ("sheaf", 20): ("0.2614", "0.0449", "15.41", "343"), ("sheaf", 50): ("0.1146", "0.0371", "18.80", "507"),
    ("sheaf", 100): ("0.0756", "0.0337", "20.88", "620"),
    ("SGD", 5): ("0.0648", "0.0925", "7.44", "80"), ("SGD", 20): ("0.0109", "0.0622", "11.92", "192"),
    ("SGD", 50): ("0.00456", "0.0526", "14.47", "275"), ("SGD", 100): ("0.00299", "0.0484", "15.77", "326"),
}


def exp_spectral_evolution(ctx):
    """E.5: λ_1, λ_max, κ during sheaf and SGD training, [2,30,1] paraboloid, seed 42, 100k steps each."""
    import graphsheaf as gs
    import graphsheaf.neural as gn
    d = gs.datasets.paraboloid(rng=ctx.seed(42))
    X50 = d.X_train[:, :50]
    W0, b0 = gn.init_weights([2, 30, 1], rng=ctx.seed(42))
    epochs = 10 if ctx.quick else 100
    track = {}

    def spectra(method, k, W, b, loss):
        diag = gn.spectral_diagnostics(gn.neural_sheaf(W, b), X50)
        track[(method, k)] = (loss, float(np.median(diag.lambda_min)), float(np.median(diag.lambda_max)),
                              float(np.median(diag.condition)), diag.lambda_min)

    snapshots = {}  # (method, k) -> weights, for E.6

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
        d.X_train, d.Y_train, epochs=epochs, steps_per_epoch=1000, rng=ctx.seed(42), progress=False,
        callback=recorder("sheaf"))
    spectra("sheaf", 0, W0, b0, h.train_loss[0])
    S2 = gn.neural_sheaf([w.copy() for w in W0], [v.copy() for v in b0])
    gn.train_backprop(S2, d.X_train, d.Y_train, objective="logged", learning_rate=0.005, epochs=epochs,
                      steps_per_epoch=1000, callback=recorder("SGD"))
    ctx.cache["snapshots"] = (snapshots, d)
    rows = []
    names = ("train MSE", "λ_1 median", "λ_max median", "κ median")
    for (method, k), paper in SPECTRAL_EVOLUTION.items():
        if (method, k) in track:
            for name, p, o in zip(names, paper, track[(method, k)][:4]):
                rows.append(Row("spectral_evolution", f"{method} at {k}k steps: {name}", p, o, 1e-3))
    last = max(k for m, k in track if m == "sheaf")
    rows.append(Row("spectral_evolution",
                    f"sheaf ends with a smaller λ_1 than SGD at {last}k steps (1 = holds)", 1.0,
                    float(track[("sheaf", last)][1] < track[("SGD", last)][1]), 0.0, "band"))
    if ctx.plt:
        fig, axes = ctx.plt.subplots(1, 3, figsize=(14, 3.8))
        for method, style in (("sheaf", "o-"), ("SGD", "s--")):
            ks = sorted(k for m, k in track if m == method)
            for ax, j, label in zip(axes, (1, 2, 3), ("λ_1 (spectral gap)", "λ_max", "κ")):
                ax.semilogy(ks, [track[(method, k)][j] for k in ks], style, ms=3, label=method)
                ax.set(xlabel="k steps", ylabel=f"median {label} over 50 inputs", title=label)
        for ax in axes:
            ax.legend()
        fig.tight_layout()
        ctx.save(fig, "spectral_evolution")
        stages = [k for k in (1, 20, 100) if ("sheaf", k) in track] or [min(k for m, k in track)]
        fig, ax = ctx.plt.subplots(figsize=(6, 3.8))
        lam = np.concatenate([track[("sheaf", k)][4] for k in stages])
        bins = np.logspace(np.log10(lam.min()) - 0.05, np.log10(lam.max()) + 0.05, 35)
        for k in stages:
            ax.hist(track[("sheaf", k)][4], bins=bins, alpha=0.6, label=f"sheaf, {k}k steps")
        ax.set(xscale="log", xlabel="λ_1", ylabel="inputs", title="spectral gap across training stages")
        ax.legend()
        ctx.save(fig, "spectral_gap_stages")
    return rows


def exp_residual_stages(ctx):
    """E.6: edge residuals of the pinned equilibrium at 1k / 20k / 100k steps, sheaf and SGD (seed 42)."""
    import graphsheaf.neural as gn
    if "snapshots" not in ctx.cache:
        exp_spectral_evolution(ctx)
    snapshots, d = ctx.cache["snapshots"]
    X, Y = d.X_test, d.Y_test
    stages = sorted({k for _, k in snapshots})
    rows, clouds = [], {}
    for method in ("sheaf", "SGD"):
        for k in stages:
            S = gn.neural_sheaf(*snapshots[(method, k)])
            # output pinned to the labels: the limit of the authors' pinned diffusion from the
            # forward pass (Δt 0.01, tol 1e-10), solved exactly
            x = gn.equilibrium(S, X, pins={S.graph["output"]: Y}).state
            W, b = gn.to_weights(S)
            z1 = x["z1"]
            r_w = W[0] @ x["x"][:X.shape[0]] + b[0][:, None] - z1
            r_r = np.maximum(z1, 0) - x["a1"][:z1.shape[0]]
            clouds[(method, k)] = (z1, r_w, r_r)
        first, last = clouds[(method, stages[0])], clouds[(method, stages[-1])]
        size = [np.abs(c[1]).mean() + np.abs(c[2]).mean() for c in (first, last)]
        inactive = last[0] < 0
        rows.append(Row("residual_stages", f"{method}: residual clouds shrink from {stages[0]}k to "
                        f"{stages[-1]}k steps (1 = holds)", 1.0, float(size[1] < size[0]), 0.0, "band"))
        rows.append(Row("residual_stages", f"{method} at {stages[-1]}k: weight-edge residuals vanish on "
                        "inactive units (max |r|)", 0.0, float(np.abs(last[1][inactive]).max(initial=0.0)),
                        1e-9, "band"))
    if ctx.plt:
        fig, axes = ctx.plt.subplots(len(stages), 4, figsize=(15, 3.2 * len(stages)), squeeze=False)
        for i, k in enumerate(stages):
            for j, method in enumerate(("sheaf", "SGD")):
                z1, r_w, r_r = clouds[(method, k)]
                for a_, r, label in ((axes[i, 2 * j], r_w, "weight edge 1"), (axes[i, 2 * j + 1], r_r,
                                                                                 "ReLU edge 1")):
                    a_.scatter(z1.ravel(), r.ravel(), s=2, alpha=0.5)
                    a_.axvline(0, ls="--", color="gray", lw=0.7)
                    a_.set(xlabel="z¹_j", ylabel="residual", title=f"{method}, {k}k steps: {label}")
        fig.tight_layout()
        ctx.save(fig, "residual_stages")
    return rows


TABLE_E2 = {  # edge: (sheaf mean, sheaf std, SGD mean, SGD std), as printed
    "W1": ("0.0007", "0.0010", "0.0000", "0.0001"),
    "W2": ("0.0001", "0.0002", "0.0000", "0.0000"),
    "R1": ("0.0027", "0.0034", "0.0002", "0.0003"),
}


def exp_table_e2(ctx):
    """Table E.2: per-edge pinned discord of the sheaf- and SGD-trained [2,30,1] (seed 42), 50 test inputs."""
    import graphsheaf.neural as gn
    if "paraboloid 1H" not in ctx.cache:  # train them as Table E.1 does
        exp_table_e1_row(ctx, "paraboloid", "1H")
    S, S2, d = ctx.cache["paraboloid 1H"]
    X, Y = d.X_test[:, :50], d.Y_test[:, :50]
    edges = {"W1": ("x", "z1"), "W2": ("a1", "z2"), "R1": ("z1", "a1")}
    rows, found = [], {}
    for col, net in ((0, S), (2, S2)):
        name = "sheaf" if col == 0 else "SGD"
        # output hard-pinned to the labels; the exact pinned equilibrium (the limit of the
        # authors' pinned diffusion from the forward pass)
        dis = gn.pinned_discord(net, X, Y)
        total = 0.0
        for label, e in edges.items():
            per = dis.per_sample[e]
            mean, std = float(per.mean()), float(per.std(ddof=1))  # torch.std: unbiased
            total += mean
            found[(name, label)] = (mean, std)
            rows.append(Row("table_e2", f"{name}-trained {label} pinned discord, mean", TABLE_E2[label][col],
                            mean, 5e-5))
            rows.append(Row("table_e2", f"{name}-trained {label} pinned discord, std",
                            TABLE_E2[label][col + 1], std, 5e-5))
        rows.append(Row("table_e2", f"{name}-trained total pinned discord",
                        "0.0035" if col == 0 else "0.0003", total, 5e-5))
    ratio = sum(found[("sheaf", k)][0] for k in edges) / max(sum(found[("SGD", k)][0] for k in edges), 1e-300)
    rows.append(Row("table_e2", "the ReLU edge carries the most pinned discord, both nets (1 = holds)", 1.0,
                    float(all(found[(n, "R1")][0] >= max(found[(n, "W1")][0], found[(n, "W2")][0])
                              for n in ("sheaf", "SGD"))), 0.0, "band"))
    rows.append(Row("table_e2", "sheaf/SGD total pinned discord ratio (paper: ~10x)", "11.7", ratio, 0.5,
                    "band", "0.0035 / 0.0003 as printed"))
    return rows


EXPERIMENTS = {
    "convergence": exp_convergence,
    "sigmoid": exp_sigmoid,
    "phase_planes": exp_phase_planes,
    "pinning": exp_pinning,
    "spectral_depth": exp_spectral_depth,
    "training": exp_training,
    "circles": exp_circles,
    "beta_law": exp_beta_law,
    "diagnostics": exp_diagnostics,
    "spectral_evolution": exp_spectral_evolution,
    "residual_stages": exp_residual_stages,
    "depth_time": exp_depth_time,
    "table_e1": exp_table_e1,
    "table_e2": exp_table_e2,
    "learned_outputs": exp_learned_outputs,
}


def run(out="reproduction", quick=False, only=None, rng=None, log=print):
    """Run the experiments; write figures, report.csv and report.md into ``out``.

    Returns the list of :class:`Row`.
    """
    if rng is None:
        try:
            import torch  # noqa: F401
            rng = "torch"
        except ImportError:
            rng = "numpy"
    if rng not in ("torch", "numpy"):
        raise ValueError(f"rng must be 'torch' or 'numpy', got {rng!r}")
    names = list(EXPERIMENTS) if not only else list(only)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}")
    os.makedirs(out, exist_ok=True)
    ctx = _Context(out, quick, rng)
    ctx.log = log
    rows, timings = [], {}
    for name in names:
        t = time.perf_counter()
        log(f"[{name}] {EXPERIMENTS[name].__doc__.strip().splitlines()[0]}")
        rows.extend(EXPERIMENTS[name](ctx))
        timings[name] = time.perf_counter() - t
        log(f"[{name}] done in {timings[name]:.1f} s")
    _write(out, rows, timings, ctx, quick, rng)
    return rows


def _shown(row):
    """The paper's value as it prints it (strings are kept; floats shortest round-trip)."""
    text = row.printed
    return text[:-2] if text.endswith(".0") and "e" not in text else text


def _write(out, rows, timings, ctx, quick, rng):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["experiment", "quantity", "paper", "ours", "rel_diff", "tolerance", "kind", "ok", "note"])
    for r in rows:
        w.writerow([r.experiment, r.quantity, _shown(r), r.ours, r.rel_diff, r.tolerance, r.kind,
                    r.ok, r.note])
    atomic_write_text(os.path.join(out, "report.csv"), buf.getvalue())
    streams = ("the authors' PyTorch generator: exact rows are meaningful" if rng == "torch"
               else "NumPy: only band rows are expected to match")
    lines = ["# Reproduction report", "",
             f"Streams: **{rng}** ({streams}); {'quick run (fewer steps)' if quick else 'full run'}. "
             "Paper values: `paper-spec.md` §5 and §7.", "",
             "| experiment | quantity | paper | ours | rel. diff | tolerance | kind | ok |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        lines.append(f"| {r.experiment} | {r.quantity}{' (' + r.note + ')' if r.note else ''} | "
                     f"{_shown(r)} | {r.ours:.6g} | {r.rel_diff:.2e} | {r.tolerance:.2g} | {r.kind} | "
                     f"{'yes' if r.ok else '**no**'} |")
    lines += ["", "Wall time per experiment: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())]
    if ctx.figures:
        lines += ["", "Figures: " + ", ".join(os.path.basename(f) for f in ctx.figures if f.endswith(".png"))]
    else:
        lines += ["", "No figures: matplotlib is not installed (pip install graphsheaf[plot])."]
    atomic_write_text(os.path.join(out, "report.md"), "\n".join(lines) + "\n")
