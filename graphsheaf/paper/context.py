"""What every experiment receives: the run's settings, its random streams, and the one
explicit place where networks that several experiments diagnose are trained once."""

__all__ = ["Context", "Figure", "Result"]


class Figure:
    """A figure to draw: ``plot(plt, **data)`` returns a matplotlib figure; saved as ``name``."""

    def __init__(self, name, plot, **data):
        self.name, self.plot, self.data = name, plot, data


class Result:
    """What an experiment returns: its rows and the figures to draw from its data."""

    def __init__(self, rows, figures=()):
        self.rows, self.figures = list(rows), list(figures)


class Context:
    """Settings of one run.

    Attributes
    ----------
    quick : bool
        Fewer steps (the quick run).
    rng : {"torch", "numpy"}
        Which random streams draw data, weights and stalks.
    log : callable
        Progress lines inside long experiments.
    """

    def __init__(self, quick, rng, log=print):
        self.quick, self.rng, self.log = quick, rng, log
        self._shared = {}

    def seed(self, s):
        """The random source for seed ``s``: the authors' stream or NumPy's."""
        from ..neural import TorchSeed
        return TorchSeed(s) if self.rng == "torch" else s

    def shared(self, key, compute):
        """``compute()`` once per run for ``key``: networks that several experiments read
        (trained by the functions of :mod:`.shared`, called by name, never through a side
        effect of another experiment)."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]
