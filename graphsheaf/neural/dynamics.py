"""The state-dependent sheaf heat equation of a neural sheaf (Theorems 4.1 and 4.2).

Explicit Euler exactly as the authors implement it: every force is computed from the
old state, the ReLU masks are re-read from the current z at every step, all free
stalks move together by ``α Δt · force``, and hard pins are re-applied. The flow is
the (generalised) gradient flow of the Dirichlet energy

``E = ½ Σ_ℓ ‖W_ℓ a_{ℓ-1} + b_ℓ - z_ℓ‖² + ½ Σ_ℓ ‖R_{z_ℓ} z_ℓ - a_ℓ‖² (+ output, soft pins)``

and converges to the forward pass (the harmonic extension) from any start.
"""

from dataclasses import dataclass, field

import numpy as np

from .._threads import single_blas_thread
from ..exceptions import DivergenceError, SheafError
from .builder import OutputActivation
from .forward import NetView, _extend, _inputs, forward

__all__ = ["HeatResult", "TorchSeed", "heat_equation", "parse_pins", "random_source"]


@dataclass
class HeatResult:
    """Result of :func:`heat_equation`.

    Attributes
    ----------
    state : dict
        Final assignment node -> value (extended stalks include their ones).
    steps : int
        Euler steps taken.
    converged : bool
        Whether the largest change of a step fell below ``tol``.
    energy : ndarray (steps + 1,)
        Dirichlet energy (summed over the batch, soft pins included) before each step
        and at the end.
    total_discord : ndarray (steps + 1,)
        Sum over edges of the batch-mean squared residual (the authors' "total
        discord", 2E per sample).
    edge_discord : dict edge -> ndarray (steps + 1,)
        Batch-mean ‖(δc)_e‖² per edge.
    output : ndarray (steps + 1, n_out, M)
        The output stalk (``S.graph["output"]``) along the way.
    trace : dict node -> ndarray (steps + 1, dim, M)
        The nodes asked for with ``trace=``, at every step.
    switches : list of int
        Steps after which the activation pattern differs from the one before.
    """

    state: dict
    steps: int
    converged: bool
    dt: float
    alpha: float
    energy: np.ndarray = None
    total_discord: np.ndarray = None
    edge_discord: dict = field(default_factory=dict)
    output: np.ndarray = None
    switches: list = field(default_factory=list)
    switch_counts: list = field(default_factory=list)
    trace: dict = field(default_factory=dict)

    def decay_rate(self, start=None, stop=None):
        """Measured decay rate of the energy per unit time, from a log-linear fit.

        Theorem 4.1: asymptotically it approaches ``2 α λ_min(L_σ*[Ω,Ω])``.
        """
        E = np.asarray(self.energy)
        n = len(E)
        start = n // 2 if start is None else start
        stop = n if stop is None else stop
        seg = np.arange(start, stop)
        seg = seg[E[seg] > 1e-280]
        if len(seg) < 3:
            raise SheafError("not enough positive energy samples to fit a decay rate")
        slope = np.polyfit(seg * self.dt, np.log(E[seg]), 1)[0]
        return float(-slope)


# --------------------------------------------------------------------------- pins

def _node_layout(net):
    """Pinnable node -> (kind, layer index, free width)."""
    out = {}
    for l in range(1, net.k + 2):
        out[f"z{l}"] = ("z", l - 1, net.dims[l])
    for l in range(1, net.k + 1):
        out[f"a{l}"] = ("a", l, net.dims[l])
    if net.with_y:
        out["y"] = ("y", 0, net.dims[-1])
    return out


