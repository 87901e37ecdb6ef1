"""Training: the paper's joint flow, the exact fast phase, backprop equivalence (spec §7 D)."""
import numpy as np
import pytest

import graphsheaf as gs
import graphsheaf.neural as gn
from graphsheaf.neural import losses
from graphsheaf.neural.stalks import Stalks
from graphsheaf.neural.exact import _fast_pass, _pattern_pass, batch_equilibrium, exact_gradients
from graphsheaf.neural.kernels import forward_sweep
from graphsheaf.neural.pinning import KINK, OFF, ON
from graphsheaf.neural.plan import NetworkPlan as _Params


def data(n=40, seed=0, n_in=2):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n_in, n))
    Y = (X ** 2).sum(0, keepdims=True) - 2 / 3
    return X, Y


def net(dims=(2, 6, 1), seed=0, output="identity", bias=0.1):
    W, b = gn.init_weights(list(dims), rng=seed)
    b = [np.full(len(v), bias) for v in b]
    return gn.neural_sheaf(W, b, output=output)


def mean_loss(S, X, Y, loss):
    z = gn.predict(gn.neural_sheaf(*gn.to_weights(S)), X)  # pre-activation of the output
    return loss.value(z, Y)


@pytest.mark.parametrize("loss, output, n_out", [
    (losses.L2(), "identity", 1), (losses.Huber(0.3), "identity", 2), (losses.Lp(3.0), "identity", 1),
    (losses.SigmoidBCE(), "sigmoid", 1), (losses.SoftmaxCE(), "softmax", 3)])
def test_backprop_gradients_match_finite_differences(loss, output, n_out):
    S = net((2, 5, 4, n_out), seed=1, output=output)
    X, _ = data(7, 1)
    rng = np.random.default_rng(2)
    if loss.activation == "softmax":
        Y = np.eye(n_out)[:, rng.integers(n_out, size=7)]
    elif loss.activation == "sigmoid":
        Y = rng.integers(0, 2, (1, 7)).astype(float)
    else:
        Y = rng.standard_normal((n_out, 7))
    gW, gb = gn.backprop_gradients(S, X, Y, loss=loss)
    W, b = gn.to_weights(S)

    def total(W, b):
        S2 = gn.neural_sheaf(W, b)
        return loss.value(gn.forward(S2, X)[S2.graph["output"]], Y)
    h = 1e-6
    for l in range(len(W)):
        for (i, j) in [(0, 0), (W[l].shape[0] - 1, W[l].shape[1] - 1)]:
            Wp = [w.copy() for w in W]
            Wm = [w.copy() for w in W]
            Wp[l][i, j] += h
            Wm[l][i, j] -= h
            fd = (total(Wp, b) - total(Wm, b)) / (2 * h)
            assert abs(fd - gW[l][i, j]) < 1e-8 * max(1, abs(fd)) + 1e-7
        bp = [v.copy() for v in b]
        bm = [v.copy() for v in b]
        bp[l][0] += h
        bm[l][0] -= h
        fd = (total(W, bp) - total(W, bm)) / (2 * h)
        assert abs(fd - gb[l][0]) < 1e-7


