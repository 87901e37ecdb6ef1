"""Compile a neural sheaf into the plan every neural algorithm computes with.

The graph is the source of truth. :func:`compile_network` walks it once from the
input vertex along the computation (each vertex's defining edge), reads the maps on
the edges as it finds them, and returns a :class:`NetworkPlan`:

* affine edges ``ā_{ℓ-1} -> z_ℓ``: any constant ``source_map`` ``W̄`` whose columns split
  into the free coordinates of the tail (``W``) and its pinned ones (the bias term
  ``b = W̄_const @ 1``, whatever the layout of that block); ``target_map`` must select
  the free coordinates of the head (``[I | 0]``);
* gate edges ``z_ℓ -> ā_ℓ``: a :class:`graphsheaf.PiecewiseLinearGate` (ReLU, leaky
  ReLU, PReLU, hard-tanh, ...) on the tail, ``[I | 0]`` on the head;
* an optional output edge ``z_{k+1} -> ŷ``: the identity or an
  :class:`~graphsheaf.neural.outputs.OutputActivation`, identity on the head.

Anything else is refused with :class:`~graphsheaf.SheafError` naming the edge and what
the plan cannot run; the generic tools (``gs.harmonic_extension``, ``gs.heat_diffusion``
at a state) still apply to such graphs. Training writes its parameters back to the
edges through :meth:`NetworkPlan.write_back`, in the layout it found them.
"""

import networkx as nx
import numpy as np
import scipy.sparse as sp

from ..exceptions import SheafError
from ..maps import PiecewiseLinearGate, StateDependentMap
from .outputs import OutputActivation

__all__ = ["NetworkPlan", "compile_network"]


def compile_network(S):
    """Compile a neural sheaf into a :class:`NetworkPlan` (reading every map from its edges).

    Examples
    --------
    >>> from graphsheaf.neural.plan import compile_network
    >>> S = gn.neural_sheaf(*gn.init_weights([2, 3, 1], rng=0))
    >>> plan = compile_network(S)
    >>> plan.dims, plan.z_nodes, plan.a_nodes
    ([2, 3, 1], ['z1', 'z2'], ['a1'])
    """
    return NetworkPlan(S)


def _edge(e):
    return f"edge {e[0]!r} -> {e[1]!r}"


def _dense(M, e, which):
    if type(M) is np.ndarray and M.dtype == np.float64 and M.ndim == 2:
        A = M  # the common case, checked without copying
    else:
        if isinstance(M, StateDependentMap):
            raise SheafError(f"{_edge(e)}: {which} is state-dependent ({M!r}); the compiled network "
                             "needs a constant matrix there")
        if M is None:
            raise SheafError(f"{_edge(e)}: no {which}")
        A = M.toarray() if sp.issparse(M) else np.asarray(M)
        if A.ndim != 2 or A.dtype.kind not in "fiub":
            raise SheafError(f"{_edge(e)}: {which} must be a real 2-D matrix, got {type(M).__name__} "
                             f"of shape {np.shape(A)} and dtype {A.dtype}")
        A = A.astype(float)
    if not np.isfinite(A.sum()) and not np.all(np.isfinite(A)):
        raise SheafError(f"{_edge(e)}: {which} contains NaN or inf")
    return A


def _is_selection(A, n):
    """True when A is [I_n | 0]: n nonzeros, all of them ones on the diagonal."""
    return A.shape[0] == n and A.shape[1] >= n and np.count_nonzero(A) == n \
        and bool((A.diagonal() == 1).all())


