"""Discord decompositions and spectral diagnostics (spec §4.6, §7 E)."""
import numpy as np

import graphsheaf as gs
import graphsheaf.neural as gn

from .paper_fixtures import TWO_HIDDEN_W


def test_discord_decomposes_by_kind_and_layer_and_vanishes_at_forward():  # §7 E28
    S = gn.neural_sheaf(TWO_HIDDEN_W, None, output="sigmoid")
    X = np.random.default_rng(0).standard_normal((2, 6))
    assert gn.discord(S, gn.forward(S, X)).total == 0.0
    r = gn.heat_equation(S, X, steps=300, tol=0, rng=0)
    d = gn.discord(S, r.state)
    assert abs(sum(d.by_kind.values()) - d.total) < 1e-12
    assert abs(sum(d.by_layer.values()) - d.total) < 1e-12
    assert set(d.by_kind) == {"affine", "relu", "output"} and set(d.by_layer) == {1, 2, 3}
    # batch mean of ‖(δc)_e‖²: twice the generic per-edge energy, averaged over samples
    E = gs.edge_energies(S, r.state, state=r.state)
    for e, v in d.edges.items():
        if S.edges[e]["kind"] != "output":  # generic tools see the linearised output edge
            assert abs(v - 2 * np.mean(E[e])) < 1e-12
    assert abs(r.total_discord[-1] - d.total) < 1e-9 * max(1, d.total)


def test_pinned_discord_heat_and_exact_agree():
    S = gn.neural_sheaf(TWO_HIDDEN_W, [np.full(6, 0.1), np.zeros(4), np.zeros(1)])
    X = np.random.default_rng(1).standard_normal((2, 4))
    Y = gn.predict(S, X) + 0.3
    exact = gn.pinned_discord(S, X, Y)
    heat = gn.pinned_discord(S, X, Y, method="heat", tol=1e-13, steps=400_000)
    assert exact.total > 0
    for e in exact.edges:
        assert abs(exact.edges[e] - heat.edges[e]) < 1e-6
    zero = gn.pinned_discord(S, X, gn.predict(S, X))
    assert zero.total < 1e-20


def test_spectral_diagnostics_block_energies():
    W, b = gn.init_weights([2, 6, 4, 1], rng=1)
    S = gn.neural_sheaf(W, b)
    X = np.random.default_rng(2).standard_normal((2, 5))
    d = gn.spectral_diagnostics(S, X)
    for energies in (d.fiedler_energy, d.top_energy):
        assert set(energies) == {"z1", "a1", "z2", "a2", "z3"}
        np.testing.assert_allclose(sum(energies.values()), 1.0, atol=1e-12)
    s = gn.restricted_spectrum(S, X)
    np.testing.assert_allclose(d.lambda_min, s.lambda_min)
    np.testing.assert_allclose(d.condition, s.lambda_max / s.lambda_min)


def test_spectral_gap_falls_with_depth_at_init():  # §7 E24 (band: medians fall with depth)
    X = np.random.default_rng(0).uniform(-2, 2, (2, 30))
    medians = []
    for dims in ([2, 30, 1], [2, 10, 8, 1], [2, 8, 6, 4, 1]):
        S = gn.neural_sheaf(*gn.init_weights(dims, rng=42))
        medians.append(np.median(gn.restricted_spectrum(S, X).lambda_min))
    assert medians[0] > medians[1] > medians[2]
    assert 0.1 < medians[0] < 0.4 and medians[2] < 0.08