def parse_pins(S, pins, M, *, what="pins"):
    """Normalise a pin spec to node -> (coordinate index array, values (len, M)).

    A spec maps a node (``"z1"``, ``"a2"``, ``"y"``, ...) to a full value (shape (n,) or
    (n, M), for the free part of the stalk), a scalar (every free coordinate), or
    ``{coordinate: value}``; values may be scalars or arrays of M samples.
    """
    net = NetView(S)
    layout = _node_layout(net)
    out = {}
    for node, spec in (pins or {}).items():
        if node == S.graph["input"]:
            raise SheafError(f"{what}: the input node {node!r} is always pinned to X")
        if node not in layout:
            raise SheafError(f"{what}: {node!r} is not a free node of this neural sheaf "
                             f"(free nodes: {', '.join(layout)})")
        n = layout[node][2]
        if isinstance(spec, dict):
            coords = np.array([int(c) for c in spec], dtype=np.int64)
            vals = [np.asarray(v, dtype=float) for v in spec.values()]
            vals = np.stack([np.broadcast_to(v, (M,)) for v in vals]) if vals else np.zeros((0, M))
        else:
            arr = np.asarray(spec, dtype=float)
            if arr.ndim == 0:
                arr = np.full(n, float(arr))
            if arr.shape[0] != n or arr.ndim > 2:
                raise SheafError(f"{what} at {node!r}: value has shape {arr.shape}, expected "
                                 f"({n},) or ({n}, {M}) (the free part of the stalk)")
            coords = np.arange(n)
            vals = arr[:, None] if arr.ndim == 1 else arr
            vals = np.broadcast_to(vals, (n, M))
        bad = coords[(coords < 0) | (coords >= n)]
        if bad.size:
            d = S.nodes[node]["dim"]
            kind = "a constant (pinned to 1)" if bad[0] < d else "out of range"
            raise SheafError(f"{what} at {node!r}: coordinate {int(bad[0])} is {kind}; "
                             f"free coordinates are 0..{n - 1}")
        if vals.shape[1] != M:
            raise SheafError(f"{what} at {node!r}: values carry {vals.shape[1]} samples, X has {M}")
        if not np.all(np.isfinite(vals)):
            raise SheafError(f"{what} at {node!r}: non-finite value")
        out[node] = (coords, np.array(vals, dtype=float))
    return out


def prepare_pinned_inputs(S, X, pins, soft_pins, stiffness):
    """Checked inputs as columns plus parsed hard and soft pins.

    Returns ``(net, X2, squeeze, hard, soft)`` where ``X2`` has shape (n_0, M) and
    ``squeeze`` says whether X was a single sample.
    """
    net = NetView(S)
    X = _inputs(net, X)
    squeeze = X.ndim == 1
    X2 = X[:, None] if squeeze else X
    M = X2.shape[1]
    return net, X2, squeeze, parse_pins(S, pins, M), _parse_soft(S, soft_pins, stiffness, M)


def _parse_soft(S, soft_pins, stiffness, M):
    specs, gammas = {}, {}
    for node, spec in (soft_pins or {}).items():
        gamma = stiffness.get(node, 1.0) if isinstance(stiffness, dict) else stiffness
        if isinstance(spec, tuple) and len(spec) == 2:
            spec, gamma = spec
        gamma = float(gamma)
        if not gamma >= 0:
            raise SheafError(f"soft pin at {node!r}: stiffness must be >= 0, got {gamma}")
        specs[node] = spec
        gammas[node] = gamma
    parsed = parse_pins(S, specs, M, what="soft_pins")
    return {v: (c, t, gammas[v]) for v, (c, t) in parsed.items()}


# ------------------------------------------------------------------------ the flow

