"""Pinned neurons: the exact constrained equilibrium (Bosca & Ghrist §5.1).

Pinning coordinates of hidden or output stalks moves them from Ω to the boundary.
For a fixed activation pattern the energy is a convex quadratic in the remaining
free coordinates, so its minimiser solves a linear least-squares problem (δ_{Ω∖S}
keeps full column rank: a principal block of a positive definite L). The pattern
itself must be self-consistent, and the ReLU kink matters: E is piecewise quadratic
with a V-shaped valley at z_j = 0, where often neither "on" nor "off" is
consistent. Each hidden coordinate is therefore in one of three states -- on, off,
or kink (held at z_j = 0) -- updated until consistent:

* on with z_j < 0, or off with z_j > 0 -> kink;
* kink -> on if ∂E/∂z_j from the right is < 0, -> off if from the left it is > 0.

If the patterns cycle the solver falls back to the heat equation and says so.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as la

from .builder import OutputActivation
from .dynamics import heat_equation, prepare_pinned_inputs
from .forward import _extend, edge_square_norms, forward

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
        Per hidden layer, the state of each neuron: 1 on, 0 off, -1 kink (z held at 0).
    iterations : int or ndarray
        Pattern passes (least-squares solves) per sample.
    fell_back : bool or ndarray
        Samples whose patterns cycled and were finished by the heat equation.
    """

    state: dict
    energy: object
    edge_energy: dict
    pattern: list
    iterations: object
    fell_back: object
    notes: list = field(default_factory=list)


class _System:
    """Least-squares system of one sample for a fixed three-state pattern."""

    def __init__(self, net, x, hard, soft):
        self.net, self.x = net, x
        dims, k = net.dims, net.k
        # unknown blocks in path order: z1, a1, ..., zk, ak, z_{k+1}, [y]
        self.blocks = []
        for l in range(1, k + 2):
            self.blocks.append(f"z{l}")
            if l <= k:
                self.blocks.append(f"a{l}")
        if net.with_y:
            self.blocks.append("y")
        self.width = {v: dims[int(v[1:])] if v != "y" else dims[-1] for v in self.blocks}
        self.start = {}
        pos = 0
        for v in self.blocks:
            self.start[v] = pos
            pos += self.width[v]
        self.n = pos
        self.hard = hard  # node -> (coords, values for this sample)
        self.soft = soft  # node -> (coords, targets for this sample, gamma)

    def solve(self, pattern):
        """Minimise E for the pattern; return the full coordinate vector."""
        net, k, n = self.net, self.net.k, self.n
        blocks = []  # (row block, list of (column start, matrix)), rhs
        # affine edges: z_l - W_l a_{l-1} = c_l  (a_0 = x is data)
        for l in range(1, k + 2):
            W, c = net.W[l - 1], net.c[l - 1]
            cols = [(self.start[f"z{l}"], np.eye(W.shape[0]))]
            if l == 1:
                rhs = c + W @ self.x
            else:
                cols.append((self.start[f"a{l - 1}"], -W))
                rhs = c
            blocks.append((cols, rhs))
        # ReLU edges: a_l - m_l z_l = 0
        for l in range(1, k + 1):
            m = (pattern[l - 1] == ON).astype(float)
            blocks.append(([(self.start[f"a{l}"], np.eye(len(m))),
                            (self.start[f"z{l}"], -np.diag(m))], np.zeros(len(m))))
        if net.with_y and not isinstance(net.phi, OutputActivation):
            d = net.dims[-1]
            blocks.append(([(self.start["y"], np.eye(d)), (self.start[f"z{k + 1}"], -np.eye(d))],
                           np.zeros(d)))
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
        for l in range(1, k + 1):
            kink = np.flatnonzero(pattern[l - 1] == KINK)
            fixed[self.start[f"z{l}"] + kink] = 0.0
        known = ~np.isnan(fixed)
        b = b - A[:, known] @ fixed[known]
        u = fixed.copy()
        if (~known).any():
            # full column rank (δ_Ω is unitriangular; dropping columns keeps it): QR suffices
            u[~known] = la.lstsq(A[:, ~known], b, lapack_driver="gelsy", check_finite=False)[0]
        if net.with_y and isinstance(net.phi, OutputActivation):
            ys = self.start["y"]
            free_y = np.isnan(fixed[ys:ys + net.dims[-1]])
            zk = u[self.start[f"z{k + 1}"]:self.start[f"z{k + 1}"] + net.dims[-1]]
            u[ys:ys + net.dims[-1]][free_y] = net.phi.value(zk)[free_y]
        return u

    def get(self, u, node):
        return u[self.start[node]:self.start[node] + self.width[node]]

    def kink_slopes(self, u, l):
        """(left, right) derivatives of E along z^(l)_j at z_j = 0, others fixed."""
        net = self.net
        a_prev = self.x if l == 1 else self.get(u, f"a{l - 1}")
        pull = net.W[l - 1] @ a_prev + net.c[l - 1]
        g_off = -pull.copy()
        if f"z{l}" in self.soft:
            coords, target, gamma = self.soft[f"z{l}"]
            g_off[coords] -= gamma * target  # γ (z - t) at z = 0
        g_on = g_off - self.get(u, f"a{l}")
        return g_off, g_on


