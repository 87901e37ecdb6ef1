"""Heat equation, pinned equilibria, discord and spectra of DAG sheaves, computed on the
graph by the generic tools (harmonic extension at a state, edge energies, the restricted
Laplacian) and the compiled plan's residuals."""

import numpy as np
import scipy.linalg as la

from ... import diagnostics as gdiag
from ...exceptions import SheafError
from ...harmonic import harmonic_extension, restricted_laplacian
from ...maps import PiecewiseLinearGate
from ..._random import random_source
from .api import as_columns, dag_boundary
from .plan import DagPlan

__all__ = ["dag_discord", "dag_equilibrium", "dag_heat_equation", "dag_spectral_diagnostics"]


def _single(plan, X):
    X = as_columns(plan, X)
    if X.shape[1] != 1:
        raise SheafError("this DAG-sheaf algorithm takes one input at a time (a column)")
    return X


def _pattern(plan, vals):
    """The activation pattern: every gate's regions and every max-pool's choices."""
    key = []
    for e in plan.edges:
        if isinstance(e.A, PiecewiseLinearGate):
            key.append(e.A.region(vals[e.tail][:-1]).tobytes())
        elif e.state_dependent:
            key.append(e.A._pick(vals[e.tail]).tobytes())
    return tuple(key)


def _pin_index(plan, pins):
    """Vertex -> (coordinates, values) of hard pins ({v: value} or {v: {coordinate: value}})."""
    out = {}
    for v, spec in (pins or {}).items():
        if v not in plan.dims or v == plan.input:
            raise SheafError(f"pins name {v!r}, not a free vertex of the network")
        spec = dict(enumerate(np.ravel(spec))) if not isinstance(spec, dict) else spec
        coords = np.array([int(k) for k in spec], dtype=np.int64)
        if coords.size and (coords.min() < 0 or coords.max() >= plan.dims[v]):
            raise SheafError(f"pins of {v!r}: coordinates must lie in 0..{plan.dims[v] - 1}")
        out[v] = (coords, np.array([float(x) for x in spec.values()]))
    return out


def dag_heat_equation(S, X, *, dt=0.01, steps=None, tol=1e-9, rng=None, state0=None, pins=None,
                      soft_pins=None, stiffness=1.0):
    """Euler steps of the state-dependent heat equation ``ẋ = −L(x) x`` on the free
    coordinates, from random stalks (or ``state0``), input and constants pinned, ``pins``
    held and ``soft_pins`` pulled with stiffness γ.

    Returns ``(state, steps, converged, distance, energy)``. Without pins the limit is the
    forward pass (Theorem 4.1, tested for DAGs) and ``distance`` is the max-norm distance
    to it; with pins it is the last step's largest change divided by dt.
    """
    plan = DagPlan(S)
    X = _single(plan, X)
    target = plan.forward(X)
    hard = _pin_index(plan, pins)
    soft = {v: np.broadcast_to(np.asarray(t, dtype=float).reshape(-1), (plan.dims[v],)).reshape(-1, 1)
            for v, t in (soft_pins or {}).items()}
    if state0 is None:
        vals = plan.random_state(X, random_source(rng))
    else:
        vals = {v: np.asarray(state0[v], dtype=float).reshape(-1, 1).copy() for v in plan.order}
        for v in plan.order[1:]:
            vals[v][-1] = 1.0  # the pinned constant
        vals[plan.input] = target[plan.input].copy()
    for v, (coords, values) in hard.items():
        vals[v][coords, 0] = values
    limit = steps or 1_000_000
    energy, step = [], 0
    converged = False
    distance = np.inf
    while step < limit:
        r = plan.residuals(vals)
        pull = sum(float(np.sum((vals[v][:-1] - t) ** 2)) for v, t in soft.items())
        energy.append(0.5 * sum(float(np.sum(x * x)) for x in r.values()) + 0.5 * stiffness * pull)
        force = plan.forces(vals, r)
        for v, t in soft.items():
            force[v][:-1] -= stiffness * (vals[v][:-1] - t)
        for v, (coords, _) in hard.items():
            force[v][coords] = 0.0
        change = 0.0
        for v in plan.order[1:]:
            vals[v][:-1] += dt * force[v][:-1]
            change = max(change, float(np.abs(force[v][:-1]).max(initial=0.0)))
        step += 1
        if hard or soft:
            distance = change
        else:
            distance = max(float(np.abs(vals[v] - target[v]).max()) for v in plan.order)
        if distance <= tol:
            converged = True
            break
    state = {v: x[:, 0] for v, x in vals.items()}
    return state, step, converged, distance, np.asarray(energy)