def test_backprop_equivalent_mode_update_is_the_gradient():  # small-nudge limit
    S = net((2, 6, 5, 1), seed=3)
    X, Y = data(30, 3)
    gW, gb = gn.backprop_gradients(S, X, Y)
    W0, b0 = gn.to_weights(S)
    tr = gn.SheafTrainer(S, mode="backprop-equivalent", learning_rate=1e-3)
    tr.train(X, Y, epochs=1)
    W1, b1 = gn.to_weights(S)
    for l in range(3):
        np.testing.assert_allclose((W0[l] - W1[l]) / 1e-3, gW[l] / 30, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose((b0[l] - b1[l]) / 1e-3, gb[l] / 30, rtol=1e-9, atol=1e-12)


def test_exact_update_tends_to_backprop_as_gamma_shrinks():
    S = net((2, 8, 1), seed=4)
    X, Y = data(50, 4)
    gW, _ = gn.backprop_gradients(S, X, Y)
    flat = np.concatenate([g.ravel() for g in gW])
    errs = []
    for gamma in (1.0, 1e-2, 1e-4):
        lW, _, info = gn.local_gradients(S, X, Y, gamma=gamma)
        local = np.concatenate([g.ravel() for g in lW])
        errs.append(np.linalg.norm(local - flat) / np.linalg.norm(flat))
        assert info["unsettled"] == 0
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-3
    cos = local @ flat / np.linalg.norm(local) / np.linalg.norm(flat)
    assert cos > 0.9999


def test_exact_equilibrium_is_stationary_and_matches_the_dense_solver():
    # the fast phase's cochain has zero gradient in every free coordinate (fixed pattern)
    S = net((2, 5, 1), seed=5)
    X, Y = data(20, 5)
    gamma = 0.5
    p = _Params(S)
    gW, gb, info = exact_gradients(p, X, Y, losses.L2(), gamma, 50)
    eq = gn.equilibrium(S, X, soft_pins={"z2": Y}, stiffness=gamma)
    # local rule from the dense equilibrium: ∂E/∂W = r aᵀ, r = W a + b - z
    W, b = gn.to_weights(S)
    a0 = eq.state["x"][:2]
    r1 = W[0] @ a0 + b[0][:, None] - eq.state["z1"]
    a1 = eq.state["a1"][:5]
    r2 = W[1] @ a1 + b[1][:, None] - eq.state["z2"]
    np.testing.assert_allclose(gW[0], r1 @ a0.T / gamma, atol=1e-9)
    np.testing.assert_allclose(gW[1], r2 @ a1.T / gamma, atol=1e-9)
    # stationarity of E = Σ edges + γ/2 ‖z2 - y‖² in z2 (others are checked by the solver)
    np.testing.assert_allclose(-r2 + gamma * (eq.state["z2"] - Y), 0, atol=1e-9)


def test_local_weight_update_is_minus_energy_gradient():  # §7 D17
    S = net((2, 4, 1), seed=6)
    X, Y = data(10, 6)
    rng = np.random.default_rng(0)
    tr = gn.SheafTrainer(S, mode="paper", dt=1e-3, beta=0.7)
    z = [rng.standard_normal((4, 10)), rng.standard_normal((1, 10))]
    a = [X, rng.standard_normal((4, 10))]
    W0 = [w.copy() for w in tr.plan.W]

    def energy(W, b):
        r1 = W[0] @ X + b[0][:, None] - z[0]
        r2 = W[1] @ a[1] + b[1][:, None] - z[1]
        q = np.maximum(z[0], 0) - a[1]
        return 0.5 * (np.sum(r1 ** 2) + np.sum(r2 ** 2) + np.sum(q ** 2) + np.sum((z[1] - Y) ** 2))
    b0 = [v.copy() for v in tr.plan.b]
    st = Stalks(tr.plan, X, False, ones=1.0)
    st.load(z, a, None)
    tr._paper_step(st, Y, 0.7)
    h = 1e-6
    for l in range(2):
        Wp = [w.copy() for w in W0]
        Wp[l][0, 1] += h
        Wm = [w.copy() for w in W0]
        Wm[l][0, 1] -= h
        fd = (energy(Wp, b0) - energy(Wm, b0)) / (2 * h)
        step = (W0[l][0, 1] - tr.plan.W[l][0, 1]) / (1e-3 * 0.7)
        assert abs(step - fd) < 1e-6 * max(1, abs(fd))


def test_joint_flow_energy_never_increases_with_small_steps():  # §7 D23
    S = net((2, 6, 1), seed=7)
    X, Y = data(30, 7)
    tr = gn.SheafTrainer(S, mode="paper", dt=1e-4, beta=1.0 / 30)
    rng = np.random.default_rng(1)
    st = tr._init_state(X, "random", rng.standard_normal)
    energies = []
    for _ in range(300):
        d = tr._discord(st, Y)
        energies.append(0.5 * sum(d.values()) * 30)
        tr._paper_step(st, Y, 1.0 / 30)
    assert np.all(np.diff(energies) <= 1e-10 * energies[0])


def test_output_force_is_phi_minus_y_for_cross_entropy():  # §7 D18
    z = np.random.default_rng(0).standard_normal((3, 5))
    y = np.eye(3)[:, [0, 1, 2, 0, 1]]
    ce = losses.SoftmaxCE()
    h = 1e-6
    for i in range(3):
        e = np.zeros_like(z)
        e[i] = h
        fd = np.array([(ce.value(z[:, [m]] + e[:, [m]], y[:, [m]]) - ce.value(z[:, [m]] - e[:, [m]], y[:, [m]])) / (2 * h)
                       for m in range(5)])
        np.testing.assert_allclose(ce.grad(z, y)[i], fd, atol=1e-8)


def test_paper_mode_learns_and_records_history():
    S = net((2, 10, 1), seed=0, bias=0.0)
    X, Y = data(60, 0)
    Xt, Yt = data(20, 1)
    h = gn.SheafTrainer(S, mode="paper", dt=0.005).train(X, Y, Xt, Yt, epochs=3, steps_per_epoch=500, rng=42)
    assert h.epochs == [0, 1, 2, 3] and h.steps[-1] == 1500
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]
    assert set(h.discord[-1]) >= {("x", "z1"), ("z1", "a1"), ("a1", "z2")}
    np.testing.assert_allclose(gn.predict(S, X), forward_sweep(_Params(S), X)[0][-1])  # written back


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_exact_mode_with_optimizers_and_minibatches(optimizer):
    S = net((2, 10, 1), seed=1)
    X, Y = data(64, 2)
    h = gn.SheafTrainer(S, mode="exact", optimizer=optimizer,
                        learning_rate=0.01 if optimizer == "adam" else 0.02).train(
        X, Y, epochs=20, batch_size=16, rng=0)
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]
    assert len(h.sweeps) == 20 * 4 and min(h.pattern_passes) >= 1


