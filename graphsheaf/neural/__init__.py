"""Neural networks as cellular sheaves (Bosca & Ghrist), built on the generic tools.

Import as ``import graphsheaf.neural as gn``.
"""
from . import losses
from .builder import (architecture, from_sklearn, from_torch, init_weights,
                      layer_nodes, make_gate, neural_sheaf, to_torch, to_weights)
from .dag import DagPlan, dag_sheaf, is_dag_sheaf
from .diagnostics import (Discord, SpectralDiagnostics, discord, pinned_discord,
                          spectral_diagnostics)
from .dynamics import HeatResult, TorchSeed, heat_equation, parse_pins
from .outputs import OutputActivation
from .forward import (Spectrum, Unitriangularity, check_unitriangular, forward, forward_boundary,
                      free_blocks, pinned_spec, predict, restricted_spectrum, topological_layout)
from .pinning import Equilibrium, equilibrium
from .plan import NetworkPlan, compile_network
from .training import (SheafTrainer, TrainHistory, backprop_gradients, local_gradients,
                       train_backprop)

__all__ = [
    "neural_sheaf", "init_weights", "to_weights", "from_sklearn", "from_torch", "architecture",
    "to_torch", "dag_sheaf", "is_dag_sheaf", "DagPlan",
    "layer_nodes", "OutputActivation",
    "forward", "predict", "forward_boundary", "pinned_spec", "free_blocks", "topological_layout",
    "check_unitriangular", "restricted_spectrum", "Unitriangularity", "Spectrum",
    "NetworkPlan", "compile_network", "make_gate",
    "heat_equation", "HeatResult", "TorchSeed", "parse_pins",
    "equilibrium", "Equilibrium",
    "discord", "pinned_discord", "spectral_diagnostics", "Discord", "SpectralDiagnostics",
    "losses", "SheafTrainer", "TrainHistory", "train_backprop", "local_gradients",
    "backprop_gradients", "SheafRegressor", "SheafClassifier",
]


def __getattr__(name):
    # the estimators need scikit-learn: imported on first use, so that the rest of
    # graphsheaf.neural does not (the ImportError names the extra to install)
    if name in ("SheafRegressor", "SheafClassifier"):
        from . import estimators
        return getattr(estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