def _augmented(S, plan, soft_pins, stiffness):
    """S with an anchor vertex per soft pin, joined by an edge of weight √γ (so that the
    harmonic extension minimises ½‖δx‖² + γ/2 ‖x_v − target‖²)."""
    if not soft_pins:
        return S, {}
    T = S.copy()
    anchors = {}
    g = np.sqrt(float(stiffness))
    for v, target in soft_pins.items():
        n = plan.dims[v]
        a = f"{v}:anchor"
        T.add_node(a, dim=n, kind="anchor")
        T.add_edge(v, a, source_map=g * np.eye(n, n + 1), target_map=g * np.eye(n), kind="soft pin")
        anchors[a] = np.broadcast_to(np.asarray(target, dtype=float).reshape(-1), (n,)).copy()
    return T, anchors


def dag_equilibrium(S, X, *, pins=None, soft_pins=None, stiffness=1.0, max_passes=100):
    """The exact constrained equilibrium of one input: minimise the Dirichlet energy with
    the input, the constants and ``pins`` fixed (``soft_pins`` tied by stiffness γ).

    The activation pattern is fixed, the linear problem solved by the generic
    :func:`graphsheaf.harmonic_extension` at that state, the pattern re-read, until it no
    longer changes. Returns ``(state, energy, edge_energy, passes, settled)``.
    """
    plan = DagPlan(S)
    X = _single(plan, X)
    boundary = dag_boundary(S, X[:, 0])
    for v, (coords, values) in _pin_index(plan, pins).items():
        boundary[v] = {**boundary.get(v, {}), **dict(zip(coords.tolist(), values.tolist()))}
    T, anchors = _augmented(S, plan, soft_pins, stiffness)
    boundary.update(anchors)
    vals = plan.forward(X)
    state = {v: x[:, 0] for v, x in vals.items()}
    seen = _pattern(plan, vals)
    visited = {seen}
    settled, passes = False, 0
    for passes in range(1, max_passes + 1):  # noqa: B007 - passes is reported after the loop
        st = dict(state, **{a: val for a, val in anchors.items()})
        ext = harmonic_extension(T, boundary, state=st, allow_nonunique=True)
        state = {v: ext[v] for v in S}
        now = _pattern(plan, {v: x[:, None] for v, x in state.items()})
        if now == seen:
            settled = True
            break
        if now in visited:  # the patterns cycle: the minimiser sits on a kink
            break
        visited.add(now)
        seen = now
    if not settled:  # finish by the pinned heat flow from the last iterate (converges to a minimiser)
        state = dag_heat_equation(S, X, dt=0.01, tol=1e-12, state0=state, pins=pins, soft_pins=soft_pins,
                                  stiffness=stiffness, steps=2_000_000)[0]
    energies = gdiag.edge_energies(T, dict(state, **anchors), state=dict(state, **anchors))
    return state, float(sum(energies.values())), energies, passes, settled


def dag_discord(S, state):
    """Per-edge discord ``‖(δc)_e‖²`` (twice the edge energy) of an assignment, with its
    sums by edge kind (the operation)."""
    DagPlan(S)
    energies = gdiag.edge_energies(S, state, state=state)
    edges = {e: 2.0 * float(np.mean(v)) for e, v in energies.items()}
    by_kind = {}
    for e, v in edges.items():
        kind = S.edges[e].get("kind", "other")
        by_kind[kind] = by_kind.get(kind, 0.0) + v
    return edges, by_kind


def dag_spectral_diagnostics(S, X):
    """λ_min, λ_max and κ of the restricted Laplacian ``L_σ[Ω,Ω]`` at the forward pass of each
    input, with the share of the extreme eigenvectors' energy on each vertex."""
    plan = DagPlan(S)
    X = as_columns(plan, X)
    vals = plan.forward(X)
    lam_min, lam_max, fied, top = [], [], {v: [] for v in plan.order[1:]}, {v: [] for v in plan.order[1:]}
    for m in range(X.shape[1]):
        state = {v: x[:, m] for v, x in vals.items()}
        boundary = dag_boundary(S, X[:, m])
        L_ff, _, free, _ = restricted_laplacian(S, boundary, state=state)
        w, V = la.eigh(L_ff.toarray())
        lam_min.append(w[0])
        lam_max.append(w[-1])
        owner = np.concatenate([[v] * plan.dims[v] for v in plan.order[1:]])
        for vec, store in ((V[:, 0], fied), (V[:, -1], top)):
            share = vec ** 2
            for v in store:
                store[v].append(float(share[owner == v].sum()))
    lam_min, lam_max = np.array(lam_min), np.array(lam_max)
    return lam_min, lam_max, lam_max / lam_min, {v: np.array(s) for v, s in fied.items()}, \
        {v: np.array(s) for v, s in top.items()}