def test_classifier_exact_mode_cross_entropy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 90))
    labels = (np.arctan2(X[1], X[0]) // (2 * np.pi / 3) % 3).astype(int)
    Y = np.eye(3)[:, labels]
    S = net((2, 12, 3), seed=2, output="softmax")
    h = gn.SheafTrainer(S, mode="exact", learning_rate=0.5, gamma=0.05).train(X, Y, epochs=150)
    assert h.train_accuracy[-1] > 0.85 and h.train_loss[-1] < h.train_loss[0]


def test_train_backprop_same_initialisation_and_errors():
    X, Y = data(40, 3)
    S1, S2 = net(seed=5), net(seed=5)
    h = gn.train_backprop(S1, X, Y, learning_rate=0.01, epochs=50, optimizer="adam")
    assert h.mode == "backprop" and h.train_loss[-1] < h.train_loss[0]
    assert h.train_loss[0] == gn.SheafTrainer(S2, mode="exact").train(X, Y, epochs=0).train_loss[0]
    with pytest.raises(gs.SheafError, match="Y has shape"):
        gn.train_backprop(net(), X, Y[:, :5])
    with pytest.raises(gs.SheafError, match="mode must be"):
        gn.SheafTrainer(net(), mode="magic")
    with pytest.raises(gs.SheafError, match="unknown loss"):
        gn.SheafTrainer(net(), loss="hinge")


@pytest.mark.parametrize("loss", ["l1", ("lp", 1.5), ("huber", 0.5), ("lp", 3.0)])
def test_exact_mode_with_non_quadratic_potentials(loss):
    X, Y = data(60, 8)
    S = net((2, 10, 1), seed=8)
    h = gn.SheafTrainer(S, mode="exact", loss=loss, optimizer="adam", learning_rate=0.01).train(
        X, Y, epochs=60)
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]


def test_custom_potential_in_paper_and_exact_modes():
    X, Y = data(40, 9)
    quartic = losses.Custom(lambda z, y: np.sum((z - y) ** 4) / 4, lambda z, y: (z - y) ** 3)
    for mode in ("paper", "exact"):
        S = net((2, 8, 1), seed=9)
        kw = dict(dt=0.002) if mode == "paper" else dict(learning_rate=0.01, optimizer="adam")
        h = gn.SheafTrainer(S, mode=mode, loss=quartic, **kw).train(
            X, Y, epochs=20, steps_per_epoch=200 if mode == "paper" else None, rng=0)
        assert h.train_loss[-1] < h.train_loss[0]


def test_callback_logs_carry_the_current_weights():
    d = gs.datasets.paraboloid(rng=0)
    seen = {}

    def callback(epoch, logs):
        seen[epoch] = (logs["weights"], logs["biases"])
        return epoch == 2

    S = gn.neural_sheaf(*gn.init_weights([2, 6, 1], rng=1))
    gn.SheafTrainer(S, mode="exact", optimizer="adam", learning_rate=0.01).train(
        d.X_train, d.Y_train, epochs=5, callback=callback)
    W, b = gn.to_weights(S)  # training stopped after epoch 2: S holds those weights
    assert sorted(seen) == [1, 2]
    for got, want in zip(seen[2][0] + seen[2][1], W + b):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(seen[1][0][0], seen[2][0][0])


