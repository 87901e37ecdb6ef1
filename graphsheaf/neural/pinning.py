"""Pinned neurons: the exact constrained equilibrium (Bosca & Ghrist §5.1).

Pinning coordinates of hidden or output stalks moves them from Ω to the boundary.
For a fixed activation pattern the energy is a convex quadratic in the remaining
free coordinates, so its minimiser solves a linear least-squares problem (δ_{Ω∖S}
keeps full column rank: a principal block of a positive definite L). The pattern
itself must be self-consistent, and the kinks matter: E is piecewise quadratic
with a valley at each breakpoint of a gate (z_j = 0 for ReLU), where often neither
region is consistent. Each hidden coordinate is therefore in a region of its gate
or held at one of its breakpoints (for ReLU the three states on, off, kink),
updated until consistent (:meth:`graphsheaf.neural.plan.GateTable.transition`):

* a neuron whose z left its region -> the kink it crossed;
* kink -> the region above if ∂E/∂z_j from the right is < 0, -> the region below
  if from the left it is > 0.

If the patterns cycle the solver falls back to the heat equation and says so.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as la

from .._repr import short_repr
from ..exceptions import SheafError
from .dynamics import heat_equation, prepare_pinned_inputs
from .dag.plan import is_dag_sheaf
from .kernels import edge_square_norms, forward_sweep, residuals

__all__ = ["Equilibrium", "equilibrium"]

ON, OFF, KINK = 1, 0, -1


@dataclass
class Equilibrium:
    """Result of :func:`equilibrium`.

    Attributes
    ----------
    state : dict node -> value
        The constrained minimiser (extended stalks include their ones).
    energy : float or ndarray (M,)
        Residual Dirichlet energy: zero exactly when the pins agree with the forward pass.
    edge_energy : dict edge -> float or ndarray (M,)
        Where the residual energy sits (½‖(δc)_e‖² per edge, soft pins under
        ``("soft", node)``).
    pattern : list of ndarray
        Per hidden layer, the state of each neuron: its region r >= 0 (for ReLU 1 on,
        0 off) or ``-(j + 1)`` when held at breakpoint j (for ReLU -1, z held at 0).
    iterations : int or ndarray
        Pattern passes (least-squares solves) per sample.
    fell_back : bool or ndarray
        Samples whose patterns cycled and were finished by the heat equation.
    """

    def __repr__(self):
        return short_repr(self)

    state: dict
    energy: object
    edge_energy: dict
    pattern: list
    iterations: object
    fell_back: object
    notes: list = field(default_factory=list)


class _System:
    """Least-squares system of one sample for a fixed pattern of regions and kinks."""

    def __init__(self, plan, x, hard, soft):
        self.plan, self.x = plan, x
        # unknown blocks in the order of the computation: z1, a1, ..., zk, ak, z_{k+1}, [y]
        self.width = plan.free_nodes()
        self.blocks = list(self.width)
        self.start = {}
        pos = 0
        for v in self.blocks:
            self.start[v] = pos
            pos += self.width[v]
        self.n = pos
        self.hard = hard  # node -> (coords, values for this sample)
        self.soft = soft  # node -> (coords, targets for this sample, gamma)

    def solve(self, pattern):
        """Minimise E for the pattern (list of per-layer state arrays); return the coordinates."""
        plan, k, n = self.plan, self.plan.k, self.n
        table = plan.gate_table()
        P = np.concatenate(pattern)[:, None] if k else np.zeros((0, 1), dtype=np.int8)
        sig = table.split(table.sigma(P)[:, 0]) if k else []
        tau = table.tau(P)
        tau = table.split(tau[:, 0]) if tau is not None else [np.zeros(len(p)) for p in pattern]
        t_kink = table.split(table.kink_points(P)[:, 0]) if k else []
        blocks = []  # (list of (column start, matrix), rhs)
        # affine edges: z_l - W_l a_{l-1} = b_l  (a_0 = x is data)
        for l in range(k + 1):
            W, b = plan.W[l], plan.b[l]
            cols = [(self.start[plan.z_nodes[l]], np.eye(W.shape[0]))]
            if l == 0:
                rhs = b + W @ self.x
            else:
                cols.append((self.start[plan.a_nodes[l - 1]], -W))
                rhs = b
            blocks.append((cols, rhs))
        # gate edges: a_l - σ_l z_l = τ_l
        for l in range(k):
            blocks.append(([(self.start[plan.a_nodes[l]], np.eye(len(sig[l]))),
                            (self.start[plan.z_nodes[l]], -np.diag(sig[l]))], tau[l]))
        if plan.y is not None and plan.phi is None:
            d = plan.dims[-1]
            blocks.append(([(self.start[plan.y], np.eye(d)),
                            (self.start[plan.z_nodes[-1]], -np.eye(d))], np.zeros(d)))
        for node, (coords, target, gamma) in self.soft.items():
            g = np.sqrt(gamma)
            sel = np.zeros((len(coords), self.width[node]))
            sel[np.arange(len(coords)), coords] = g
            blocks.append(([(self.start[node], sel)], g * np.asarray(target, dtype=float)))
        rows = sum(len(r) for _, r in blocks)
        A = np.zeros((rows, n))
        b = np.empty(rows)
        pos = 0
        for cols, rhs in blocks:
            h = len(rhs)
            for c0, mat in cols:
                A[pos:pos + h, c0:c0 + mat.shape[1]] += mat
            b[pos:pos + h] = rhs
            pos += h
        fixed = np.full(n, np.nan)
        for node, (coords, vals) in self.hard.items():
            fixed[self.start[node] + coords] = vals
        for l in range(k):
            kink = np.flatnonzero(pattern[l] < 0)
            fixed[self.start[plan.z_nodes[l]] + kink] = t_kink[l][kink]
        known = ~np.isnan(fixed)
        b = b - A[:, known] @ fixed[known]
        u = fixed.copy()
        if (~known).any():
            # full column rank (δ_Ω is unitriangular; dropping columns keeps it): QR suffices
            u[~known] = la.lstsq(A[:, ~known], b, lapack_driver="gelsy", check_finite=False)[0]
        if plan.y is not None and plan.phi is not None:
            ys = self.start[plan.y]
            free_y = np.isnan(fixed[ys:ys + plan.dims[-1]])
            u[ys:ys + plan.dims[-1]][free_y] = plan.phi.value(self.get(u, plan.z_nodes[-1]))[free_y]
        return u

    def get(self, u, node):
        return u[self.start[node]:self.start[node] + self.width[node]]

    def update(self, u, pattern):
        """Apply the region/kink rules (:meth:`GateTable.transition`) in place; True if any moved."""
        plan = self.plan
        if not plan.k:
            return False
        zl = [self.get(u, v) for v in plan.z_nodes]
        al = [self.x] + [self.get(u, v) for v in plan.a_nodes]
        r, _ = residuals(plan, zl, al)
        z, a = np.concatenate(zl[:-1]), np.concatenate(al[1:])
        d_aff = -np.concatenate(r[:-1])  # ∂/∂z of the affine edge's ½‖z - W a - b‖²
        movable = np.ones(len(z), dtype=bool)
        offsets = np.cumsum([0] + [len(p) for p in pattern])
        for l, node in enumerate(plan.z_nodes[:-1]):
            if node in self.soft:
                coords, target, gamma = self.soft[node]
                d_aff[offsets[l] + coords] += gamma * (z[offsets[l] + coords] - target)
            if node in self.hard:
                movable[offsets[l] + self.hard[node][0]] = False
        P = np.concatenate(pattern)
        new, moved = plan.gate_table().transition(P[:, None], z[:, None], d_aff[:, None],
                                                  a[:, None], movable[:, None])
        if not moved.any():
            return False
        for l in range(plan.k):
            pattern[l][:] = new[offsets[l]:offsets[l + 1], 0]
        return True


def equilibrium(S, X, *, pins=None, soft_pins=None, stiffness=1.0, max_passes=100,
                fallback_kw=None):
    """Find the pinned equilibrium directly: the minimiser of E with pins imposed.

    For a fixed pattern of regions the energy is a convex quadratic; each hidden neuron
    is in a region of its gate or held at one of its breakpoints (a kink), updated by
    :meth:`graphsheaf.neural.plan.GateTable.transition` until consistent.

    Parameters
    ----------
    S : neural sheaf
    X : array (n_0,) or (n_0, M)
    pins, soft_pins, stiffness
        As in :func:`heat_equation`.
    max_passes : int
        Pattern updates per sample before falling back to the heat equation.
    fallback_kw : dict, optional
        Keywords for the fallback :func:`heat_equation` (default tol 1e-12).

    Returns
    -------
    Equilibrium
        Its state equals the heat equation's limit.

    Examples
    --------
    Pinning a coordinate to its forward-pass value changes nothing:

    >>> W, b = gn.init_weights([2, 4, 1], rng=3)
    >>> S = gn.neural_sheaf(W, b)
    >>> x = np.array([1.0, 0.5])
    >>> z1 = gn.forward(S, x)["z1"]
    >>> eq = gn.equilibrium(S, x, pins={"z1": {0: z1[0]}})
    >>> bool(eq.energy < 1e-20), bool(np.allclose(eq.state["z2"], gn.predict(S, x)))
    (True, True)
    """
    if is_dag_sheaf(S):
        from .dag.dynamics import dag_equilibrium
        state, energy, edge_energy, passes, settled = dag_equilibrium(
            S, X, pins=pins, soft_pins=soft_pins, stiffness=stiffness, max_passes=max_passes)
        return Equilibrium(state, energy, edge_energy, [], passes, not settled)
    plan, X2, squeeze, hard, soft = prepare_pinned_inputs(S, X, pins, soft_pins, stiffness)
    M = X2.shape[1]
    table = plan.gate_table()
    out = plan.y
    nonlinear_pinned = plan.phi is not None and (out in hard or out in soft)
    if plan.phi is not None and out in hard:
        _check_reachable(plan, *hard[out])
    zf, _ = forward_sweep(plan, X2)
    start = table.split(table.regions(np.concatenate(zf[:plan.k]))) if plan.k else []
    for node, (c, vals) in hard.items():  # a hard-pinned z fixes its own region
        kind, l = plan.locate(node)
        if kind == "z" and l < plan.k:
            start[l][c] = plan.gates[l].region(vals)
    cols, passes, fell, patterns, notes = [], [], [], [], []
    for m in range(M):
        h = {v: (c, vals[:, m]) for v, (c, vals) in hard.items()}
        s = {v: (c, t[:, m], g) for v, (c, t, g) in soft.items()}
        system = _System(plan, X2[:, m], h, s)
        pattern = [p[:, m].astype(np.int8) for p in start]
        u, ok, it = (None, False, 0) if nonlinear_pinned else \
            solve_three_state(system, pattern, max_passes)
        if ok:
            cols.append(u)
            fell.append(False)
        else:
            kw = dict(tol=1e-12, init="forward", steps=2_000_000)
            kw.update(fallback_kw or {})
            res = heat_equation(S, X2[:, m], pins={v: {int(c): float(x) for c, x in zip(*h[v])}
                                                   for v in h},
                                soft_pins={v: ({int(c): float(t) for c, t in zip(cc, tt)}, g)
                                           for v, (cc, tt, g) in s.items()},
                                record=False, **kw)
            cols.append(np.concatenate([np.asarray(res.state[v])[:system.width[v]]
                                        for v in system.blocks]))
            fell.append(True)
            notes.append(f"sample {m}: " + ("nonlinear output pinned" if nonlinear_pinned
                                             else "activation patterns cycled")
                         + f"; finished by the heat equation ({res.steps} steps, "
                           f"converged={res.converged})")
            pattern = [g.region(system.get(cols[-1], v)).astype(np.int8)
                       for g, v in zip(plan.gates, plan.z_nodes)]
        passes.append(it)
        patterns.append(pattern)
    U = np.stack(cols, axis=1)
    z = [system.get(U, v) for v in plan.z_nodes]
    a = [X2] + [system.get(U, v) for v in plan.a_nodes]
    y = system.get(U, plan.y) if plan.y is not None else None
    state = plan.assignment(X2, z, a[1:], y)
    edge_energy = _edge_energies(plan, z, a, y, soft, state)
    total = sum(edge_energy.values())
    pat = [np.stack([p[l] for p in patterns], axis=1) for l in range(plan.k)]
    if squeeze:
        state = {v: x[:, 0] for v, x in state.items()}
        edge_energy = {e: float(v[0]) for e, v in edge_energy.items()}
        return Equilibrium(state, float(total[0]), edge_energy, [p[:, 0] for p in pat],
                           passes[0], fell[0], notes)
    return Equilibrium(state, total, edge_energy, pat, np.array(passes), np.array(fell), notes)


def _check_reachable(plan, coords, vals):
    """Refuse hard pins of a sigmoid/softmax output that no pre-activation can produce
    (the heat equation would chase them forever)."""
    bad = ~((vals > 0) & (vals < 1))
    if bad.any():
        i = np.argwhere(bad)[0]
        raise SheafError(f"pins at {plan.y!r}: coordinate {int(coords[i[0]])} pinned to "
                         f"{float(vals[tuple(i)]):g}, which a {plan.phi.kind} output never reaches "
                         "(it stays strictly between 0 and 1)")
    if plan.phi.kind == "softmax" and len(coords) == plan.dims[-1]:
        sums = vals.sum(axis=0)
        if np.any(np.abs(sums - 1) > 1e-9):
            raise SheafError(f"pins at {plan.y!r}: a softmax output sums to 1, the pins sum to "
                             f"{float(sums[np.argmax(np.abs(sums - 1))]):g}")


def solve_three_state(system, pattern, max_passes):
    """Active-set loop over regions and kinks for one sample.

    Returns ``(u, settled, passes)``; ``pattern`` is updated in place.
    """
    seen = set()
    u, it = None, 0
    while it < max_passes:
        it += 1
        u = system.solve(pattern)
        if not system.update(u, pattern):
            return u, True, it
        key = b"".join(p.tobytes() for p in pattern)
        if key in seen:
            break
        seen.add(key)
    return u, False, it


def _edge_energies(plan, z, a, y, soft, state):
    r, q = residuals(plan, z, a)
    d = plan.output_value(z[-1]) - y if y is not None else None
    out = {e: 0.5 * v for e, v in edge_square_norms(plan, r, q, d).items()}
    for node, (coords, target, gamma) in soft.items():
        dd = state[node][coords] - target
        out[("soft", node)] = 0.5 * gamma * np.sum(dd * dd, axis=0)
    return out
