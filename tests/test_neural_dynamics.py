"""Paper-spec §7 B (heat equation) and C (pinning), with the authors' weights and stalks."""
import numpy as np
import pytest

import graphsheaf as gs
import graphsheaf.neural as gn

from .paper_fixtures import (
    E1_SIGMOID_W,
    E1_SIGMOID_X,
    E1_STALKS,
    FIG6_STALKS,
    FIG6_W,
    SEED42_241_W,
    TWO_HIDDEN_W,
)

X6 = np.array([0.5, -0.3])


def test_fig6_convergence_exact_numbers():  # §7 B7
    S = gn.neural_sheaf(FIG6_W, None)
    assert abs(gn.predict(S, X6)[0] - (-0.7105655)) < 1e-7
    r = gn.heat_equation(S, X6, steps=10_000, tol=0, state0=FIG6_STALKS)
    assert r.switches == [50, 65]
    assert abs(r.total_discord[0] - 10.30) < 0.01
    assert abs(r.total_discord[5000] / 1.35e-8 - 1) < 0.1
    assert r.total_discord[10_000] < 1e-14
    assert abs(r.state["z2"][0] - gn.predict(S, X6)[0]) < 1e-6
    lam = gn.restricted_spectrum(S, X6).lambda_min
    assert abs(lam - 0.16477) < 1e-5
    slope = np.polyfit(np.arange(3000, 7000), np.log(r.total_discord[3000:7000]), 1)[0]
    assert abs(slope / (-2 * 0.01 * lam) - 1) < 0.02  # -0.003295 per step


def test_fig6_with_numpy_stream_converges_with_few_early_switches():  # §7 B7 band
    S = gn.neural_sheaf(FIG6_W, None)
    r = gn.heat_equation(S, X6, rng=42, tol=1e-13)
    assert r.converged and abs(r.state["z2"][0] - gn.predict(S, X6)[0]) < 1e-9
    assert all(s < 300 for s in r.switches)


