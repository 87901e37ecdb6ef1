"""Figures of the heat-equation experiments (data in, matplotlib figure out)."""

import numpy as np

#: more crossings than this are summarised (a shaded span and a rug) instead of one line each
MAX_CROSSING_LINES = 12


def _crossings(ax, switches):
    """Mark ReLU crossings: a line each when there are few; else the span they occupy,
    labelled with their count, and a rug of short ticks."""
    if not switches:
        return "no ReLU crossings"
    if len(switches) <= MAX_CROSSING_LINES:
        for s in switches:
            ax.axvline(s, color="red", lw=0.8, alpha=0.7)
        return f"red: {len(switches)} ReLU crossing{'s' * (len(switches) > 1)}"
    ax.axvspan(min(switches), max(switches), color="red", alpha=0.08)
    ax.plot(switches, np.zeros(len(switches)), "|", color="red", ms=8,
            transform=ax.get_xaxis_transform())
    return f"shaded: {len(switches)} ReLU crossings, steps {min(switches)}–{max(switches)}"


def _output_panel(ax, output, forward, label, title):
    """The output stalk along a heat-equation run against the forward-pass value."""
    ax.plot(output, lw=1.2, label=label)
    ax.axhline(forward, ls="--", color="k", label="forward pass")
    ax.set(xlabel="iteration", ylabel="value", title=title)
    ax.legend()


def convergence(plt, discord, switches, output, forward, label):
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].semilogy(discord, lw=1.2)
    note = _crossings(ax[0], [s for s in switches if s < len(discord)])
    ax[0].set(xlabel="iteration", ylabel="total discord", title=f"(a) total discord; {note}")
    _output_panel(ax[1], output, forward, label, "(b) output stalk")
    fig.tight_layout()
    return fig


def sigmoid(plt, total, edges, output, forward):
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].semilogy(total, lw=1.2, label="total")
    for name, v in edges.items():
        ax[0].semilogy(v, lw=0.8, alpha=0.7, label=name)
    ax[0].set(xlabel="iteration", ylabel="discord", title="discord by edge")
    ax[0].legend(fontsize=7, ncol=2)
    _output_panel(ax[1], output, forward, "σ($z^{(4)}$)", "output stalk")
    fig.tight_layout()
    return fig


def phase_planes(plt, shown):
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 4.2), squeeze=False)
    for (dims, (t, crossings, path, fixed, hit)), ax in zip(shown, axes[0]):
        n = len(path)
        ax.scatter(path[:, 0], path[:, 1], c=np.linspace(0.15, 1, n), cmap="Blues", s=2, lw=0)
        ax.plot(path[:, 0], path[:, 1], lw=0.4, color="tab:blue", alpha=0.5)
        ax.axhline(0, ls="--", color="gray", lw=0.8)
        ax.axvline(0, ls="--", color="gray", lw=0.8)
        ax.scatter(path[hit, 0], path[hit, 1], marker="x", color="red", s=25, label="crossing")
        ax.scatter(*path[0], color="gray", s=30, label="start")
        ax.scatter(*fixed, marker="*", color="gold", edgecolor="k", s=160, label="forward pass", zorder=5)
        ax.set(xlabel="z¹₁", ylabel="z¹₂", title=f"{dims}: trial {t}, {crossings} crossings, {n:,} states")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
