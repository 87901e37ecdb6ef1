"""graphsheaf: computational cellular sheaves on networkx graphs.

A sheaf is a ``networkx.DiGraph`` or ``MultiDiGraph`` whose nodes carry a stalk
dimension ``dim`` and whose edges carry ``source_map`` and ``target_map``. See the
README for conventions; ``graphsheaf.neural`` holds the neural-network sheaves.
"""
from . import datasets
from .cohomology import Cohomology, cohomology
from .consistency import consistency_radius
from .constructions import (connection_sheaf, direct_sum, dual, random_connection_sheaf, restrict,
                            tensor_product)
from .diagnostics import (dirichlet_energy, edge_energies, edge_residuals, group_energies,
                          spectral_gap)
from .diffusion import Trajectory, heat_diffusion
from .drawing import GraphvizNotFoundError, draw, draw_neural, render, to_pydot, write_dot
from .exceptions import (ConvergenceWarning, DivergenceError, NonUniqueExtensionError,
                         RankDecisionWarning, SheafError)
from .functors import pullback, pushforward
from .harmonic import HarmonicExtension, harmonic_extension, restricted_laplacian
from .hodge import HodgeDecomposition, NearestSection, hodge_decomposition, nearest_section
from .io import read_json, write_json
from .layout import (Boundary, boundary_coordinates, cochain_dim, edge_offsets, stalk_offsets,
                     to_assignment, to_vector)
from .linalg import CoboundaryOperator, coboundary_matrix
from .laplacians import edge_laplacian, sheaf_laplacian
from .maps import PiecewiseLinearGate, ReLUGate, StateDependentMap, is_state_dependent
from .morphisms import SheafMorphism, induced_map
from .sheaves import constant_sheaf, random_sheaf, validate_sheaf

__version__ = "0.1.0"

__all__ = [
    "SheafError", "NonUniqueExtensionError", "ConvergenceWarning", "DivergenceError",
    "RankDecisionWarning",
    "StateDependentMap", "ReLUGate", "PiecewiseLinearGate", "is_state_dependent",
    "validate_sheaf", "constant_sheaf", "random_sheaf",
    "stalk_offsets", "edge_offsets", "cochain_dim", "to_vector", "to_assignment",
    "coboundary_matrix", "sheaf_laplacian", "boundary_coordinates", "Boundary",
    "CoboundaryOperator",
    "cohomology", "Cohomology",
    "harmonic_extension", "HarmonicExtension", "restricted_laplacian",
    "heat_diffusion", "Trajectory",
    "dirichlet_energy", "edge_energies", "edge_residuals", "group_energies", "spectral_gap",
    "to_pydot", "write_dot", "render", "GraphvizNotFoundError", "draw", "draw_neural",
    "write_json", "read_json", "datasets",
    "edge_laplacian", "hodge_decomposition", "HodgeDecomposition", "nearest_section",
    "NearestSection", "consistency_radius",
    "SheafMorphism", "induced_map", "pushforward", "pullback", "restrict", "direct_sum",
    "tensor_product", "dual", "connection_sheaf", "random_connection_sheaf",
]