def _dense_solve(params, X, Y, gamma, P):
    """Reference: pinning._System.solve per sample for a three-state pattern (L2 output)."""
    from graphsheaf.neural.pinning import _System
    k = params.k
    cols = []
    for m in range(X.shape[1]):
        system = _System(params, X[:, m], {},
                         {f"z{k + 1}": (np.arange(params.dims[-1]), Y[:, m], gamma)})
        u = system.solve([p[:, m] for p in P])
        cols.append([system.get(u, f"z{l + 1}") for l in range(k + 1)] +
                    [system.get(u, f"a{l + 1}") for l in range(k)])
    return [np.stack([c[i] for c in cols], axis=1) for i in range(2 * k + 1)]


def _random_pattern(params, X, rng, deep_kinks=True):
    zs, _ = forward_sweep(params, X)
    P = [np.where(z >= 0, ON, OFF).astype(np.int8) for z in zs[:-1]]
    for l, p in enumerate(P):
        if l == 0 or deep_kinks:
            p[rng.random(p.shape) < 0.25] = KINK
    return P


@pytest.mark.parametrize("seed", range(9))
def test_one_pattern_pass_equals_the_dense_least_squares_solve(seed):
    # both pass types against an independent dense solve, for on/off/kink patterns
    rng = np.random.default_rng(seed)
    dims = [[2, 6, 1], [3, 8, 5, 2], [2, 5, 4, 4, 1]][seed % 3]
    gamma = [0.01, 1.0, 0.3][seed % 3]
    params = _Params(gn.neural_sheaf(*gn.init_weights(dims, rng=seed)))
    X, Y = rng.standard_normal((dims[0], 12)), rng.standard_normal((dims[-1], 12))
    k = params.k
    P = _random_pattern(params, X, rng)
    z, a, r, energy, _ = _pattern_pass(params, X, Y, np.concatenate(P), losses.L2(), gamma)
    for got, want in zip(z + a, _dense_solve(params, X, Y, gamma, P)):
        np.testing.assert_allclose(got, want, atol=1e-10)
    for l in range(k):
        assert np.all(z[l][P[l] == KINK] == 0)
    # r is the affine residual over γ, the energy half the squared residuals
    a_prev, e = X, 0
    for l in range(k + 1):
        s_w = z[l] - params.W[l] @ a_prev - params.b[l][:, None]
        np.testing.assert_allclose(r[l], -s_w / gamma, atol=1e-8)
        e = e + 0.5 * (s_w ** 2).sum(axis=0)
        if l < k:
            e = e + 0.5 * ((a[l] - (P[l] == ON) * z[l]) ** 2).sum(axis=0)
            a_prev = a[l]
    np.testing.assert_allclose(energy, e, atol=1e-10)
    # first-layer kinks only: the decoupled fast pass gives the same
    P = _random_pattern(params, X, rng, deep_kinks=False)
    m = [(p == ON).astype(float) for p in P]
    zs, acts = forward_sweep(params, X, sigma=m)
    z, a, r, energy = _fast_pass(params, Y, losses.L2(), gamma, zs, acts[1:], m, m, P[0] == KINK)
    for got, want in zip(z + a, _dense_solve(params, X, Y, gamma, P)):
        np.testing.assert_allclose(got, want, atol=1e-10)
    ref = _pattern_pass(params, X, Y, np.concatenate(P), losses.L2(), gamma)
    for got, want in zip(r + [energy], ref[2] + [ref[3]]):
        np.testing.assert_allclose(got, want, atol=1e-8)


@pytest.mark.parametrize("seed", range(8))
def test_batch_equilibrium_equals_the_per_sample_three_state_solver(seed):
    rng = np.random.default_rng(seed)
    dims = [[2, 6, 1], [3, 8, 5, 2], [2, 5, 4, 4, 1], [2, 30, 1]][seed % 4]
    S = gn.neural_sheaf(*gn.init_weights(dims, rng=seed))
    params = _Params(S)
    X, Y = rng.standard_normal((dims[0], 25)), 2 * rng.standard_normal((dims[-1], 25))
    gamma = [0.01, 1.0, 0.3][seed % 3]
    eq = batch_equilibrium(params, X, Y, losses.L2(), gamma, 20)
    ref = gn.equilibrium(S, X, soft_pins={f"z{len(dims) - 1}": Y}, stiffness=gamma)
    assert not eq.unsettled.any() and not ref.fell_back.any()
    k = params.k
    for l in range(k + 1):
        np.testing.assert_allclose(eq.z[l], ref.state[f"z{l + 1}"], atol=1e-10)
    for l in range(k):
        np.testing.assert_allclose(eq.a[l + 1], ref.state[f"a{l + 1}"][:dims[l + 1]], atol=1e-10)
        np.testing.assert_array_equal(eq.pattern[l], ref.pattern[l])
    np.testing.assert_allclose(eq.energy, ref.energy - ref.edge_energy[("soft", f"z{k + 1}")],
                               atol=1e-10)


