"""``graphsheaf reproduce``: run the experiments, draw their figures, write the report."""

import os
import time

from .._files import atomic_path
from . import beta, heat, pinning, spectra, tables, training
from .context import Context
from .report import summary, write_report

__all__ = ["EXPERIMENTS", "run"]

#: name -> experiment, in the order of a full run (the paper's order)
EXPERIMENTS = {
    "convergence": heat.convergence,
    "sigmoid": heat.sigmoid,
    "phase_planes": heat.phase_planes,
    "pinning": pinning.pinning,
    "spectral_depth": heat.spectral_depth,
    "training": training.training,
    "circles": training.circles,
    "beta_law": beta.beta_law,
    "diagnostics": spectra.diagnostics,
    "spectral_evolution": spectra.spectral_evolution,
    "residual_stages": pinning.residual_stages,
    "depth_time": training.depth_time,
    "table_e1": tables.table_e1,
    "table_e2": pinning.table_e2,
    "learned_outputs": tables.learned_outputs,
}


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _save(plt, figure, out):
    fig = figure.plot(plt, **figure.data)
    paths = []
    for ext in ("png", "pdf"):
        path = os.path.join(out, f"{figure.name}.{ext}")
        with atomic_path(path) as tmp:  # a failed save keeps an earlier figure whole
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format=ext)
        paths.append(path)
    plt.close(fig)
    return paths


def resolve_rng(rng):
    """The random streams to use: "torch" when PyTorch is installed, unless told otherwise."""
    if rng is None:
        try:
            import torch  # noqa: F401
            return "torch"
        except ImportError:
            return "numpy"
    if rng not in ("torch", "numpy"):
        raise ValueError(f"rng must be 'torch' or 'numpy', got {rng!r}")
    if rng == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ImportError("--rng torch draws the authors' random streams with PyTorch, which is "
                              "not installed: pip install graphsheaf[torch], or use --rng numpy") from None
    return rng


def run(out="reproduction", quick=False, only=None, rng=None, log=print):
    """Run the experiments; write figures, ``report.csv`` and ``report.md`` into ``out``.

    Returns the list of :class:`~.report.Row`.
    """
    rng = resolve_rng(rng)
    names = list(EXPERIMENTS) if not only else list(only)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}")
    os.makedirs(out, exist_ok=True)
    ctx = Context(quick, rng, log)
    plt = _pyplot()
    rows, timings, figures = [], {}, []
    log(f"{len(names)} experiment{'s' * (len(names) > 1)}, {'quick' if quick else 'full'} run, "
        f"{rng} random streams")
    for i, name in enumerate(names, 1):
        t = time.perf_counter()
        log(f"[{i}/{len(names)} {name}] {EXPERIMENTS[name].__doc__.strip().splitlines()[0]}")
        result = EXPERIMENTS[name](ctx)
        rows.extend(result.rows)
        if plt is not None:
            for figure in result.figures:
                figures.extend(_save(plt, figure, out))
        timings[name] = time.perf_counter() - t
        log(f"[{i}/{len(names)} {name}] done in {timings[name]:.1f} s")
    write_report(out, rows, timings, figures, quick, rng, plotted=plt is not None)
    log(f"{summary(rows, rng)}; report: {os.path.join(out, 'report.md')}")
    return rows