class NetworkPlan:
    """A neural sheaf compiled for computation: one layout, read from the graph.

    Attributes
    ----------
    S : networkx.DiGraph
        The sheaf it was read from (parameters go back there with :meth:`write_back`).
    input, output : node
        The input vertex and the vertex the network's output is read from.
    z_nodes, a_nodes : lists of nodes
        Pre-activation vertices ``z_1 .. z_{k+1}`` and hidden activation vertices
        ``a_1 .. a_k``, in the order of the computation.
    y : node or None
        The output vertex (after φ), when the sheaf has one.
    affine_edges, gate_edges, output_edge
        The edges, in the order of the computation.
    dims : list of int
        ``[n_0, ..., n_{k+1}]``, read from the maps.
    W, b : lists of arrays
        ``W_ℓ`` (n_ℓ, n_{ℓ-1}) and the bias term ``b_ℓ`` (n_ℓ,) of every affine edge.
    gates : list of PiecewiseLinearGate
        The gate of every hidden layer.
    phi : OutputActivation or None
        The nonlinear output map (None: identity read-out).
    ones : dict node -> int
        Number of pinned constant coordinates (value 1) after the free ones.
    """

    def __init__(self, S):
        if not isinstance(S, nx.DiGraph) or S.is_multigraph():
            raise SheafError("a neural sheaf is a networkx.DiGraph (one edge per computational step)")
        self.S = S
        self.input = self._find_input(S)
        constant = S.graph.get("constant", {}) or {}
        self.ones, self.width = {}, {}
        for v, d in S.nodes(data="dim"):
            if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 0:
                raise SheafError(f"node {v!r}: dim must be an integer >= 0, got {d!r}")
            c = constant.get(v, ())
            w = len(c)
            if w and list(c) != list(range(d - w, d)) and \
                    sorted(int(i) for i in c) != list(range(d - w, d)):
                raise SheafError(f"node {v!r}: its constant coordinates {sorted(c)} must be the last "
                                 f"ones of its stalk (dim {d})")
            self.width[v] = int(d)
            self.ones[v] = w
        # walk the computation: every vertex but the input has one defining edge
        path, edges, v = [self.input], [], self.input
        succ, pred = S.succ, S.pred
        while succ[v]:
            out = succ[v]
            if len(out) > 1:
                raise SheafError(f"node {v!r} feeds {len(out)} edges "
                                 f"({', '.join(repr(w) for w in out)}); the compiled "
                                 "network runs chains (feedforward MLPs)")
            w = next(iter(out))
            if len(pred[w]) != 1:
                raise SheafError(f"node {w!r} has {len(pred[w])} defining edges; the compiled "
                                 "network runs chains (feedforward MLPs)")
            edges.append((v, w))
            path.append(w)
            v = w
        if len(path) != len(S):
            rest = next(u for u in S if u not in set(path))
            raise SheafError(f"node {rest!r} is not on the computation from the input {self.input!r}")
        self.nodes = path
        self.free = {u: self.width[u] - self.ones[u] for u in path}
        self.z_nodes, self.a_nodes, self.affine_edges, self.gate_edges = [], [], [], []
        self.W, self.b, self.gates, self._bias_layout = [], [], [], []
        self.phi, self.y, self.output_edge = None, None, None
        i = 0
        while i < len(edges):
            e = edges[i]
            data = succ[e[0]][e[1]]
            src, tgt = data.get("source_map"), data.get("target_map")
            if isinstance(src, StateDependentMap):
                raise SheafError(f"{_edge(e)}: expected an affine edge, found {src!r} on the tail")
            self._affine(e, src, tgt)
            i += 1
            if i == len(edges):
                break
            e = edges[i]
            data = succ[e[0]][e[1]]
            src = data.get("source_map")
            head_has_next = i + 1 < len(edges)
            if head_has_next or isinstance(src, PiecewiseLinearGate):
                self._gate(e, src, data.get("target_map"))
                i += 1
                continue
            # the last edge out of the last pre-activation: the output map φ
            self._output(e, src, data.get("target_map"))
            i += 1
        if len(self.gates) != len(self.affine_edges) - 1:
            raise SheafError(f"the computation ends on a gate ({_edge(self.gate_edges[-1])}); "
                             "the last step must be an affine edge")
        self.k = len(self.gates)
        self.dims = [self.free[self.input]] + [W.shape[0] for W in self.W]
        recorded = S.graph.get("dims")
        if recorded is not None and list(recorded) != self.dims:
            raise SheafError(f"S.graph['dims'] = {list(recorded)} disagrees with the maps on the "
                             f"edges, which give {self.dims}")
        self.output = self.y if self.y is not None else self.z_nodes[-1]
        self.output_activation = "identity" if self.phi is None else self.phi.kind
        self._table = self._where = None
        self.scratch = {}  # solvers' reusable buffers, keyed by what they are for

    # -- compiling --------------------------------------------------------------------
    @staticmethod
    def _find_input(S):
        v = S.graph.get("input")
        if v is not None:
            if v not in S:
                raise SheafError(f"S.graph['input'] = {v!r} is not a node of the sheaf")
            if S.in_degree(v):
                raise SheafError(f"the input {v!r} has a defining edge")
            return v
        roots = [u for u in S if S.in_degree(u) == 0]
        if len(roots) != 1:
            raise SheafError(f"cannot tell the input vertex: {len(roots)} vertices have no defining edge")
        return roots[0]

    def _affine(self, e, src, tgt):
        u, v = e
        A = _dense(src, e, "source_map")
        T = _dense(tgt, e, "target_map")
        n = A.shape[0]
        if A.shape[1] != self.width[u]:
            raise SheafError(f"{_edge(e)}: source_map has {A.shape[1]} columns but node {u!r} has "
                             f"dim {self.width[u]}")
        if self.free[v] != n or not _is_selection(T, n) or T.shape[1] != self.width[v]:
            raise SheafError(f"{_edge(e)}: the compiled network needs target_map = [I | 0] selecting "
                             f"the {self.free[v]} free coordinates of {v!r}, got a {T.shape} map "
                             "that is not; the generic tools (gs.harmonic_extension) handle this graph")
        f = self.free[u]
        B = A[:, f:]
        self.W.append(np.ascontiguousarray(A[:, :f]))
        self.b.append(B.sum(axis=1))  # the pinned constants are 1
        if B.shape[1] == 0:
            layout = "none"
        elif B.shape[1] == 1:
            layout = "column"
        elif B.shape[0] == B.shape[1] and np.count_nonzero(B) == np.count_nonzero(B.diagonal()):
            layout = "diagonal"
        else:
            layout = "general"
        self._bias_layout.append(layout)
        self.affine_edges.append(e)
        self.z_nodes.append(v)

    def _gate(self, e, src, tgt):
        z, a = e
        if not isinstance(src, PiecewiseLinearGate):
            what = "a constant map" if not isinstance(src, StateDependentMap) else repr(src)
            raise SheafError(f"{_edge(e)}: the compiled network runs elementwise piecewise-linear "
                             f"gates (gs.PiecewiseLinearGate, gs.ReLUGate), found {what}; evaluate "
                             "other maps with the generic tools at a state (gs.harmonic_extension, "
                             "gs.heat_diffusion)")
        n = self.free[z]
        if src.n != n or src.shape[1] != self.width[z]:
            raise SheafError(f"{_edge(e)}: {src!r} has shape {src.shape} but node {z!r} has "
                             f"{n} free coordinates and dim {self.width[z]}")
        T = _dense(tgt, e, "target_map")
        if self.free[a] != n or not _is_selection(T, n) or T.shape[1] != self.width[a]:
            raise SheafError(f"{_edge(e)}: the compiled network needs target_map = [I | 0] selecting "
                             f"the {self.free[a]} free coordinates of {a!r}")
        self.gates.append(src)
        self.gate_edges.append(e)
        self.a_nodes.append(a)

    def _output(self, e, src, tgt):
        z, y = e
        n = self.free[z]
        T = _dense(tgt, e, "target_map")
        if self.ones[y] or not np.array_equal(T, np.eye(n)):
            raise SheafError(f"{_edge(e)}: the output edge needs target_map = I ({n} x {n})")
        if isinstance(src, OutputActivation):
            if src.n != n:
                raise SheafError(f"{_edge(e)}: {src!r} does not fit the {n} outputs")
            self.phi = src
        elif not np.array_equal(_dense(src, e, "source_map"), np.eye(n)):
            raise SheafError(f"{_edge(e)}: the output map must be the identity or an "
                             "OutputActivation (sigmoid, softmax); a linear map here would be a "
                             "second affine layer without a gate")
        self.y, self.output_edge = y, e

    # -- layout -------------------------------------------------------------------------
    def free_nodes(self):
        """Node -> free width of every vertex that can move (all but the input), in order."""
        out = {}
        for l, z in enumerate(self.z_nodes):
            out[z] = self.dims[l + 1]
            if l < self.k:
                out[self.a_nodes[l]] = self.dims[l + 1]
        if self.y is not None:
            out[self.y] = self.dims[-1]
        return out

    def locate(self, node):
        """``("z", l)``, ``("a", l)`` (l = 1..k; 0 is the input) or ``("y", 0)`` for a node."""
        if self._where is None:
            w = {self.input: ("a", 0)}
            w.update({z: ("z", l) for l, z in enumerate(self.z_nodes)})
            w.update({a: ("a", l + 1) for l, a in enumerate(self.a_nodes)})
            if self.y is not None:
                w[self.y] = ("y", 0)
            self._where = w
        if node in self._where:
            return self._where[node]
        raise SheafError(f"{node!r} is not a vertex of this network")

    def check_inputs(self, X, what="X"):
        """X as an (n_0, M) float array (and whether it was one sample); SheafError otherwise."""
        try:
            X = np.asarray(X, dtype=float)
        except (TypeError, ValueError):
            raise SheafError(f"{what} must be an array of real numbers") from None
        if X.ndim not in (1, 2) or X.shape[0] != self.dims[0]:
            raise SheafError(f"{what} has shape {X.shape}; the network takes ({self.dims[0]},) or "
                             f"({self.dims[0]}, M) (one column per sample)")
        if not np.all(np.isfinite(X)):
            raise SheafError(f"{what} contains NaN or inf")
        return X

    def extend(self, node, values):
        """The full stalk of ``node`` from its free part (pinned ones appended)."""
        w = self.ones[node]
        if not w:
            return values
        return np.concatenate([values, np.ones((w,) + values.shape[1:])], axis=0)

    def new_slab(self, tail):
        """Stalks of every vertex up to the last pre-activation as views of one array, in
        the order of the computation (the cochain vector of :func:`graphsheaf.to_vector`).
        Returns node -> view; the pinned ones are written."""
        nodes = [u for u in self.nodes if u != self.y]
        slab = np.empty((sum(self.width[u] for u in nodes),) + tuple(tail))
        out, start = {}, 0
        for u in nodes:
            view = slab[start:start + self.width[u]]
            view[self.free[u]:] = 1.0
            out[u] = view
            start += self.width[u]
        return out

    def assignment(self, X, z, a, y=None):
        """Full stalks node -> value from free parts (``a`` lists a_1..a_k)."""
        out = {self.input: self.extend(self.input, X)}
        for l, zn in enumerate(self.z_nodes):
            out[zn] = self.extend(zn, z[l])
            if l < self.k:
                out[self.a_nodes[l]] = self.extend(self.a_nodes[l], a[l])
        if self.y is not None:
            out[self.y] = y if y is not None else self.output_value(z[-1])
        return out

    def free_parts(self, state, nodes, M=None, what="state"):
        """The free coordinates of ``state[node]`` for each node, as (free width, M) arrays.

        A value may be the whole stalk or its free part, one sample (broadcast to ``M``
        when given) or M of them; anything else is a SheafError naming the node.
        """
        out = {}
        for node in nodes:
            if node not in state:
                raise SheafError(f"{what} has no value for node {node!r}")
            try:
                v = np.asarray(state[node], dtype=float)
            except (TypeError, ValueError):
                raise SheafError(f"{what} at {node!r} is not an array of real numbers") from None
            v = v.reshape(v.shape[0], -1) if v.ndim else v.reshape(1, 1)
            n, d = self.free[node], self.width[node]
            if v.ndim != 2 or v.shape[0] not in (n, d) or (M is not None and v.shape[1] not in (1, M)):
                raise SheafError(f"{what} at {node!r} has shape {np.shape(state[node])}; node "
                                 f"{node!r} has dim {d}" + (f" (and {M} samples)" if M else ""))
            v = v[:n]
            out[node] = v if M is None else np.broadcast_to(v, (n, M))
        return out

    def output_value(self, z):
        """φ(z) of the output map (z itself for an identity read-out)."""
        return z if self.phi is None else self.phi.value(z)

    def boundary(self, X):
        """The boundary spec of the forward pass: the extended input and every constant."""
        out = {self.input: self.extend(self.input, X)}
        for u in self.nodes:
            if u != self.input and self.ones[u]:
                out[u] = {int(i): 1.0 for i in range(self.free[u], self.width[u])}
        return out

    def pinned_spec(self):
        """Boundary spec (no values): the whole input and every constant coordinate."""
        spec = {u: set(range(self.free[u], self.width[u])) for u in self.nodes if self.ones[u]}
        spec[self.input] = None
        return spec

    # -- parameters -----------------------------------------------------------------------
    def parameters(self):
        """The arrays training updates, ``W_1..W_{k+1}, b_1..b_{k+1}`` (in place)."""
        return self.W + self.b

    def trainable_bias(self, l):
        """Whether layer l's affine edge carries pinned constants (a bias it can learn)."""
        return self._bias_layout[l] != "none"

    def write_back(self):
        """Write W and b to the affine edges' source maps, in the layout they were found.

        A diagonal bias block stays diagonal (``diag(b)``), a single column stays a
        column; a general block keeps its shape and receives the change of b spread
        evenly over its columns (so ``W̄_const @ 1 = b``).
        """
        for l, e in enumerate(self.affine_edges):
            data = self.S.edges[e]
            old = _dense(data["source_map"], e, "source_map")
            f = self.W[l].shape[1]
            new = np.empty_like(old)
            new[:, :f] = self.W[l]
            layout, B = self._bias_layout[l], old[:, f:]
            if layout == "diagonal":
                new[:, f:] = np.diag(self.b[l])
            elif layout == "column":
                new[:, f:] = self.b[l][:, None]
            elif layout == "general":
                new[:, f:] = B + ((self.b[l] - B.sum(axis=1)) / B.shape[1])[:, None]
            elif np.any(self.b[l]):
                raise SheafError(f"{_edge(e)}: its tail has no pinned constants, so it cannot carry "
                                 "the bias training gave it")
            data["source_map"] = new

    def parameter_ids(self):
        """The identities of the weight and bias arrays: calls bound to them (the exact
        passes', backpropagation's) stay valid while this is unchanged, since the arrays
        are updated in place; a trainer that replaces them makes it change."""
        return tuple(map(id, self.W + self.b))

    # -- gates as one table over every hidden neuron ---------------------------------------
    def gate_table(self):
        """The gates of every hidden neuron stacked (see :class:`GateTable`)."""
        if self._table is None:
            self._table = GateTable(self.gates)
        return self._table


