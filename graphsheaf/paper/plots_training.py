"""Figures of the training experiments (data in, matplotlib figure out); one x-axis
quantity per panel."""

import numpy as np


def training_curves(plt, sheaf, sgd):
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    steps = np.array(sheaf.steps)
    ax[0].semilogy(steps, sheaf.train_loss, label="train")
    ax[0].semilogy(steps, sheaf.test_loss, label="test")
    ax[0].set(xlabel="Euler step", ylabel="MSE", title="sheaf training (paper mode)")
    ax[0].legend()
    ax[1].semilogy(np.array(sgd.epochs), sgd.train_loss, "--", label="train")
    ax[1].semilogy(np.array(sgd.epochs), sgd.test_loss, "--", label="test")
    ax[1].set(xlabel="epoch (100 SGD steps each)", title="SGD (backpropagation)")
    ax[1].legend()
    fig.suptitle("paraboloid [2,30,1]")
    fig.tight_layout()
    return fig


def training_discord(plt, history, names):
    fig, ax = plt.subplots(figsize=(6, 3.8))
    steps = np.array(history.steps)
    for e, name in names.items():
        ax.semilogy(steps[1:], [dd[e] for dd in history.discord[1:]], label=name)
    ax.set(xlabel="Euler step", ylabel="batch-mean discord", title="training discord by edge")
    ax.legend()
    return fig


def circles_boundaries(plt, grid, surfaces, data):
    fig, ax = plt.subplots(1, 2, figsize=(9, 4))
    for a, (title, p) in zip(ax, surfaces.items()):
        a.contour(grid, grid, p, levels=[0.5], colors="k")
        a.scatter(*data.X_train, c=data.Y_train[0], cmap="coolwarm", s=8)
        a.set(title=f"{title}: p = 0.5 boundary", xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    return fig


def depth_time(plt, Ts, curves):
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, losses in curves.items():
        ax.loglog(Ts, losses, "o-", label=name)
    ax.set(xlabel="integration time T = Δt · steps", ylabel="test MSE",
           title="paraboloid: depth × integration time")
    ax.legend()
    return fig


def beta_law(plt, finals, paper, n, seeds):
    x = np.array(list(finals))
    m = np.array([finals[bn][0] for bn in x])
    sd = np.array([finals[bn][1] for bn in x])
    fig, ax = plt.subplots(figsize=(5.8, 3.8))
    ax.axvspan(x.min() / 1.5, 0.3, color="tab:red", alpha=0.08, label="stagnation")
    ax.axvspan(0.3, 10, color="tab:green", alpha=0.08, label="optimal")
    ax.axvspan(10, x.max() * 1.5, color="tab:orange", alpha=0.08, label="divergence")
    ax.fill_between(x, np.maximum(m - sd, 1e-6), m + sd, alpha=0.3)
    ax.loglog(x, m, "o-", label=f"ours (mean ± std, {seeds} seed{'s' * (seeds > 1)})")
    ax.loglog(x, [paper[bn] for bn in x], "k^--", ms=4, lw=0.8, label="paper")
    ax.axvline(1.0, ls="--", color="gray", lw=0.8)
    ax.set(xlabel="β · n_train", ylabel="final test MSE",
           title=f"β scaling law, paraboloid [2,30,1], n_train = {n}")
    ax.legend(fontsize=8)
    return fig