def test_decay_rate_matches_twice_lambda_min_of_final_pattern():  # Theorem 4.1
    for seed, dims in [(1, [2, 5, 1]), (2, [3, 6, 4, 2]), (3, [2, 4, 4, 4, 1])]:
        W, b = gn.init_weights(dims, rng=seed)
        S = gn.neural_sheaf(W, b)
        x = np.random.default_rng(seed).standard_normal(dims[0])
        r = gn.heat_equation(S, x, rng=seed, tol=1e-12, steps=200_000)
        lam = gn.restricted_spectrum(S, x).lambda_min
        n = r.steps
        rate = r.decay_rate(n // 2, n - n // 10)
        assert abs(rate / (2 * lam) - 1) < 0.05


def test_converges_from_random_starts_with_monotone_energy():  # §7 B8
    rng = np.random.default_rng(0)
    for trial in range(50):
        depth = 1 + trial % 4
        dims = [2] + [int(rng.integers(2, 6)) for _ in range(depth)] + [1]
        W, b = gn.init_weights(dims, rng=trial)
        b = [rng.standard_normal(len(v)) * 0.2 for v in b]
        S = gn.neural_sheaf(W, b)
        x = rng.standard_normal(2)
        lam_max = (1 + max(1.0, max(np.linalg.norm(w, 2) for w in W))) ** 2
        dt = 0.9 / lam_max
        r = gn.heat_equation(S, x, dt=dt, rng=trial, tol=1e-10, steps=400_000)
        assert r.converged
        f = gn.forward(S, x)
        assert max(np.abs(r.state[v] - f[v]).max() for v in S) < 1e-6
        # Euler steps inside one pattern never raise E (dt < 1/λ_max); a step on which a
        # ReLU switches can overshoot the kink by O(dt²), so those steps are excluded
        rises = np.flatnonzero(np.diff(r.energy) > 1e-12 * r.energy[0])
        switching = {s - 1 for s in r.switches} | set(r.switches)
        assert set(rises.tolist()) <= switching


def test_rate_bound_with_small_steps():  # §7 B9
    W, b = gn.init_weights([2, 4, 1], rng=5)
    S = gn.neural_sheaf(W, b)
    x = np.array([0.7, -0.2])
    dt = 1e-3
    r = gn.heat_equation(S, x, dt=dt, rng=3, steps=20_000, tol=0)
    # λ_* = smallest λ_min over the patterns the trajectory visited
    states = [0] + r.switches
    lam_star = np.inf
    res0 = gn.heat_equation(S, x, dt=dt, rng=3, steps=0, tol=0)
    for s in states:
        st = gn.heat_equation(S, x, dt=dt, steps=s, tol=0, state0=res0.state).state
        D = gs.coboundary_matrix(S, state=st).toarray()
        free = np.setdiff1d(np.arange(D.shape[1]), gs.boundary_coordinates(S, gn.pinned_spec(S)).index)
        lam_star = min(lam_star, np.linalg.eigvalsh(D[:, free].T @ D[:, free])[0])
    t = np.arange(len(r.energy)) * dt
    assert np.all(r.energy <= r.energy[0] * np.exp(-2 * lam_star * t) * (1 + 1e-6) + 1e-300)


def test_step_size_threshold():  # §7 B10
    S = gn.neural_sheaf(FIG6_W, None)
    lam_max = gn.restricted_spectrum(S, X6).lambda_max
    ok = gn.heat_equation(S, X6, dt=1.9 / lam_max, init="forward", steps=2000, tol=0)
    assert np.abs(ok.state["z2"] - gn.predict(S, X6)).max() < 1e-12
    with pytest.raises(gs.DivergenceError, match="λ_max"):
        gn.heat_equation(S, X6, dt=2.9 / lam_max, rng=0, steps=200_000, tol=0)
    # for a fixed pattern the threshold is exactly 2/λ_max: the frozen linear sheaf
    f = gn.forward(S, X6)
    with pytest.raises(gs.DivergenceError, match="2/λ_max"):
        gs.heat_diffusion(S, f, 1.0, boundary=gn.pinned_spec(S), method="euler", state=f,
                          step=2.01 / lam_max)
    x = gs.heat_diffusion(S, f, 50.0, boundary=gn.pinned_spec(S), method="euler", state=f,
                          step=1.99 / lam_max)
    assert abs(x["z2"][0] - f["z2"][0]) < 1e-9


def test_sigmoid_output_e1_exact_numbers():  # §7 B11, Theorem 4.2
    S = gn.neural_sheaf(E1_SIGMOID_W, None, output="sigmoid")
    fwd = gn.predict(S, E1_SIGMOID_X)[0]
    assert abs(fwd - 0.7032633) < 1e-7
    r = gn.heat_equation(S, E1_SIGMOID_X, steps=62_500, tol=1e-12, state0=E1_STALKS)
    assert abs(r.state["y"][0] - 0.703262) < 2e-6 and r.total_discord[-1] < 2e-12
    assert abs(r.total_discord[0] - 44.2) < 0.1 and abs(r.total_discord[1000] - 0.107) < 0.001
    assert abs(r.output[10_000, 0, 0] - 0.67508) < 1e-5
    # the asymptotic rate is set by the tangent sheaf's λ_min
    lam = gn.restricted_spectrum(S, E1_SIGMOID_X).lambda_min
    assert abs(r.decay_rate(30_000, 60_000) / (2 * lam) - 1) < 0.02
    hidden = gn.restricted_spectrum(S, E1_SIGMOID_X, include_output=False).lambda_min
    assert abs(hidden - 0.01965) < 1e-5  # the spec's table value (no output vertex)


def test_output_modes_with_pinned_label():
    # identity mode: the output force is -(φ(z) - y), no Jacobian; both modes settle
    S = gn.neural_sheaf(SEED42_241_W, None, output="sigmoid")
    x = np.array([1.0, 0.5])
    results = {}
    for mode in ("identity", "jacobian"):
        r = gn.heat_equation(S, x, pins={"y": 0.9}, rng=1, tol=1e-12, output_mode=mode)
        assert r.converged and r.state["y"][0] == 0.9
        results[mode] = r.state["z2"][0]
    # at rest the weight-edge residual balances the output force of each mode
    for mode in results:
        st = gn.heat_equation(S, x, pins={"y": 0.9}, rng=1, tol=1e-12, output_mode=mode).state
        a1 = st["a1"][:4]
        r2 = SEED42_241_W[1] @ a1 - st["z2"]
        p = 1 / (1 + np.exp(-st["z2"]))
        out_force = (p - 0.9) * (p * (1 - p) if mode == "jacobian" else 1.0)
        assert abs(r2[0] - out_force[0]) < 1e-9
    assert results["identity"] != results["jacobian"]


def test_batched_inference_every_column_converges():  # §7 B12
    S = gn.neural_sheaf(SEED42_241_W, None)
    X = np.random.default_rng(5).standard_normal((2, 5))
    r = gn.heat_equation(S, X, tol=1e-11, rng=0)
    assert r.converged and r.output.shape[1:] == (1, 5)
    assert np.abs(r.state["z2"] - gn.predict(S, X)).max() < 1e-8
    assert 2_000 < r.steps < 30_000


def test_hard_pin_exact_numbers():  # §7 C13
    S = gn.neural_sheaf(SEED42_241_W, None)
    x = np.array([1.0, 0.5])
    assert abs(gn.predict(S, x)[0] - 1.278224) < 1e-6
    r = gn.heat_equation(S, x, pins={"z1": {0: 0.5}}, tol=1e-12, rng=gn.TorchSeed(42)
                         if _has_torch() else 42)
    assert r.converged and abs(r.state["z2"][0] - 1.310511) < 1e-5
    assert r.total_discord[-1] > 0 and 6_000 < r.steps < 11_000
    eq = gn.equilibrium(S, x, pins={"z1": {0: 0.5}})
    assert abs(eq.state["z2"][0] - 1.310511) < 1e-5 and eq.energy > 0
    assert max(np.abs(eq.state[v] - r.state[v]).max() for v in S) < 1e-8


def _has_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.mark.parametrize("gamma, out, z10", [(0.1, 1.162022, 0.364632), (1, 0.639112, 0.200548),
                                             (10, 0.116202, 0.036463), (100, 0.012656, 0.003971)])
def test_soft_pin_exact_numbers(gamma, out, z10):  # §7 C14
    S = gn.neural_sheaf(SEED42_241_W, None)
    x = np.array([1.0, 0.5])
    eq = gn.equilibrium(S, x, soft_pins={"z1": 0.0}, stiffness=gamma)
    assert abs(eq.state["z2"][0] - out) < 1e-5 and abs(eq.state["z1"][0] - z10) < 1e-5
    r = gn.heat_equation(S, x, soft_pins={"z1": (np.zeros(4), gamma)}, init="forward",
                         tol=1e-13, dt=min(0.01, 1.0 / (4 + gamma)), steps=500_000)
    assert abs(r.state["z2"][0] - out) < 1e-5


def test_feasible_pin_and_interlacing():  # §7 C15
    S = gn.neural_sheaf(SEED42_241_W, None)
    x = np.array([1.0, 0.5])
    f = gn.forward(S, x)
    eq = gn.equilibrium(S, x, pins={"a1": {1: f["a1"][1]}, "z2": f["z2"]})
    assert eq.energy < 1e-24 and max(np.abs(eq.state[v] - f[v]).max() for v in S) < 1e-12
    D = gs.coboundary_matrix(S, state=f).toarray()
    free = np.setdiff1d(np.arange(D.shape[1]), gs.boundary_coordinates(S, gn.pinned_spec(S)).index)
    L = D[:, free].T @ D[:, free]
    keep = np.ones(len(free), bool)
    keep[[0, 5]] = False
    sub = np.linalg.eigvalsh(L[np.ix_(keep, keep)])
    assert sub[0] > 0 and sub[0] >= np.linalg.eigvalsh(L)[0] - 1e-12


def test_pins_propagate_both_ways():  # §7 C16
    S = gn.neural_sheaf(TWO_HIDDEN_W, [np.full(6, 0.1), np.full(4, 0.1), np.zeros(1)])
    x = np.array([0.3, -0.4])
    f = gn.forward(S, x)
    eq = gn.equilibrium(S, x, pins={"z2": {0: f["z2"][0] + 1.0}})
    assert np.abs(eq.state["z1"] - f["z1"]).max() > 1e-3  # upstream moved
    assert np.abs(eq.state["a1"][:6] - f["a1"][:6]).max() > 1e-3
    assert np.abs(eq.state["z3"] - f["z3"]).max() > 1e-3  # downstream moved
    r = gn.heat_equation(S, x, pins={"z2": {0: f["z2"][0] + 1.0}}, init="forward", tol=1e-13)
    assert max(np.abs(eq.state[v] - r.state[v]).max() for v in S) < 1e-8


def test_three_state_pattern_settles_at_a_kink():
    # pinning the output far below drives hidden units onto z = 0, where neither "on"
    # nor "off" is consistent: the exact solver settles in the kink state, while Euler
    # chatters across z = 0 (a sliding mode) and stays O(dt) away from the minimum
    W = [np.array([[1.0], [1.0]]), np.array([[1.0, 1.0]])]
    S = gn.neural_sheaf(W, [np.array([0.5, -0.2]), np.zeros(1)])
    x = np.array([0.3])
    eq = gn.equilibrium(S, x, pins={"z2": {0: -3.0}})
    assert not eq.fell_back and np.all(eq.pattern[0] == -1)
    np.testing.assert_array_equal(eq.state["z1"], [0.0, 0.0])
    assert abs(eq.energy - 1.825) < 1e-12  # ½(0.8² + 0.1²) + ½(1 + 1) + ½(−2 + 3)²
    r = gn.heat_equation(S, x, pins={"z2": {0: -3.0}}, init="forward", tol=1e-13, steps=20_000)
    assert not r.converged and len(r.switches) > 1000  # chattering
    assert 0 <= r.energy[-1] - eq.energy < 0.01 and np.abs(r.state["z1"]).max() < 0.02
    for target in (-1.0, 0.5, 2.0):  # mixed and smooth cases agree with the heat flow
        eq = gn.equilibrium(S, x, pins={"z2": {0: target}})
        r = gn.heat_equation(S, x, pins={"z2": {0: target}}, init="forward", tol=1e-13,
                             steps=20_000)
        assert -1e-12 <= r.energy[-1] - eq.energy < 0.01


def test_pin_errors_name_the_culprit():
    S = gn.neural_sheaf(SEED42_241_W, None)
    x = np.array([1.0, 0.5])
    with pytest.raises(gs.SheafError, match="'q' is not a free node"):
        gn.equilibrium(S, x, pins={"q": 1.0})
    with pytest.raises(gs.SheafError, match="coordinate 4 is a constant"):
        gn.heat_equation(S, x, pins={"a1": {4: 2.0}})
    with pytest.raises(gs.SheafError, match="input node"):
        gn.heat_equation(S, x, pins={"x": {0: 2.0}})


def test_trace_keeps_the_trajectory_of_chosen_nodes():
    S = gn.neural_sheaf(*gn.init_weights([2, 4, 3, 1], rng=0))
    X = np.random.default_rng(1).standard_normal((2, 3))
    full = gn.heat_equation(S, X, rng=2, steps=40, trace=["z1", "a2"])
    assert full.trace["z1"].shape == (41, 4, 3) and full.trace["a2"].shape == (41, 3, 3)
    np.testing.assert_array_equal(full.trace["z1"][-1], full.state["z1"])
    # the state after 10 steps is where a 10-step run ends
    short = gn.heat_equation(S, X, rng=2, steps=10, min_steps=10, tol=0.0)
    np.testing.assert_array_equal(full.trace["a2"][10], short.state["a2"][:3])
    with pytest.raises(gs.SheafError, match="'x' is not a free node"):
        gn.heat_equation(S, X, rng=2, steps=5, trace=["x"])


@pytest.mark.parametrize("dims, output, soft", [([2, 4, 1], "identity", False),
                                                ([2, 4, 1], "identity", True),
                                                ([2, 6, 4, 4, 1], "sigmoid", False),
                                                ([3, 8, 2], "softmax", False)])
def test_heat_equation_records_in_blocks_what_it_records_step_by_step(monkeypatch, dims, output, soft):
    # small states are recorded in blocks of steps (one residual batch per block); the
    # energies, discords, outputs and switches equal the step-by-step records
    from graphsheaf.neural.records import HeatRecorder
    S = gn.neural_sheaf(*gn.init_weights(dims, rng=1), output=output)
    X = np.random.default_rng(2).standard_normal((dims[0], 3))
    kw = dict(steps=2500, tol=0.0, rng=3, dt=0.01)
    if soft:
        kw.update(soft_pins={f"z{len(dims) - 1}": np.full((dims[-1], 3), 0.3)}, stiffness=0.5)
    monkeypatch.setattr(HeatRecorder, "SMALL", 10 ** 9)
    monkeypatch.setattr(HeatRecorder, "BLOCK", 97)  # several blocks and a partial one
    blocks = gn.heat_equation(S, X, **kw)
    monkeypatch.setattr(HeatRecorder, "SMALL", 0)
    steps = gn.heat_equation(S, X, **kw)
    np.testing.assert_allclose(blocks.energy, steps.energy, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(blocks.total_discord, steps.total_discord, rtol=1e-10, atol=1e-300)
    assert list(blocks.edge_discord) == list(steps.edge_discord)
    for e in steps.edge_discord:
        np.testing.assert_allclose(blocks.edge_discord[e], steps.edge_discord[e], rtol=1e-9, atol=1e-300)
    np.testing.assert_array_equal(blocks.output, steps.output)
    assert blocks.switches == steps.switches and blocks.switch_counts == steps.switch_counts
    assert len(blocks.energy) == blocks.steps + 1


@pytest.mark.parametrize("strict", [False, True])
def test_hidden_forces_agree_on_small_and_large_layers(strict):
    # small layers take the 0/1 slope from heaviside, large ones from a bool mask: the forces
    # must be the same numbers, ties at exactly 0 (and -0.0) following the gate's rule
    from graphsheaf.neural.kernels import hidden_forces, residuals
    from graphsheaf.neural.plan import NetworkPlan
    W, b = gn.init_weights([3, 40, 2], rng=4)
    plan = NetworkPlan(gn.neural_sheaf(W, b, strict_relu=strict))
    assert plan.gate_table().strict[0, 0] == strict
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3, 64))
    z = [rng.standard_normal((40, 64)), rng.standard_normal((2, 64))]
    z[0][::7, ::5] = 0.0
    z[0][3::11, ::3] = -0.0
    a = [X, rng.standard_normal((40, 64))]
    r, q = residuals(plan, z, a)
    out = {}
    for cols in (slice(0, 1), slice(0, 64)):  # 40 coordinates (small) and 2,560 (large)
        zc, ac = [x[:, cols] for x in z], [x[:, cols] for x in a]
        rc, qc = [x[:, cols] for x in r], [x[:, cols] for x in q]
        Fz = [np.empty_like(x) for x in zc]
        Fa = [np.empty_like(x) for x in ac]
        hidden_forces(plan, zc, rc, qc, Fz, Fa)
        out[cols.stop] = (Fz, Fa[1])
        mask = (zc[0] > 0) if strict else (zc[0] >= 0)
        np.testing.assert_array_equal(Fz[0], rc[0] - mask * qc[0])
    np.testing.assert_array_equal(out[1][0][0], out[64][0][0][:, :1])