class GateTable:
    """Breakpoints, slopes, intercepts of the gates of all hidden neurons, stacked.

    A hidden neuron's *state* is the index r >= 0 of its region, or ``-(j + 1)`` when it
    is held at its j-th breakpoint (a kink). For ReLU: 0 off, 1 on, -1 kink.
    """

    def __init__(self, gates):
        self.gates = list(gates)
        self.sizes = [g.n for g in gates]
        self._starts = [0] + [int(x) for x in np.cumsum(self.sizes)]
        self.starts = np.array(self._starts, dtype=np.int64)  # first stacked row of each layer
        H = sum(self.sizes)
        J = max([g.breakpoints.size for g in gates] + [1])  # (at least one, maybe unreachable)
        self.relu = bool(gates) and all(g._relu and g.strict == gates[0].strict for g in gates)
        self.bp = np.full((H, J), np.inf)
        self.slopes = np.zeros((H, J + 1))
        self.intercepts = np.zeros((H, J + 1))
        self.gvals = np.zeros((H, J))
        self.strict = np.zeros((H, 1), dtype=bool)
        pos = 0
        for g in gates:
            j = g.breakpoints.size
            rows = slice(pos, pos + g.n)
            self.bp[rows, :j] = g.breakpoints
            sl = np.broadcast_to(g.slopes, (g.n, j + 1))
            ic = np.broadcast_to(g.intercepts, (g.n, j + 1))
            self.slopes[rows, :j + 1] = sl
            self.slopes[rows, j + 1:] = sl[:, -1:]  # unreachable regions past the last breakpoint
            self.intercepts[rows, :j + 1] = ic
            self.intercepts[rows, j + 1:] = ic[:, -1:]
            self.gvals[rows, :j] = np.broadcast_to(g.values_at_breakpoints(), (g.n, j))
            self.strict[rows] = g.strict
            pos += g.n
        self.has_intercept = bool(np.any(self.intercepts))

    def split(self, A):
        """Per-layer row blocks (views) of a stacked array."""
        if len(self.sizes) == 1:
            return [A]
        return [A[s:e] for s, e in zip(self._starts, self._starts[1:])]

    def regions(self, z):
        """States (int8) of the stacked pre-activations z (H, M) by the gates' tie rules."""
        if self.relu:  # (a bool array viewed as int8: 1 on, 0 off, no copy)
            return ((z > 0) if self.strict[0, 0] else (z >= 0)).view(np.int8)
        r = np.zeros(z.shape, dtype=np.int8)
        for j in range(self.bp.shape[1]):
            t = self.bp[:, j:j + 1]
            r += np.where(self.strict, z > t, z >= t)
        return r

    def _take(self, table, idx):
        return np.take_along_axis(table, idx, axis=1) if idx.shape[1] else np.zeros(idx.shape)

    def sigma(self, P):
        """Slopes of states P (a neuron held at a kink passes nothing on: 0)."""
        if self.relu:
            return (P == 1).astype(float)
        return np.where(P < 0, 0.0, self._take(self.slopes, np.maximum(P, 0).astype(np.intp)))

    def tau(self, P):
        """Intercepts of states P (a kink at t_j contributes the constant g(t_j)); None if all 0."""
        if self.relu:
            return None
        kink = P < 0
        j = np.where(kink, -P - 1, 0).astype(np.intp)
        out = np.where(kink, self._take(self.gvals, j),
                       self._take(self.intercepts, np.maximum(P, 0).astype(np.intp)))
        return out if np.any(out) else None

    def kink_points(self, P):
        """The breakpoint each kink neuron is held at (0 elsewhere)."""
        if self.relu:
            return np.zeros(P.shape)
        kink = P < 0
        return np.where(kink, self._take(self.bp, np.where(kink, -P - 1, 0).astype(np.intp)), 0.0)

    def transition(self, P, z, d_affine, a, movable=True):
        """One application of the region/kink rules, elementwise on stacked (H, M) arrays.

        A neuron whose z left its region's closed interval goes to the kink it crossed;
        a neuron held at breakpoint t_j is released to the region above when the energy
        decreases to the right (right slope < 0, and more steeply than to the left),
        to the region below when it decreases to the left (left slope > 0). The slopes of
        E along z at the kink are ``d_affine + σ (g(t_j) - a)`` with the region's σ, where
        ``d_affine`` is the affine edge's own term ``z - W a_prev - b``. Returns (new
        states, mask of neurons that moved); neurons outside ``movable`` keep theirs.
        """
        kink = P < 0
        if self.relu:
            # (the three-state rule of Bosca & Ghrist's ReLU, as in pinning.three_state_transition)
            to_kink = z * (2 * P - 1) < 0
            to_kink &= ~kink
            g_left, g_right = d_affine, d_affine - a
            new_kink = np.int8(-1)
            below = None
        else:
            r = np.maximum(P, 0).astype(np.intp)
            lo = np.where(r > 0, self._take(self.bp, np.maximum(r - 1, 0)), -np.inf)
            hi = np.concatenate([self.bp, np.full((self.bp.shape[0], 1), np.inf)], axis=1)
            hi = self._take(hi, r)
            below = ~kink & (z < lo)
            to_kink = below | (~kink & (z > hi))
            j = np.where(kink, -P - 1, 0).astype(np.intp)
            e = self._take(self.gvals, j) - a
            g_left = d_affine + self._take(self.slopes, j) * e
            g_right = d_affine + self._take(self.slopes, j + 1) * e
        go_up = kink & (g_right < 0) & ((g_left <= 0) | (-g_right >= g_left))
        go_down = kink & (g_left > 0)
        go_down &= ~go_up
        if movable is not True:
            to_kink &= movable
            go_up &= movable
            go_down &= movable
        if below is None:
            new = np.where(to_kink, new_kink, P)
            new[go_up] = 1
            new[go_down] = 0
        else:
            new = P.astype(np.int8, copy=True)
            new[to_kink & below] = (-r)[to_kink & below]          # kink at breakpoint r - 1
            up_k = to_kink & ~below
            new[up_k] = (-r - 1)[up_k]                             # kink at breakpoint r
            new[go_up] = (j + 1)[go_up]
            new[go_down] = j[go_down]
        return new, to_kink | go_up | go_down
