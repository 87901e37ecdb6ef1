"""The paper as a package: Bosca & Ghrist, "Neural Networks as Local-to-Global
Computations" (arXiv 2603.14831), every experiment rerun and every published number put
beside ours.

Experiments are grouped by what they show: :mod:`.heat` (the heat equation converges to
the forward pass: Appendix A, E.1, E.2), :mod:`.pinning` (§5.1, Table E.2, E.6),
:mod:`.training` (Experiment B, E.4), :mod:`.beta` (Experiment C), :mod:`.spectra`
(Experiment D, E.5), :mod:`.tables` (Table E.1, E.3). Each returns its rows and the data of
its figures; plotting lives in the ``plots_*`` modules; the published numbers, with their
sources, in ``published.json``; networks that several experiments read are trained by
name in :mod:`.shared`. ``graphsheaf reproduce`` runs them (:func:`run`).
"""
from .report import Row
from .runner import EXPERIMENTS, run

__all__ = ["EXPERIMENTS", "Row", "run"]
