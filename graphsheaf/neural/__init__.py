"""Neural networks as cellular sheaves (Bosca & Ghrist), built on the generic tools.

Import as ``import graphsheaf.neural as gn``.
"""
from .builder import (OutputActivation, architecture, from_sklearn, from_torch, init_weights,
                      layer_nodes, neural_sheaf, to_weights)
from .forward import (NetView, Spectrum, Unitriangularity, check_unitriangular, forward,
                      forward_boundary, free_blocks, pinned_spec, predict, restricted_spectrum,
                      topological_layout)
from .dynamics import HeatResult, TorchSeed, heat_equation, parse_pins
from .pinning import Equilibrium, equilibrium
from .diagnostics import Discord, SpectralDiagnostics, discord, pinned_discord, spectral_diagnostics