@pytest.mark.parametrize("loss, output, n_out", [
    (losses.SigmoidBCE(), "sigmoid", 1), (losses.SoftmaxCE(), "softmax", 4), (losses.Huber(0.2), "identity", 2),
    (losses.Lp(1.5), "identity", 1), (losses.Lp(3.0), "identity", 2), (losses.L1(), "identity", 1),
    (losses.L1(), "identity", 2)])
@pytest.mark.parametrize("gamma", [0.01, 1.0])
def test_exact_equilibrium_is_stationary_for_every_potential(loss, output, n_out, gamma):
    # ∂E/∂(free coordinate) = 0 at the equilibrium for the solved pattern, kinks excepted,
    # and the pattern is self-consistent
    rng = np.random.default_rng(n_out)
    dims = [3, 7, 5, n_out]
    params = _Params(net(dims, seed=n_out, output=output))
    X = rng.standard_normal((3, 30))
    Y = np.eye(n_out)[:, rng.integers(n_out, size=30)] if output == "softmax" else \
        rng.integers(0, 2, (1, 30)).astype(float) if output == "sigmoid" else \
        rng.standard_normal((n_out, 30))
    eq = batch_equilibrium(params, X, Y, loss, gamma, 30)
    assert not eq.unsettled.any()
    k, W = params.k, params.W
    z, a = eq.z, eq.a
    sW = [z[l] - W[l] @ a[l] - params.b[l][:, None] for l in range(k + 1)]
    m = [(p == ON).astype(float) for p in eq.pattern]
    sR = [a[l + 1] - m[l] * z[l] for l in range(k)]
    tol = 1e-6 if isinstance(loss, losses.L1) else 1e-9
    for l in range(k):
        np.testing.assert_allclose(sR[l] - W[l + 1].T @ sW[l + 1], 0, atol=tol)  # ∂E/∂a_l
        free = eq.pattern[l] != KINK
        np.testing.assert_allclose((sW[l] - m[l] * sR[l])[free], 0, atol=tol)  # ∂E/∂z_l
        on, off = eq.pattern[l] == ON, eq.pattern[l] == OFF
        assert np.all(z[l][on] >= -1e-12) and np.all(z[l][off] <= 1e-12)
        assert np.all(z[l][~free] == 0)
    pull = loss.grad(z[k], Y)
    if isinstance(loss, losses.L1):  # a subgradient: sign where z ≠ y, within [-1, 1] at z = y
        v = -sW[k] / gamma
        at = np.abs(z[k] - Y) < 1e-7
        np.testing.assert_allclose(v[~at], pull[~at], atol=tol)
        assert np.all(np.abs(v) <= 1 + 1e-9)
    else:
        np.testing.assert_allclose(sW[k] + gamma * pull, 0, atol=tol)  # ∂E/∂z_out


@pytest.mark.parametrize("seed", range(12))
def test_relu_fast_path_equals_the_general_solver(seed):
    # exact_gradients(details=False) takes the stacked ReLU path (one seed sweep for one
    # output, the Gram matrix for several) and exchanges the settled samples' contributions
    rng = np.random.default_rng(seed)
    dims = [[2, 6, 1], [2, 30, 1], [2, 8, 8, 1], [3, 8, 8, 8, 1], [4, 12, 12, 3], [3, 10, 2]][seed % 6]
    if dims[-1] == 1:
        loss = [losses.L2(), losses.SigmoidBCE(), losses.Huber(0.3), losses.Lp(1.5)][seed % 4]
    else:
        loss = [losses.L2(), losses.SoftmaxCE()][seed % 2]
    output = loss.activation
    W, b = gn.init_weights(dims, rng=seed)
    strict = seed >= 8
    if strict:  # exact zeros: pre-activations at 0 under a strict gate
        W[0][:3] = 0.0
        b[0][:3] = 0.0
    params = _Params(gn.neural_sheaf(W, b, output=output, strict_relu=strict))
    X = rng.standard_normal((dims[0], 50))
    if output == "sigmoid":
        Y = rng.integers(0, 2, (1, 50)).astype(float)
    elif output == "softmax":
        Y = np.eye(dims[-1])[rng.integers(0, dims[-1], 50)].T
    else:
        Y = 2 * rng.standard_normal((dims[-1], 50))
    gamma = [0.01, 1.0, 0.3, 0.05][seed % 4]
    fast = exact_gradients(params, X, Y, loss, gamma, 10, details=False)
    general = exact_gradients(params, X, Y, loss, gamma, 10, details=True)
    for got, want in zip(fast[0] + fast[1], general[0] + general[1]):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)
    # (the fast path tries the crossed-into region before the kink: its pass counts differ)
    assert fast[2]["unsettled"] == general[2]["unsettled"] == 0
    assert fast[2]["sweeps"] >= dims[-1] + 3 and fast[2]["pattern_passes"] >= 1
    if seed % 4 in (1, 2):
        assert fast[2]["pattern_passes"] >= 2  # the columns of re-solved samples are exercised


