"""Result objects print sizes and key numbers, never whole arrays (issue: a Trajectory's repr
was 1,600 characters)."""
import networkx as nx
import numpy as np

import graphsheaf as gs
import graphsheaf.neural as gn


def results():
    G = gs.constant_sheaf(nx.grid_2d_graph(12, 12), dim=2)
    x0 = np.random.default_rng(0).standard_normal(gs.cochain_dim(G, 0))
    yield gs.cohomology(G, bases=True)
    yield gs.heat_diffusion(G, x0, np.linspace(0, 1, 30))
    yield gs.harmonic_extension(G, {(0, 0): [1.0, 0.0]}, allow_nonunique=True)
    yield gs.nearest_section(G, x0)
    yield gs.hodge_decomposition(G, np.ones(gs.cochain_dim(G, 1)))
    S = gn.neural_sheaf(*gn.init_weights([2, 30, 30, 1], rng=0))
    X = np.random.default_rng(1).standard_normal((2, 40))
    yield gn.heat_equation(S, X[:, 0], rng=1, steps=500)
    yield gn.equilibrium(S, X[:, 0], pins={"z3": {0: 1.0}})
    yield gn.discord(S, gn.forward(S, X))
    yield gn.spectral_diagnostics(S, X[:, :5])
    yield gs.datasets.paraboloid(rng=0)
    yield gs.boundary_coordinates(G, {(0, 0): [1.0, 0.0]})


def test_result_reprs_are_short_and_hold_no_arrays():
    for r in results():
        text = repr(r)
        assert len(text) < 500, (type(r).__name__, len(text))
        assert "array([" not in text and "[[" not in text, text
        assert text.startswith(type(r).__name__)