@pytest.mark.parametrize("dims", [[3, 40, 1], [3, 40, 30, 5]])
@pytest.mark.parametrize("M", [1, 64])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "aliased"])
def test_hidden_forces_gate_side_through_every_product_path(dims, M, layout):
    # F^a_ℓ = q_{ℓ-1} - W_ℓᵀ r_ℓ goes through BLAS in place (a rank-one update for one row,
    # dgemm for several) on large C-ordered buffers and through NumPy otherwise; weights may
    # be column blocks of [W | b] (paper mode) and q may live in the force buffer itself
    from graphsheaf.neural.kernels import hidden_forces, residuals
    from graphsheaf.neural.plan import NetworkPlan
    W, b = gn.init_weights(dims, rng=6)
    plan = NetworkPlan(gn.neural_sheaf(W, b))
    if layout == "strided":
        plan.W = [np.hstack([w, v[:, None]])[:, :w.shape[1]] for w, v in zip(plan.W, plan.b)]
        assert all(w.shape[0] == 1 or not w.flags.c_contiguous for w in plan.W)
    rng = np.random.default_rng(7)
    k = plan.k
    z = [rng.standard_normal((d, M)) for d in dims[1:]]
    a = [rng.standard_normal((dims[0], M))] + [rng.standard_normal((d, M)) for d in dims[1:-1]]
    r, q = residuals(plan, z, a)
    expect = [q[l] - plan.W[l + 1].T @ r[l + 1] for l in range(k)]
    Fz = [np.empty_like(x) for x in z]
    Fa = [None] + [np.empty_like(x) for x in a[1:]]
    if layout == "aliased":  # q_ℓ written into the force buffer, then updated in place
        for l in range(k):
            np.copyto(Fa[l + 1], q[l])
        q = Fa[1:]
    hidden_forces(plan, z, r, q, Fz, Fa)
    for l in range(k):
        np.testing.assert_allclose(Fa[l + 1], expect[l], rtol=1e-13, atol=1e-13)