def equilibrium(S, X, *, pins=None, soft_pins=None, stiffness=1.0, max_passes=100,
                fallback_kw=None):
    """Find the pinned equilibrium directly: the minimiser of E with pins imposed.

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
    net, X2, squeeze, hard, soft = prepare_pinned_inputs(S, X, pins, soft_pins, stiffness)
    M = X2.shape[1]
    nonlinear_pinned = isinstance(net.phi, OutputActivation) and ("y" in hard or "y" in soft)
    fwd = forward(S, X2)
    cols, passes, fell, patterns, notes = [], [], [], [], []
    for m in range(M):
        h = {v: (c, vals[:, m]) for v, (c, vals) in hard.items()}
        s = {v: (c, t[:, m], g) for v, (c, t, g) in soft.items()}
        system = _System(net, X2[:, m], h, s)
        pattern = [np.where(net.mask(fwd[f"z{l}"][:, m]), ON, OFF) for l in range(1, net.k + 1)]
        for node, (c, vals) in h.items():  # a hard-pinned z fixes its own mask
            if node[0] == "z" and int(node[1:]) <= net.k:
                pattern[int(node[1:]) - 1][c] = np.where(net.mask(vals), ON, OFF)
        u, ok, it = (None, False, 0) if nonlinear_pinned else \
            solve_three_state(system, pattern, h, max_passes)
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
            cols.append(_state_to_u(system, res.state))
            fell.append(True)
            notes.append(f"sample {m}: " + ("nonlinear output pinned" if nonlinear_pinned
                                             else "activation patterns cycled")
                         + f"; finished by the heat equation ({res.steps} steps, "
                           f"converged={res.converged})")
            u = cols[-1]
            pattern = [np.where(net.mask(system.get(u, f"z{l}")), ON, OFF)
                       for l in range(1, net.k + 1)]
        passes.append(it)
        patterns.append(pattern)
    U = np.stack(cols, axis=1)
    state = _to_state(system, U, X2, net)
    edge_energy = _edge_energies(net, state, soft)
    total = sum(edge_energy.values())
    pat = [np.stack([p[l] for p in patterns], axis=1) for l in range(net.k)]
    if squeeze:
        state = {v: x[:, 0] for v, x in state.items()}
        edge_energy = {e: float(v[0]) for e, v in edge_energy.items()}
        return Equilibrium(state, float(total[0]), edge_energy, [p[:, 0] for p in pat],
                           passes[0], fell[0], notes)
    return Equilibrium(state, total, edge_energy, pat, np.array(passes), np.array(fell), notes)


def solve_three_state(system, pattern, hard, max_passes):
    """Active-set loop over on/off/kink states for one sample.

    Returns ``(u, settled, passes)``; ``pattern`` is updated in place.
    """
    seen = set()
    u, it = None, 0
    while it < max_passes:
        it += 1
        u = system.solve(pattern)
        if not _update(system, u, pattern, hard):
            return u, True, it
        key = b"".join(p.tobytes() for p in pattern)
        if key in seen:
            break
        seen.add(key)
    return u, False, it


def _update(system, u, pattern, hard):
    """Apply the three-state rules; return True when something changed."""
    net = system.net
    changed = False
    for l in range(1, net.k + 1):
        z = system.get(u, f"z{l}")
        p = pattern[l - 1]
        pinned = np.zeros(len(p), dtype=bool)
        if f"z{l}" in hard:
            pinned[hard[f"z{l}"][0]] = True
        g_off, g_on = system.kink_slopes(u, l)
        new, moved = three_state_transition(p, z, g_off, g_on, ~pinned)
        if moved.any():
            changed = True
            p[:] = new
    return changed


def three_state_transition(p, z, g_off, g_on, movable=True):
    """One application of the on/off/kink rules, elementwise (any array shape).

    An "on" neuron with z < 0 or an "off" one with z > 0 goes to the kink (z held at 0);
    a kink neuron is released to "on" when the energy decreases for z > 0 (right slope
    ``g_on`` < 0, and more steeply than to the left) and to "off" when it decreases for
    z < 0 (left slope ``g_off`` > 0). Returns (new pattern, mask of neurons that moved);
    neurons outside ``movable`` (hard-pinned ones) keep their state.
    """
    kink = p == KINK
    to_kink = z * (2 * p - 1) < 0  # on (1) with z < 0 or off (0) with z > 0
    to_kink &= ~kink
    go_on = kink & (g_on < 0) & ((g_off <= 0) | (-g_on >= g_off))
    go_off = kink & (g_off > 0)
    go_off &= ~go_on
    if movable is not True:
        to_kink &= movable
        go_on &= movable
        go_off &= movable
    new = np.where(to_kink, KINK, p)
    new[go_on] = ON
    new[go_off] = OFF
    return new, to_kink | go_on | go_off


def _state_to_u(system, state):
    u = np.zeros(system.n)
    for v in system.blocks:
        u[system.start[v]:system.start[v] + system.width[v]] = np.asarray(state[v])[:system.width[v]]
    return u


def _to_state(system, U, X2, net):
    state = {"x": _extend(X2, net.ones[0])}
    for v in system.blocks:
        block = U[system.start[v]:system.start[v] + system.width[v]]
        if v[0] == "a":
            block = _extend(block, net.ones[int(v[1:])])
        state[v] = block
    return state


def _edge_energies(net, state, soft):
    out = {e: 0.5 * v for e, v in edge_square_norms(net, state).items()}
    for node, (coords, target, gamma) in soft.items():
        d = state[node][coords] - target
        out[("soft", node)] = 0.5 * gamma * np.sum(d * d, axis=0)
    return out