@pytest.mark.parametrize("layout", ["flat", "2-D", "strided", "one gradient buffer"])
def test_adam_in_place_form_is_the_textbook_update(layout):
    # flat and 2-D contiguous arrays take BLAS's scalings and axpys, a strided view NumPy's;
    # the flat views are kept per parameter array, for fresh gradients each step (the DAG
    # trainer) and for one gradient buffer written in place (the chain trainer)
    from graphsheaf.neural.optimizers import Adam
    rng = np.random.default_rng(0)
    shape = {"flat": (20,), "2-D": (4, 5), "strided": (4, 5), "one gradient buffer": (20,)}[layout]
    p = rng.standard_normal(shape) if layout != "strided" else rng.standard_normal((4, 10))[:, ::2]
    opt, q = Adam(0.01), p.copy()
    m = v = np.zeros(shape)
    buf = np.empty(shape)
    for t in range(1, 30):
        g = rng.standard_normal(shape)
        if layout == "one gradient buffer":
            buf[...] = g
        opt.step([p], [buf if layout == "one gradient buffer" else g])
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        q = q - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-13)


def test_trainer_keeps_every_parameter_in_one_buffer_and_writes_back():
    X, Y = data(60)
    S = net((2, 5, 5, 1))
    before = gn.to_weights(S)
    tr = gn.SheafTrainer(S, mode="exact", optimizer="adam", learning_rate=0.01, weight_decay=0.1)
    tr.train(X, Y, epochs=3, batch_size=16, rng=0)
    theta = tr._flat[0]
    assert all(w.base is theta for w in tr.plan.W + tr.plan.b)
    W, b = gn.to_weights(S)  # train() wrote the buffer's values back to the graph
    assert not np.allclose(W[0], before[0][0])
    for got, want in zip(W + b, tr.plan.W + tr.plan.b):
        np.testing.assert_array_equal(got, want)
    t = tr.optimizer.t
    tr.step(X, Y)  # step() after train() moves the same buffer with the same optimiser state
    assert tr.optimizer.t == t + 1 and tr._flat[0] is theta
    assert not np.array_equal(tr.plan.W[0], W[0])


@pytest.mark.parametrize("mode", ["paper", "exact"])
def test_layer_without_bias_stays_without_bias_in_the_flat_buffer(mode):
    # a layer whose tail stalk has no pinned 1 (torch's Linear(bias=False)) has a frozen
    # bias: the one-buffer update (either layout) must leave it at 0, with weight decay too
    S = net((2, 5, 1))
    n_free = S.nodes["x"]["dim"] - len(S.graph["constant"]["x"])
    S.nodes["x"]["dim"] = n_free  # drop the input's pinned constants: layer 1 has no bias
    del S.graph["constant"]["x"]
    A = S.edges["x", "z1"]["source_map"]
    S.edges["x", "z1"]["source_map"] = np.asarray(A)[:, :n_free]
    X, Y = data(40)
    W0, b0 = gn.to_weights(S)
    tr = gn.SheafTrainer(S, mode=mode, weight_decay=0.01, learning_rate=0.01, dt=0.005)
    tr.train(X, Y, epochs=3, steps_per_epoch=50 if mode == "paper" else None)
    W1, b1 = gn.to_weights(S)
    assert not tr.plan.trainable_bias(0) and tr.plan.trainable_bias(1)
    assert np.all(tr.plan.b[0] == 0) and np.all(b1[0] == 0) and not np.allclose(b1[1], b0[1])
    assert not np.allclose(W1[0], W0[0]) and not np.allclose(W1[1], W0[1])


