"""The state-dependent sheaf heat equation of a neural sheaf (Theorems 4.1 and 4.2).

Explicit Euler exactly as the authors implement it: every force is computed from the
old state, the ReLU masks are re-read from the current z at every step, all free
stalks move together by ``α Δt · force``, and hard pins are re-applied. The flow is
the (generalised) gradient flow of the Dirichlet energy

``E = ½ Σ_ℓ ‖W_ℓ a_{ℓ-1} + b_ℓ - z_ℓ‖² + ½ Σ_ℓ ‖R_{z_ℓ} z_ℓ - a_ℓ‖² (+ output, soft pins)``

and converges to the forward pass (the harmonic extension) from any start.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from .._repr import short_repr
from .._random import TorchSeed, random_source
from .._threads import single_blas_thread
from ..exceptions import DivergenceError, SheafError
from .kernels import axpy_into, force_calls, forward_sweep, residual_calls, run
from .dag.plan import is_dag_sheaf
from .plan import NetworkPlan
from .records import HeatRecorder
from .stalks import Stalks

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
        Whether the stopping rule (``criterion``) was met: by default the estimated
        distance to the limit fell below ``tol``.
    distance : float
        The estimated distance (max norm) of the final state from the limit: the
        remaining sum ``δ ρ / (1 - ρ)`` of the geometrically shrinking steps (δ the last
        step's largest change, ρ the ratio of the last two); inf while steps do not shrink.
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

    def __repr__(self):
        return short_repr(self)

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
    distance: float = float("inf")

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

def parse_pins(S, pins, M, *, what="pins"):
    """Normalise a pin spec to node -> (coordinate index array, values (len, M)).

    A spec maps a node (``"z1"``, ``"a2"``, ``"y"``, ...) to a full value (shape (n,) or
    (n, M), for the free part of the stalk), a scalar (every free coordinate), or
    ``{coordinate: value}``; values may be scalars or arrays of M samples. ``S`` may
    be a neural sheaf or its compiled plan.
    """
    plan = S if isinstance(S, NetworkPlan) else NetworkPlan(S)
    layout = plan.free_nodes()
    out = {}
    for node, spec in (pins or {}).items():
        if node == plan.input:
            raise SheafError(f"{what}: the input node {node!r} is always pinned to X")
        if node not in layout:
            raise SheafError(f"{what}: {node!r} is not a free node of this neural sheaf "
                             f"(free nodes: {', '.join(map(str, layout))})")
        n = layout[node]
        if isinstance(spec, dict):
            coords = []
            for c in spec:
                if isinstance(c, bool) or not (isinstance(c, (int, np.integer)) or
                                               (isinstance(c, str) and c.strip().isdigit())):
                    raise SheafError(f"{what} at {node!r}: coordinate {c!r} is not an integer")
                coords.append(int(c))
            if len(set(coords)) != len(coords):
                raise SheafError(f"{what} at {node!r}: a coordinate is pinned twice "
                                 f"({list(spec)!r} name the same coordinates)")
            coords = np.array(coords, dtype=np.int64)
            try:
                vals = [np.asarray(v, dtype=float) for v in spec.values()]
            except (TypeError, ValueError):
                raise SheafError(f"{what} at {node!r}: values must be numbers") from None
            vals = np.stack([np.broadcast_to(v, (M,)) for v in vals]) if vals else np.zeros((0, M))
        else:
            try:
                arr = np.asarray(spec, dtype=float)
            except (TypeError, ValueError):
                raise SheafError(f"{what} at {node!r}: values must be numbers or arrays of "
                                 "numbers") from None
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
            d = plan.width[node]
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
    """Compiled plan, checked inputs as columns, parsed hard and soft pins.

    Returns ``(plan, X2, squeeze, hard, soft)`` where ``X2`` has shape (n_0, M) and
    ``squeeze`` says whether X was a single sample.
    """
    plan = NetworkPlan(S)
    X = plan.check_inputs(X)
    squeeze = X.ndim == 1
    X2 = X[:, None] if squeeze else X
    M = X2.shape[1]
    return plan, X2, squeeze, parse_pins(plan, pins, M), _parse_soft(plan, soft_pins, stiffness, M)


def _parse_soft(plan, soft_pins, stiffness, M):
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
    parsed = parse_pins(plan, specs, M, what="soft_pins")
    return {v: (c, t, gammas[v]) for v, (c, t) in parsed.items()}


# ------------------------------------------------------------------------ the flow

class _Flow:
    """Residuals, forces and energies of the neural heat equation (columns are samples)."""

    def __init__(self, plan, output_mode):
        self.plan = plan
        self.phi = plan.phi
        if output_mode not in ("jacobian", "identity"):
            raise SheafError(f"output_mode must be 'jacobian' or 'identity', got {output_mode!r}")
        self.output_mode = output_mode
        self._r = self._q = None  # residual buffers, made on the first step
        self._F = None
        self._residual_calls = (None, None)  # (the stalks they are bound to, the calls)
        self._force_calls = (None, None, None)  # (the force buffers and residuals, the calls)

    def bind(self, F):
        """Let the last affine edge's residual live in the force buffer ``F.z[k]`` and each
        gate residual q_ℓ in ``F.a[ℓ+1]``: those forces start from the residuals and are
        updated in place, so a step needs no copies. The residuals are then valid until
        :meth:`forces` (which turns them into forces)."""
        self._F = F

    def residuals(self, st):
        """Edge residuals into buffers reused by every step (valid until the next call)."""
        if self._r is None:  # (the weights are fixed during a flow: the biases repeated once)
            self._r = [np.empty_like(v) for v in st.z]
            if self._F is not None:
                self._r[-1] = self._F.z[-1]
            self._q = (self._F.a[1:] if self._F is not None else
                       [np.empty_like(v) for v in st.z[:self.plan.k]])
            self._bias = [np.repeat(b[:, None], v.shape[1], axis=1) for b, v in zip(self.plan.b, st.z)]
            self._input = self.plan.W[0] @ st.a[0]  # (the same two operations as every step's)
            self._input += self._bias[0]
        if self._residual_calls[0] is not st:  # bound to these stalks once
            self._residual_calls = (st, residual_calls(self.plan, st.z, st.a, self._r, self._q,
                                                       bias=self._bias, input_term=self._input))
            self._force_calls = (None, None, None)  # (they read the stalks too)
        run(self._residual_calls[1])
        r, q = self._r, self._q
        out = None
        if st.y is not None:
            out = self.plan.output_value(st.z[-1]) - st.y  # φ(z) - y
        return r, q, out

    def forces(self, F, st, r, q, out, soft, hard):
        """Write the forces into the views of F; hard-pinned coordinates get force 0, so
        they stay where they were put."""
        shared = F is self._F  # the last residual already is its force (see bind)
        bound = self._force_calls
        if bound[0] is not F or bound[1] is not r:  # bound to F, r and the stalks once
            bound = self._force_calls = (F, r, force_calls(self.plan, st.z, r, q, F.z, F.a,
                                                           last=not shared))
        run(bound[2])
        if st.y is not None:
            if self.phi is not None and self.output_mode == "jacobian":
                F.z[-1] -= self.phi.jvp_t(st.z[-1], out)
            else:
                F.z[-1] -= out
            np.copyto(F.y, out)  # force on y is -(y - φ(z)) = φ(z) - y
        for node, (coords, target, gamma) in soft.items():
            Fv, v = F.node(node), st.node(node)
            Fv[coords] -= gamma * (v[coords] - target)
        for node, (coords, _vals) in hard.items():
            F.node(node)[coords] = 0.0


def initial_stalks(plan, X, init, draw, with_y):
    """Free stalks to start a flow from: the forward pass, zeros, or N(0, 1) draws.

    ``draw(shape)`` (see :func:`graphsheaf._random.random_source`) is called in the
    authors' order: every z stalk, then every a stalk, then the output stalk.
    Returns ``(z, a, y)`` with ``a[0] = X`` and ``y`` None unless ``with_y``.
    """
    M = X.shape[1]
    if init == "forward":
        z, a = forward_sweep(plan, X)
        return z, a, (plan.output_value(z[-1]) if with_y else None)
    if init == "zeros":
        gen = lambda n: np.zeros((n, M))
    elif init == "random":
        gen = lambda n: draw((n, M))
    else:
        raise SheafError(f"init must be 'random', 'zeros' or 'forward', got {init!r}")
    z = [gen(plan.dims[l]) for l in range(1, plan.k + 2)]
    a = [X] + [gen(plan.dims[l]) for l in range(1, plan.k + 1)]
    return z, a, (gen(plan.dims[-1]) if with_y else None)


def _from_state0(plan, state0, M):
    """Free parts of a given assignment, broadcast to M samples."""
    val = plan.free_parts(state0, list(plan.free_nodes()), M, what="state0")
    return ([val[u] for u in plan.z_nodes], [None] + [val[u] for u in plan.a_nodes],
            val[plan.y] if plan.y is not None else None)


def heat_equation(S, X, *, steps=None, dt=0.01, alpha=1.0, tol=1e-9, init="random",
                  pins=None, soft_pins=None, stiffness=1.0, record=True, rng=None,
                  output_mode="jacobian", min_steps=5, state0=None, trace=(),
                  criterion="distance"):
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
        Stop when the estimated distance to the limit is below ``tol`` (after
        ``min_steps``; see ``criterion``).
    criterion : {"distance", "step"}
        "distance" (default): the remaining movement ``δ ρ / (1 - ρ)`` of the
        geometrically shrinking steps -- a slow flow (small λ_min) moves little per step
        while still far from its limit, and a small step alone reported convergence 3e-7
        away from the forward pass. "step": the largest change of one step, the
        authors' rule (kept for the paper's reproduction).
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
    if is_dag_sheaf(S):
        return _dag_heat(S, X, steps=steps, dt=dt, tol=tol, rng=rng, pins=pins, soft_pins=soft_pins,
                         stiffness=stiffness, state0=state0)
    plan, X2, squeeze, hard, soft = prepare_pinned_inputs(S, X, pins, soft_pins, stiffness)
    M = X2.shape[1]
    flow = _Flow(plan, output_mode)
    for node in soft:
        if node in hard and np.intersect1d(soft[node][0], hard[node][0]).size:
            raise SheafError(f"soft_pins at {node!r} target coordinates that are hard-pinned")
    max_steps = 100_000 if steps is None else int(steps)
    if criterion not in ("distance", "step"):
        raise SheafError(f"criterion must be 'distance' or 'step', got {criterion!r}")
    for name, value in (("dt", dt), ("alpha", alpha)):
        if not (isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value)
                and value > 0):
            raise SheafError(f"heat_equation: {name} must be a finite number > 0, got {value!r} "
                             "(0 never moves, a negative step runs the flow backwards)")
    eta = float(alpha) * float(dt)
    with_y = plan.y is not None
    traced = {node: [] for node in trace}
    for node in traced:
        if node not in S or node == plan.input:
            raise SheafError(f"trace: {node!r} is not a free node of this network (z1, a1, ..., y)")
    # the free stalks and their forces as views of two buffers: a step is two array operations
    st, F = Stalks(plan, X2, with_y), Stalks(plan, X2, with_y)
    st.load(*(_from_state0(plan, state0, M) if state0 is not None
              else initial_stalks(plan, X2, init, random_source(rng) if init == "random" else None,
                                  with_y)))
    for node, (coords, vals) in hard.items():
        st.node(node)[coords] = vals
    scratch = np.empty_like(F.buf)
    flow.bind(F)
    recorder = HeatRecorder(plan, X2, st, soft) if record else None
    add = recorder.add if record else None
    move = axpy_into(st.buf, F.buf)  # move(η): st += η F, one BLAS call on the two buffers
    largest = np.maximum.reduce  # (the ufunc itself: ndarray.max's Python wrapper costs 0.15 µs)
    converged = False
    step = 0
    prev_delta, distance = np.inf, np.inf
    with single_blas_thread(), np.errstate(over="ignore", invalid="ignore"):
        while True:
            r, q, out = flow.residuals(st)
            for node, hist in traced.items():
                hist.append(st.node(node).copy())
            if add is not None:
                add(st, r, q, out)
            if converged or step >= max_steps:
                break
            flow.forces(F, st, r, q, out, soft, hard)
            # largest change of this step (pinned coordinates have force 0); a non-finite
            # state makes its forces non-finite, so delta sees it too
            # (η·max|F| is max|ηF| exactly: rounding a product is monotone)
            delta = eta * float(largest(np.abs(F.buf, out=scratch), axis=None)) \
                if scratch.size else 0.0
            move(eta)
            step += 1
            if not math.isfinite(delta):
                raise DivergenceError(
                    f"heat equation blew up at step {step}: alpha*dt = {eta:g} is too large for "
                    "this network; it needs alpha*dt*λ_max < 2 (λ_max from "
                    "gn.restricted_spectrum, or the bound (1 + max ||W||)^2)")
            rho = delta / prev_delta if prev_delta > 0 else 0.0
            distance = delta * rho / (1.0 - rho) if rho < 1.0 else np.inf
            prev_delta = delta
            if step >= min_steps and delta < tol and (criterion == "step" or distance < tol):
                converged = True
    state = plan.assignment(X2, [v.copy() for v in st.z], [v.copy() for v in st.a[1:]],
                            st.y.copy() if with_y else None)
    if squeeze:
        state = {v: x[:, 0] for v, x in state.items()}
    res = HeatResult(state, step, converged, float(dt), float(alpha))
    res.distance = float(distance)
    res.trace = {node: np.array(hist) for node, hist in traced.items()}
    if record:
        recorder.finish(res)
    return res


def _dag_heat(S, X, **kw):
    """gn.heat_equation on a DAG sheaf (one input): the generic Euler flow of its plan."""
    from .dag.dynamics import dag_heat_equation
    state, steps, converged, distance, energy = dag_heat_equation(S, X, **kw)
    out = S.graph["output"]
    return HeatResult(state, steps, converged, kw["dt"], 1.0, energy, 2 * energy, {},
                      np.asarray(state[out][:-1]).reshape(1, -1, 1), [], [], {}, distance)