class _Flow:
    """Vectorised state and forces of the neural heat equation (columns are samples)."""

    def __init__(self, S, X, output_mode):
        self.S = S
        self.net = net = NetView(S)
        self.X = X
        self.k = net.k
        self.output_mode = output_mode
        self.phi = net.phi if isinstance(net.phi, OutputActivation) else None
        if output_mode not in ("jacobian", "identity"):
            raise SheafError(f"output_mode must be 'jacobian' or 'identity', got {output_mode!r}")
        self.relu_edges = [(f"z{l + 1}", f"a{l + 1}") for l in range(net.k)]
        self._r = self._q = None  # residual buffers, made on the first step

    def residuals(self, z, a, y):
        """Edge residuals into buffers reused by every step (valid until the next call)."""
        net = self.net
        if self._r is None or self._r[0].shape != z[0].shape:
            self._r = [np.empty_like(v) for v in z]
            self._q = [np.empty_like(v) for v in z[:self.k]]
        r, q = self._r, self._q
        for l in range(self.k + 1):
            np.matmul(net.W[l], a[l], out=r[l])
            r[l] += net.c[l][:, None]
            r[l] -= z[l]
        m = [net.mask(z[l]) for l in range(self.k)]
        # R z - a; R z = max(z, 0) whether the gate is strict or not (they differ only at 0)
        for l in range(self.k):
            np.maximum(z[l], 0.0, out=q[l])
            q[l] -= a[l + 1]
        out = None
        if y is not None:
            out = (self.phi.value(z[-1]) if self.phi is not None else z[-1]) - y  # φ(z) - y
        return r, m, q, out

    def forces(self, Fz, Fa, Fy, z, a, y, r, m, q, out, soft, hard):
        """Write the forces into Fz, Fa (index 0 unused), Fy (views of one buffer);
        hard-pinned coordinates get force 0, so they stay where they were put."""
        net = self.net
        for l in range(self.k):
            F = Fz[l]
            np.subtract(z[l], a[l + 1], out=F)
            F *= m[l]
            np.subtract(r[l], F, out=F)  # r - m (z - a)
            np.subtract(q[l], net.W[l + 1].T @ r[l + 1], out=Fa[l + 1])  # -(a - R z) - Wᵀr
        np.copyto(Fz[self.k], r[self.k])
        if y is not None:
            if self.phi is not None and self.output_mode == "jacobian":
                Fz[-1] -= self.phi.jvp_t(z[-1], out)
            else:
                Fz[-1] -= out
            np.copyto(Fy, out)  # force on y is -(y - φ(z)) = φ(z) - y
        for node, (coords, target, gamma) in soft.items():
            F, v = _value(node, Fz, Fa, Fy), _value(node, z, a, y)
            F[coords] -= gamma * (v[coords] - target)
        for node, (coords, _vals) in hard.items():
            _value(node, Fz, Fa, Fy)[coords] = 0.0

    def energy_terms(self, r, q, out, soft, z, a, y):
        """(energy summed over batch, dict edge -> batch-mean squared residual)."""
        M = r[0].shape[1]
        disc = {}
        E = 0.0
        net = self.net
        for l in range(self.k + 1):
            s = _sq(r[l])
            disc[net.affine[l]] = s / M
            E += 0.5 * s
        for l in range(self.k):
            s = _sq(q[l])
            disc[self.relu_edges[l]] = s / M
            E += 0.5 * s
        if out is not None:
            s = _sq(out)
            disc[(f"z{self.k + 1}", "y")] = s / M
            E += 0.5 * s
        for node, (coords, target, gamma) in soft.items():
            d = _value(node, z, a, y)[coords] - target
            E += 0.5 * gamma * float(np.einsum("ij,ij->", d, d))
        return E, disc

    def assignment(self, z, a, y, squeeze):
        net = self.net
        out = {"x": _extend(self.X, net.ones[0])}
        for l in range(1, self.k + 2):
            out[f"z{l}"] = z[l - 1].copy()
        for l in range(1, self.k + 1):
            out[f"a{l}"] = _extend(a[l], net.ones[l])
        if y is not None:
            out["y"] = y.copy()
        if squeeze:
            out = {v: x[:, 0] for v, x in out.items()}
        return out


def _sq(x):
    """Sum of squares (a BLAS dot: cheaper than a reduction for the small arrays here)."""
    x = x.ravel()
    return float(x @ x)


def _value(node, z, a, y):
    """The array of a node among per-layer lists z (z1..), a (x, a1, ..) and y."""
    if node == "y":
        return y
    l = int(node[1:])
    return z[l - 1] if node[0] == "z" else a[l]


def _initial(flow, init, rng):
    net = flow.net
    M = flow.X.shape[1]
    if init == "forward":
        f = forward(flow.S, flow.X)
        z = [f[f"z{l}"].copy() for l in range(1, net.k + 2)]
        a = [flow.X.copy()] + [f[f"a{l}"][:net.dims[l]].copy() for l in range(1, net.k + 1)]
        y = f["y"].copy() if net.with_y else None
        return z, a, y
    if init == "zeros":
        gen = lambda n: np.zeros((n, M))
    elif init == "random":
        gen = random_source(rng)
        gen_m = gen
        gen = lambda n: gen_m((n, M))
    else:
        raise SheafError(f"init must be 'random', 'zeros' or 'forward', got {init!r}")
    # the authors' order: every z stalk, then every a stalk, then the output stalk
    z = [gen(net.dims[l]) for l in range(1, net.k + 2)]
    a = [flow.X.copy()] + [gen(net.dims[l]) for l in range(1, net.k + 1)]
    y = gen(net.dims[-1]) if net.with_y else None
    return z, a, y