def test_axpy_into_moves_in_place_on_any_layout():
    from graphsheaf.neural.kernels import axpy_into
    rng = np.random.default_rng(8)
    for y, x in [(rng.standard_normal((61, 300)), rng.standard_normal((61, 300))),  # BLAS
                 (rng.standard_normal((40, 6))[:, ::2], rng.standard_normal((40, 3))),  # strided
                 (rng.standard_normal(5).astype(np.float32), rng.standard_normal(5))]:
        y0, x0 = y.copy(), x.copy()
        move = axpy_into(y, x)
        move(0.25)
        move(-1.5)
        tol = 1e-6 if y.dtype == np.float32 else 1e-14
        np.testing.assert_allclose(y, y0 - 1.25 * x0, rtol=tol, atol=tol)
        np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("dims", [[3, 40, 1], [3, 40, 30, 5], [2, 6, 4, 1]])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_bound_residual_and_force_calls_read_the_arrays_when_run(dims, activation):
    # a flow binds residual_calls / force_calls once and runs them every step: each run
    # must see the stalks and the weights as they are then (moved in place), through every
    # product path (rank-one and dgemm updates, NumPy below 512 entries, heaviside and mask)
    from graphsheaf.neural.kernels import force_calls, residual_calls, run
    from graphsheaf.neural.plan import NetworkPlan
    W, b = gn.init_weights(dims, rng=9)
    plan = NetworkPlan(gn.neural_sheaf(W, b, activation=activation, negative_slope=0.1)
                       if activation != "relu" else gn.neural_sheaf(W, b))
    rng = np.random.default_rng(10)
    k, M = plan.k, 64
    z = [rng.standard_normal((d, M)) for d in dims[1:]]
    a = [rng.standard_normal((dims[0], M))] + [rng.standard_normal((d, M)) for d in dims[1:-1]]
    r, q = [np.empty_like(x) for x in z], [np.empty_like(x) for x in z[:k]]
    Fz, Fa = [np.empty_like(x) for x in z], [None] + [np.empty_like(x) for x in a[1:]]
    calls = residual_calls(plan, z, a, r, q) + force_calls(plan, z, r, q, Fz, Fa)
    for _ in range(3):
        for x in z + a + plan.W + plan.b:  # everything moves where it lies
            x += 0.1 * rng.standard_normal(x.shape)
        run(calls)
        for l in range(k + 1):
            np.testing.assert_allclose(r[l], plan.W[l] @ a[l] + plan.b[l][:, None] - z[l],
                                       rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(Fz[k], r[k])
        for l in range(k):
            g = plan.gates[l]
            np.testing.assert_allclose(q[l], g.value(z[l]) - a[l + 1], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(Fz[l], r[l] - g.slope(z[l]) * q[l], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(Fa[l + 1], q[l] - plan.W[l + 1].T @ r[l + 1], rtol=1e-12,
                                       atol=1e-12)