@pytest.mark.parametrize("details", [False, True])
def test_exact_gradients_write_into_given_arrays(details):
    # out= (views of a flat buffer, as the trainer passes) receives the same gradients
    get_loss = losses.get_loss
    W, b = gn.init_weights([3, 8, 6, 2], rng=2)
    plan = _Params(gn.neural_sheaf(W, b))
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((3, 16)), rng.standard_normal((2, 16))
    gW, gb, _ = exact_gradients(plan, X, Y, get_loss("l2"), 1e-2, details=details)
    flat = np.full(sum(w.size for w in W) + sum(v.size for v in b), np.nan)
    views, pos = [], 0
    for shape in [w.shape for w in W] + [v.shape for v in b]:
        n = int(np.prod(shape))
        views.append(flat[pos:pos + n].reshape(shape))
        pos += n
    oW, ob, _ = exact_gradients(plan, X, Y, get_loss("l2"), 1e-2, details=details,
                                out=(views[:3], views[3:]))
    assert all(o is v for o, v in zip(oW + ob, views))
    for got, want in zip(oW + ob, gW + gb):
        np.testing.assert_array_equal(got, want)
    assert np.isfinite(flat).all()


def test_several_output_gram_in_kept_buffers_equals_fresh_arrays():
    # pattern_gram's buffers are reused from batch to batch (the trainer's scratch): a
    # batch after another gives exactly what a fresh plan gives, with K and the rows equal
    # to the unbuffered ones; MaskedGram.dense(out=) equals its plain form
    from graphsheaf.neural.duals import MaskedGram, pattern_gram
    W, b = gn.init_weights([5, 16, 12, 9, 4], rng=7)
    rng = np.random.default_rng(8)
    sigs = [[(rng.random((w.shape[0], 24)) > 0.4).astype(float) for w in W[:-1]]
            for _ in range(2)]
    kept = {}
    for sig in sigs:
        K, rows = pattern_gram(W, sig, sig, 4, rows=True, buffers=kept)
        K0, rows0 = pattern_gram(W, sig, sig, 4, rows=True)
        np.testing.assert_array_equal(K, K0)
        for got, want in zip(rows, rows0):
            np.testing.assert_array_equal(got, want)
        dense = MaskedGram(W[-1], sig[-1]).dense()
        np.testing.assert_array_equal(MaskedGram(W[-1], sig[-1]).dense(out=np.empty_like(dense)),
                                      dense)
        np.testing.assert_allclose(dense, np.eye(4) + np.einsum("id,dm,jd->mij", W[-1],
                                                                1 + sig[-1], W[-1]), rtol=1e-13)
    plan = _Params(gn.neural_sheaf(W, b, output="softmax"))
    X = [rng.standard_normal((5, 24)) for _ in range(2)]
    Y = np.eye(4)[rng.integers(0, 4, 24)].T
    loss = losses.SoftmaxCE()
    exact_gradients(plan, X[0], Y, loss, 0.01, details=False)
    again = exact_gradients(plan, X[1], Y, loss, 0.01, details=False)
    fresh = exact_gradients(_Params(gn.neural_sheaf(W, b, output="softmax")), X[1], Y, loss, 0.01,
                            details=False)
    for got, want in zip(again[0] + again[1], fresh[0] + fresh[1]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dims", [[3, 8, 8, 1], [3, 8, 6, 3]])
def test_bound_passes_follow_the_plans_arrays_and_outputs_are_not_aliased(dims):
    # a ReLU pass binds its sweeps once per batch size to the plan's weight and bias arrays:
    # arrays replaced in the plan (as the trainer's flat buffer does) bind it again, arrays
    # edited in place are read when the pass runs, and info["output"] is the caller's own
    W, b = gn.init_weights(dims, rng=11)
    loss = losses.L2()
    rng = np.random.default_rng(12)
    X1, X2 = rng.standard_normal((3, 16)), rng.standard_normal((3, 16))
    Y = rng.standard_normal((dims[-1], 16))
    plan = _Params(gn.neural_sheaf(W, b))
    first = exact_gradients(plan, X1, Y, loss, 0.01, details=False)
    out1 = first[2]["output"].copy()
    exact_gradients(plan, X2, Y, loss, 0.01, details=False)
    np.testing.assert_array_equal(first[2]["output"], out1)
    W2 = [w + 0.1 * rng.standard_normal(w.shape) for w in W]
    plan.W[1] = W2[1].copy()  # replaced
    plan.W[0][...] = W2[0]  # edited in place
    plan.W[2][...] = W2[2]
    got = exact_gradients(plan, X2, Y, loss, 0.01, details=False)
    want = exact_gradients(_Params(gn.neural_sheaf(W2, b)), X2, Y, loss, 0.01, details=False)
    for g, w in zip(got[0] + got[1], want[0] + want[1]):
        np.testing.assert_array_equal(g, w)


def test_bound_backprop_follows_the_plans_arrays():
    # backprop binds its sweeps per batch size to the plan's arrays: replaced or edited
    # weights are what the next call computes with, and out= receives the gradients
    from graphsheaf.neural.gradients import backprop
    W, b = gn.init_weights([3, 8, 6, 2], rng=13)
    loss = losses.L2()
    rng = np.random.default_rng(14)
    X, Y = rng.standard_normal((3, 16)), rng.standard_normal((2, 16))
    plan = _Params(gn.neural_sheaf(W, b))
    gW, gb, z = backprop(plan, X, Y, loss, output=True)
    W2 = [w + 0.1 * rng.standard_normal(w.shape) for w in W]
    plan.W[0] = W2[0].copy()
    plan.W[1][...] = W2[1]
    plan.W[2][...] = W2[2]
    out = ([np.empty_like(w) for w in W], [np.empty_like(v) for v in b])
    gW2, gb2, z2 = backprop(plan, X, Y, loss, output=True, out=out)
    assert all(g is o for g, o in zip(gW2 + gb2, out[0] + out[1]))
    want = backprop(_Params(gn.neural_sheaf(W2, b)), X, Y, loss, output=True)
    for g, w in zip(gW2 + gb2 + [z2], want[0] + want[1] + [want[2]]):
        np.testing.assert_array_equal(g, w)
    assert not np.array_equal(z, z2)  # the first call's output is its own array


@pytest.mark.parametrize("seed", range(6))
def test_a_crossed_first_layer_neuron_never_holds_flipped(seed):
    # the exact mode sends samples whose first-hidden-layer neurons left their region straight
    # to the kink rules: flipped, such a neuron is off with no residual on its own edge, so
    # its z is the forward pass's again (>= 0) -- the flipped pass would always fail
    from graphsheaf.neural.exact import _relu_pass
    rng = np.random.default_rng(seed)
    dims = [[2, 30, 1], [3, 12, 8, 1], [2, 16, 16, 3]][seed % 3]
    W, b = gn.init_weights(dims, rng=seed)
    plan = _Params(gn.neural_sheaf(W, b, strict_relu=seed >= 3))
    X = rng.standard_normal((dims[0], 400))
    Y = 3 * rng.standard_normal((dims[-1], 400))
    strict = seed >= 3
    _, _, U, on, _, _ = _relu_pass(plan, X, Y, losses.L2(), 1.0)
    U, on = U.copy(), on.copy()
    wrong = ((U > 0) if strict else (U >= 0)) != on
    first = wrong[:dims[1]].any(axis=0)
    assert first.sum() >= 3  # (γ = 1 and large targets: many crossings)
    assert not (wrong[:dims[1]] & ~on[:dims[1]]).any()  # only on -> off in the first layer
    cols = np.flatnonzero(first)
    flipped = on[:, cols] ^ wrong[:, cols]
    _, _, U2, _, _, _ = _relu_pass(plan, X[:, cols], Y[:, cols], losses.L2(), 1.0, on=flipped)
    wrong2 = ((U2 > 0) if strict else (U2 >= 0)) != flipped
    assert wrong2[:dims[1]].any(axis=0).all()


@pytest.mark.parametrize("n_out", [1, 2])
def test_dag_exact_gradients_equal_the_chains_on_the_same_network(n_out):
    # a chain written as a DAG: one output takes the closed form (J Jᵀ read off the tangent of
    # Jᵀ 1, two sweeps), several the conjugate gradients; both equal the chain's exact mode
    # where no neuron reaches a kink (small γ)
    W, b = gn.init_weights([3, 8, 6, n_out], rng=1)
    ops, prev = [], "x"
    for l, (w, v) in enumerate(zip(W, b)):
        ops.append({"name": f"z{l}", "op": "linear", "input": prev, "weight": w.copy(),
                    "bias": v.copy()})
        prev = f"z{l}"
        if l < len(W) - 1:
            ops.append({"name": f"a{l}", "op": "relu", "input": prev})
            prev = f"a{l}"
    D = gn.dag_sheaf(ops, input_shape=(3,))
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((3, 20)), rng.standard_normal((n_out, 20))
    got, info = gn.local_gradients(D, X, Y, gamma=1e-4, by_name=True)
    want, _ = gn.local_gradients(gn.neural_sheaf(W, b), X, Y, gamma=1e-4, by_name=True)
    assert (info["gram_iterations"] == 0) == (n_out == 1)
    for l in range(3):
        for part in ("weight", "bias"):
            g, w = got[f"z{l}.{part}"], want[f"layer{l + 1}.{part}"]
            np.testing.assert_allclose(g, w, rtol=1e-8, atol=1e-10 * np.abs(w).max())
