"""Figures of the diagnostic experiments (data in, matplotlib figure out)."""

import numpy as np


def diagnostics(plt, panels):
    fig, axes = plt.subplots(len(panels), 4, figsize=(16, 3.6 * len(panels)), squeeze=False)
    for p, ax in zip(panels, axes):
        diag, blocks = p["diag"], p["blocks"]
        for a_, energy, title in ((ax[0], diag.fiedler_energy, "Fiedler (λ_1) vector"),
                                  (ax[1], diag.top_energy, "λ_max vector")):
            a_.bar(blocks, [np.mean(energy[v]) for v in blocks], yerr=[np.std(energy[v]) for v in blocks],
                   capsize=3)
            a_.set(ylabel="fraction of energy", title=f"{p['name']} {p['dims']}: {title}", ylim=(0, 1.05))
        z = p["z"]
        active = z >= 0
        for a_, r, ylabel, title in ((ax[2], p["r_weight"], "(W¹a⁰ + b¹)_j − z¹_j", "weight edge 1 residual"),
                                     (ax[3], p["r_relu"], "ReLU(z¹_j) − a¹_j", "ReLU edge 1 residual")):
            a_.scatter(z[active], r[active], s=2, label="active", alpha=0.5)
            a_.scatter(z[~active], r[~active], s=2, label="inactive", alpha=0.5)
            a_.set(xlabel="z¹_j", ylabel=ylabel, title=title)
            a_.legend(markerscale=4)
    fig.tight_layout()
    return fig


def spectral_evolution(plt, track):
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for method, style in (("sheaf", "o-"), ("SGD", "s--")):
        ks = sorted(k for m, k in track if m == method)
        for ax, j, label in zip(axes, (1, 2, 3), ("λ_1 (spectral gap)", "λ_max", "κ")):
            ax.semilogy(ks, [track[(method, k)][j] for k in ks], style, ms=3, label=method)
            ax.set(xlabel="k steps", ylabel=f"median {label} over 50 inputs", title=label)
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    return fig


def gap_stages(plt, track, stages):
    fig, ax = plt.subplots(figsize=(6, 3.8))
    lam = np.concatenate([track[("sheaf", k)][4] for k in stages])
    bins = np.logspace(np.log10(lam.min()) - 0.05, np.log10(lam.max()) + 0.05, 35)
    for k in stages:
        ax.hist(track[("sheaf", k)][4], bins=bins, alpha=0.6, label=f"sheaf, {k}k steps")
    ax.set(xscale="log", xlabel="λ_1", ylabel="inputs", title="spectral gap across training stages")
    ax.legend()
    return fig


def residual_stages(plt, stages, clouds):
    fig, axes = plt.subplots(len(stages), 4, figsize=(15, 3.2 * len(stages)), squeeze=False)
    for i, k in enumerate(stages):
        for j, method in enumerate(("sheaf", "SGD")):
            z1, r_w, r_r = clouds[(method, k)]
            for a_, r, label in ((axes[i, 2 * j], r_w, "weight edge 1"),
                                 (axes[i, 2 * j + 1], r_r, "ReLU edge 1")):
                a_.scatter(z1.ravel(), r.ravel(), s=2, alpha=0.5)
                a_.axvline(0, ls="--", color="gray", lw=0.7)
                a_.set(xlabel="z¹_j", ylabel="residual", title=f"{method}, {k}k steps: {label}")
    fig.tight_layout()
    return fig


def learned_outputs(plt, grids, regression):
    fig, axes = plt.subplots(len(grids), 3, figsize=(11, 3.3 * len(grids)), squeeze=False)
    for (task, (G1, G2, target, sheaf, sgd, d)), ax in zip(grids.items(), axes):
        for a_, Z, title in zip(ax, (target, sheaf, sgd), ("target", "sheaf", "SGD")):
            if task in regression:
                cs = a_.contourf(G1, G2, Z, levels=20, cmap="viridis")
                fig.colorbar(cs, ax=a_)
            else:
                if Z is not None:
                    a_.contourf(G1, G2, Z, alpha=0.35, cmap="tab10", vmin=0, vmax=9)
                lab = d.Y_train[0] if d.Y_train.shape[0] == 1 else d.Y_train.argmax(axis=0)
                a_.scatter(d.X_train[0], d.X_train[1], c=lab, s=6, cmap="tab10", vmin=0, vmax=9)
            a_.set(xlabel="x₁", ylabel="x₂", title=f"{task}: {title}")
    fig.tight_layout()
    return fig