def random_source(rng):
    """Return ``draw(shape) -> N(0, 1) array`` for a seed, a Generator or a TorchSeed."""
    if isinstance(rng, TorchSeed):
        return rng.normal
    gen = np.random.default_rng(rng)
    return gen.standard_normal


class TorchSeed:
    """Draw N(0, 1) numbers with PyTorch's CPU generator, as the authors' code does.

    ``TorchSeed(42)`` calls ``torch.manual_seed(42)`` once and then serves
    ``torch.randn(shape, dtype=float64)`` in order, so data, weights and stalks can
    match the authors' runs digit for digit. Needs ``pip install graphsheaf[torch]``.
    """

    def __init__(self, seed):
        try:
            import torch
        except ImportError as err:
            raise ImportError("TorchSeed needs PyTorch: pip install graphsheaf[torch]") from err
        self.torch = torch
        self.seed = int(seed)
        torch.manual_seed(self.seed)

    def normal(self, shape):
        return self.torch.randn(*shape, dtype=self.torch.float64).numpy().copy()

    def uniform(self, shape):
        return self.torch.rand(*shape, dtype=self.torch.float64).numpy().copy()

    def permutation(self, n):
        return self.torch.randperm(n).numpy().copy()


def heat_equation(S, X, *, steps=None, dt=0.01, alpha=1.0, tol=1e-9, init="random",
                  pins=None, soft_pins=None, stiffness=1.0, record=True, rng=None,
                  output_mode="jacobian", min_steps=5, state0=None, trace=()):
    """Integrate the state-dependent sheaf heat equation of a neural sheaf.

    Parameters
    ----------
    S : neural sheaf
    X : array (n_0,) or (n_0, M)
        Pinned input(s); columns are independent samples (the batch sheaf).
    steps : int, optional
        Maximum number of Euler steps (default 100,000).
    dt, alpha : float
        Step and diffusion rate; each step moves by ``alpha * dt * force``. Stability
        needs ``alpha * dt * λ_max < 2`` (see :func:`restricted_spectrum`).
    tol : float
        Stop when the largest change of a step is below ``tol`` (after ``min_steps``).
    init : {"random", "zeros", "forward"}
        Start: i.i.d. N(0, 1) free stalks drawn in the authors' order (every z, then
        every a, then y) from ``rng`` (a seed, a Generator, or :class:`TorchSeed` for the
        authors' exact streams), zeros, or the forward pass.
    pins : dict, optional
        Hard pins: node -> value, or node -> {coordinate: value} (any z, a or y node;
        coordinates of the free part). Re-applied after every step.
    soft_pins : dict, optional
        Soft pins with the same spec (or ``(spec, gamma)`` tuples): a restoring force
        ``-γ (v - target)``, i.e. a penalty edge of stiffness γ to a stubborn vertex.
    stiffness : float or dict node -> float
        γ of the soft pins (default 1).
    record : bool
        Record energy, discords, output and pattern switches at every step.
    output_mode : {"jacobian", "identity"}
        Force of a sigmoid/softmax output edge on z^(k+1): ``-J_φᵀ(φ(z) - y)`` (the
        gradient) or ``-(φ(z) - y)`` (cross-entropy-like, no saturation).
    state0 : dict, optional
        Start from this assignment instead of ``init``.
    trace : iterable of node names, optional
        Nodes (``"z1"``, ``"a2"``, ``"y"``, ...) whose values are kept at every step, in
        ``result.trace[node]`` of shape (steps + 1, dim, M) (real part of extended
        stalks), e.g. for phase-plane plots of a trajectory.

    Returns
    -------
    HeatResult

    Raises
    ------
    DivergenceError
        On NaN/overflow, with a hint about ``dt`` against λ_max.

    Examples
    --------
    >>> W, b = gn.init_weights([2, 4, 1], rng=0)
    >>> S = gn.neural_sheaf(W, b)
    >>> res = gn.heat_equation(S, np.array([0.5, -0.3]), rng=42, tol=1e-12)
    >>> bool(res.converged), bool(abs(res.state["z2"][0] - gn.predict(S, np.array([0.5, -0.3]))[0]) < 1e-9)
    (True, True)
    """
    net, X2, squeeze, hard, soft = prepare_pinned_inputs(S, X, pins, soft_pins, stiffness)
    M = X2.shape[1]
    flow = _Flow(S, X2, output_mode)
    for node in soft:
        if node in hard and np.intersect1d(soft[node][0], hard[node][0]).size:
            raise SheafError(f"soft_pins at {node!r} target coordinates that are hard-pinned")
    max_steps = 100_000 if steps is None else int(steps)
    eta = float(alpha) * float(dt)
    if state0 is not None:
        z = [np.array(state0[f"z{l}"], dtype=float).reshape(net.dims[l], -1) for l in range(1, net.k + 2)]
        z = [np.broadcast_to(v, (v.shape[0], M)).copy() for v in z]
        a = [X2.copy()] + [np.broadcast_to(np.array(state0[f"a{l}"], dtype=float).reshape(
            S.nodes[f"a{l}"]["dim"], -1)[:net.dims[l]], (net.dims[l], M)).copy()
            for l in range(1, net.k + 1)]
        y = (np.broadcast_to(np.array(state0["y"], dtype=float).reshape(net.dims[-1], -1),
                             (net.dims[-1], M)).copy() if net.with_y else None)
    else:
        z, a, y = _initial(flow, init, rng)

    for node, (coords, vals) in hard.items():
        _value(node, z, a, y)[coords] = vals
    # the free stalks and their forces as views of two buffers: a step is two array operations
    sizes = [len(v) for v in z] + [len(v) for v in a[1:]] + ([len(y)] if y is not None else [])
    state, force = np.empty((sum(sizes), M)), np.empty((sum(sizes), M))
    views = np.split(state, np.cumsum(sizes)[:-1])
    fviews = np.split(force, np.cumsum(sizes)[:-1])
    for v, x in zip(views, z + a[1:] + ([y] if y is not None else [])):
        v[...] = x
    z, a = views[:net.k + 1], [a[0]] + views[net.k + 1:2 * net.k + 1]
    y = views[-1] if y is not None else None
    Fz, Fa = fviews[:net.k + 1], [None] + fviews[net.k + 1:2 * net.k + 1]
    Fy = fviews[-1] if y is not None else None
    traced = {node: [] for node in trace}
    for node in traced:
        if node not in S or node == "x":
            raise SheafError(f"trace: {node!r} is not a free node of this network (z1, a1, ..., y)")
    energies, totals, outs, switches, counts = [], [], [], [], []
    edge_hist = {}
    prev_masks = None
    converged = False
    step = 0
    with single_blas_thread(), np.errstate(over="ignore", invalid="ignore"):
        while True:
            r, m, q, out = flow.residuals(z, a, y)
            for node, hist in traced.items():
                hist.append(_value(node, z, a, y).copy())
            if record:
                E, disc = flow.energy_terms(r, q, out, soft, z, a, y)
                energies.append(E)
                totals.append(sum(disc.values()))
                for e, v in disc.items():
                    edge_hist.setdefault(e, []).append(v)
                outs.append((y if y is not None else z[-1]).copy())
                mk = np.concatenate([mm.ravel() for mm in m]) if m else np.zeros(0, bool)
                if prev_masks is not None:
                    changed = int(np.count_nonzero(mk != prev_masks))
                    if changed:
                        switches.append(step)
                        counts.append(changed)
                prev_masks = mk
            if converged or step >= max_steps:
                break
            flow.forces(Fz, Fa, Fy, z, a, y, r, m, q, out, soft, hard)
            # largest change of this step (pinned coordinates have force 0); a non-finite
            # state makes its forces non-finite, so delta sees it too
            force *= eta
            delta = float(np.abs(force).max(initial=0.0))
            state += force
            step += 1
            if not np.isfinite(delta):
                raise DivergenceError(
                    f"heat equation blew up at step {step}: alpha*dt = {eta:g} is too large for "
                    "this network; it needs alpha*dt*λ_max < 2 (λ_max from "
                    "gn.restricted_spectrum, or the bound (1 + max ||W||)^2)")
            if step >= min_steps and delta < tol:
                converged = True
    res = HeatResult(flow.assignment(z, a, y, squeeze), step, converged, float(dt), float(alpha))
    res.trace = {node: np.array(hist) for node, hist in traced.items()}
    if record:
        res.energy = np.array(energies)
        res.total_discord = np.array(totals)
        res.edge_discord = {e: np.array(v) for e, v in edge_hist.items()}
        res.output = np.array(outs)
        res.switches = switches
        res.switch_counts = counts
    return res


