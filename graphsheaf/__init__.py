"""graphsheaf: computational cellular sheaves on networkx graphs."""
from .exceptions import SheafError, NonUniqueExtensionError, ConvergenceWarning, DivergenceError
from .maps import StateDependentMap, ReLUGate, is_state_dependent
from .sheaves import validate_sheaf, constant_sheaf, random_sheaf
from .linalg import (stalk_offsets, edge_offsets, cochain_dim, to_vector, to_assignment,
                     coboundary_matrix, sheaf_laplacian, boundary_coordinates, Boundary)
from .cohomology import cohomology, Cohomology
from .harmonic import harmonic_extension, HarmonicExtension, restricted_laplacian
from .diagnostics import (dirichlet_energy, edge_energies, edge_residuals, group_energies,
                          spectral_gap)
from .diffusion import heat_diffusion, Trajectory
from .drawing import to_pydot, write_dot, render, GraphvizNotFoundError
from .io import write_json, read_json
