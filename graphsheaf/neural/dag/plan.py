"""A DAG sheaf compiled from its graph: vertices in topological order, each with the edges
that define its coordinates, and the parameters read off the maps.

Nothing is kept beside the graph: :class:`DagPlan` reads the maps as they are and refuses
(naming the edge) what it cannot run; :meth:`DagPlan.write_back` writes trained parameters
into the same maps.
"""

import networkx as nx
import numpy as np
import scipy.sparse as sp

from ...exceptions import SheafError
from ...maps import PiecewiseLinearGate, is_state_dependent
from ...sheaves import edge_label

__all__ = ["DagPlan", "is_dag_sheaf"]


def is_dag_sheaf(S):
    """True for sheaves built by :func:`dag_sheaf` or :func:`from_torch` on a non-chain network."""
    return S.graph.get("architecture") == "dag"


def _rows_of_selection(T, where):
    """The head coordinates a target map selects (a 0/1 matrix with one 1 per row, none in the
    constant column), or SheafError."""
    T = T.toarray() if sp.issparse(T) else np.asarray(T, dtype=float)
    if T.ndim != 2 or not np.all((T == 0) | (T == 1)) or np.any(T.sum(axis=1) != 1) \
            or np.any(T[:, -1] != 0):
        raise SheafError(f"{where}: the target map must select coordinates of its head (rows of the "
                         "identity), as every operation's edge does")
    return T.argmax(axis=1)


class Edge:
    """One defining edge: its tail, the head rows it defines and its source map."""

    def __init__(self, S, e):
        data = S.edges[e]
        self.edge, self.tail, self.head = e, e[0], e[1]
        self.where = f"edge {edge_label(e)}"
        self.rows = _rows_of_selection(data["target_map"], self.where)
        self.A = data["source_map"]
        self.kind = data.get("kind")
        self.state_dependent = is_state_dependent(self.A)
        self.params = data.get("params")
        self.data = data
        if self.A.shape != (self.rows.size, S.nodes[self.tail]["dim"]):
            raise SheafError(f"{self.where}: source map {self.A.shape} does not read the tail's "
                             f"{S.nodes[self.tail]['dim']} coordinates into {self.rows.size} rows")
        self.contiguous = bool(self.rows.size and np.all(np.diff(self.rows) == 1))
        self._conv = None
        if self.kind in ("conv1d", "conv2d"):
            self._conv = _ConvCompute(self, S)
        self._blocks = self._block_sum()

    def _block_sum(self):
        """k when the map is ``[I I … I | 0]`` (k identity blocks: a copy when k = 1, a sum
        of the gathered inputs of a residual add), read off the map; else None."""
        if self.state_dependent or self.kind not in ("concat", "add"):
            return None
        A = sp.csr_array(self.A)
        n, width = A.shape
        k, rem = divmod(width - 1, n) if n else (0, 1)
        if rem or not k or A.nnz != k * n:
            return None
        rows = np.repeat(np.arange(n), np.diff(A.indptr))
        want = np.sort((np.arange(k)[:, None] * n + np.arange(n)[None, :]).ravel())
        if not (np.all(A.data == 1) and np.array_equal(np.sort(A.indices), want)
                and np.array_equal(np.sort(A.indices % n), np.sort(rows))):
            return None
        return k

    def _sum_blocks(self, u_bar):
        n, k = self.rows.size, self._blocks
        return u_bar[:n] if k == 1 else u_bar[:-1].reshape(k, n, -1).sum(axis=0)

    def _spread(self, g):
        k = self._blocks
        return np.concatenate([g] * k + [np.zeros((1,) + g.shape[1:])], axis=0)

    def freeze(self, state):
        """What a state-dependent map chose at ``state`` (max-pool indices, gate slopes and
        intercepts), so that the sweeps of one update evaluate it once; None otherwise."""
        if not self.state_dependent:
            return None
        if isinstance(self.A, PiecewiseLinearGate):
            z = state[:self.A.n]
            return ("gate", self.A.slope(z), self.A.intercept(z) if self.A.has_intercept else None)
        return ("pick", self.A._pick(state)) if hasattr(self.A, "_pick") else None

    def apply_frozen(self, x, frozen):
        if frozen is None:
            return self.apply(x)
        if frozen[0] == "gate":
            y = frozen[1] * x[:self.A.n]
            return y if frozen[2] is None else y + frozen[2] * x[self.A.n]
        return self.A.apply(None, x, idx=frozen[1])

    def rapply_frozen(self, g, frozen, state):
        if frozen is None:
            return self.rapply(g, state)
        if frozen[0] == "gate":
            top = frozen[1] * g
            last = (frozen[2] * g).sum(axis=0, keepdims=True) if frozen[2] is not None else \
                np.zeros((1,) + g.shape[1:])
            return np.concatenate([top, last], axis=0)
        return self.A.rapply(None, g, idx=frozen[1])

    def apply(self, u_bar, state=None):
        """``A(state) ū`` for a batch ``ū`` of shape (n_u + 1, M)."""
        if self.state_dependent:
            return self.A.apply(u_bar if state is None else state, u_bar)
        if self._blocks is not None:
            return self._sum_blocks(u_bar)
        if self._conv is not None:
            return self._conv.apply(u_bar)
        return self.A @ u_bar

    def rapply(self, g, state):
        """``A(state)ᵀ g`` (the adjoint), with the tail's state for state-dependent maps."""
        if self.state_dependent:
            return self.A.rapply(state, g)
        if self._blocks is not None:
            return self._spread(g)
        if self._conv is not None:
            return self._conv.rapply(g)
        return self.A.T @ g

    # -- parameters ---------------------------------------------------------------------
    def theta(self):
        """The flattened parameters (weight, then bias) read from the map, or None."""
        if self.params is None:
            return None
        if self.kind == "linear":
            A = np.asarray(self.A, dtype=float)
            return np.concatenate([A[:, :-1].ravel()] + ([A[:, -1]] if self.data.get("has_bias") else []))
        if self.kind in ("conv1d", "conv2d"):
            return self._conv_theta()
        if self.kind == "batchnorm":
            scale, shift = self._bn_scale_shift()
            mean, root = self.data["bn"]["mean"], self.data["bn"]["root"]
            return np.concatenate([scale * root, shift + scale * mean])  # γ, β of the layer
        raise SheafError(f"{self.where}: parameters of a {self.kind!r} edge cannot be read")

    def _conv_theta(self):
        index = np.asarray(self.data["weight_index"])
        A = sp.csr_array(self.A)
        if A.nnz != index.size:
            raise SheafError(f"{self.where}: the convolution map has {A.nnz} stored entries, its weight "
                             f"index {index.size}: the map was edited")
        n_w = int(np.prod(self.data["weight_shape"]))
        size = n_w + self.rows.size  # an upper bound on weights + biases
        theta = np.zeros(size)
        theta[index] = A.data
        back = theta[index]
        if not np.allclose(back, A.data, rtol=0, atol=1e-12 * max(1.0, np.abs(A.data).max(initial=0))):
            raise SheafError(f"{self.where}: the convolution map no longer shares one weight per "
                             "kernel entry (its stored entries disagree)")
        n_b = int(index.max(initial=n_w - 1)) + 1 - n_w
        return theta[:n_w + (n_b if self.data.get("has_bias") else 0)]

    def _bn_scale_shift(self):
        """Per-channel scale and shift of a batch-norm map, checked to be shared by the
        channel's positions."""
        A = sp.csr_array(self.A)
        n = self.rows.size
        C = len(self.data["bn"]["mean"])
        diag, last = A.diagonal()[:n], A[:, [n]].toarray().ravel()
        scale, shift = diag[::n // C], last[::n // C]
        if not (np.allclose(np.repeat(scale, n // C), diag) and np.allclose(np.repeat(shift, n // C), last)):
            raise SheafError(f"{self.where}: the batch-norm map no longer has one scale and shift per "
                             "channel")
        return scale, shift

    def set_theta(self, theta):
        if self.kind == "linear":
            A = np.asarray(self.A, dtype=float).copy()
            n_in = A.shape[1] - 1
            A[:, :-1] = theta[:A.shape[0] * n_in].reshape(A.shape[0], n_in)
            if self.data.get("has_bias"):
                A[:, -1] = theta[A.shape[0] * n_in:]
            self.A = A
        elif self.kind in ("conv1d", "conv2d"):
            index = np.asarray(self.data["weight_index"])
            full = np.zeros(int(index.max(initial=0)) + 1)
            full[:theta.size] = theta
            A = sp.csr_array(self.A).copy()
            A.data = full[index]
            self.A = A
            self._conv.load(full)
        elif self.kind == "batchnorm":
            mean, root = self.data["bn"]["mean"], self.data["bn"]["root"]
            C = len(mean)
            scale = theta[:C] / root
            shift = theta[C:] - scale * mean
            n = self.rows.size
            per = n // C
            rows = np.concatenate([np.arange(n), np.arange(n)])
            cols = np.concatenate([np.arange(n), np.full(n, n)])
            self.A = sp.csr_array((np.concatenate([np.repeat(scale, per), np.repeat(shift, per)]),
                                   (rows, cols)), shape=(n, n + 1))
        self.data["source_map"] = self.A

    def local_gradient(self, g, u_bar):
        """Σ over the batch of ``g ūᵀ`` projected on the parameters (sharing summed)."""
        if self._conv is not None:
            dW, db = self._conv.gradient(g, u_bar)
            return np.concatenate([dW.ravel()] + ([db] if self.data.get("has_bias") else []))
        if self.kind == "linear":
            G = g @ u_bar.T
            return np.concatenate([G[:, :-1].ravel()] + ([G[:, -1]] if self.data.get("has_bias") else []))
        if self.kind != "batchnorm":  # parameters live only on linear, conv and batch-norm edges
            raise SheafError(f"{self.where}: a {self.kind!r} edge has no parameters")
        A = sp.csr_array(self.A)
        rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
        per_entry = np.einsum("ij,ij->i", g[rows], u_bar[A.indices])
        # batch norm: the chain rule to the layer's γ, β through s = γ/root, t = β − s·mean
        n = self.rows.size
        mean, root = self.data["bn"]["mean"], self.data["bn"]["root"]
        C = len(mean)
        diag = A.indices == rows
        d_scale = np.bincount(rows[diag] // (n // C), weights=per_entry[diag], minlength=C)
        d_shift = np.bincount(rows[~diag] // (n // C), weights=per_entry[~diag], minlength=C)
        return np.concatenate([(d_scale - d_shift * mean) / root, d_shift])

    def weight_mask(self):
        """1 on the weights, 0 on the biases of :meth:`theta` (weight decay spares biases)."""
        n = self.theta().size
        if self.kind == "batchnorm":
            return np.zeros(n)
        n_w = int(np.prod(self.data["weight_shape"])) if "weight_shape" in self.data else \
            self.rows.size * (np.shape(self.A)[1] - 1)
        mask = np.zeros(n)
        mask[:n_w] = 1.0
        return mask


class _ConvCompute:
    """A convolution edge computed as the sparse map it is, factored once per compile:
    ``A ū = W₂ (P ū) + b`` with P the 0/1 patch gather (a C_in·k × positions copy of the
    input, read off the map's structure) and W₂ the kernel as a (C_out, C_in·k) matrix, read
    off the map's entries (:meth:`Edge.theta`). Products with P are sparse with C_out times
    fewer entries than A; products with W₂ are one dense GEMM for the whole batch."""

    def __init__(self, edge, S):
        A = sp.csr_array(edge.A)
        index = np.asarray(edge.data["weight_index"])
        shape = tuple(edge.data["weight_shape"])
        self.C_out, self.K = shape[0], int(np.prod(shape[1:]))   # K = C_in · kernel size
        self.n_w = int(np.prod(shape))
        self.P = A.shape[0] // self.C_out                        # output positions
        rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
        cols = A.indices
        w = index < self.n_w
        first = w & (rows < self.P)                              # c_out = 0 holds every patch entry
        k = index[first] % self.K
        self.gather = sp.csr_array((np.ones(int(first.sum())), ((k * self.P + rows[first]), cols[first])),
                                   shape=(self.K * self.P, A.shape[1]))
        self.gather_T = self.gather.T.tocsr()
        self.n_in = A.shape[1] - 1
        theta = edge.theta()
        self.load(np.concatenate([theta, np.zeros(max(0, self.n_w + self.C_out - theta.size))]))

    def load(self, theta):
        self.W2 = np.asarray(theta[:self.n_w]).reshape(self.C_out, self.K)
        self.b = np.asarray(theta[self.n_w:self.n_w + self.C_out])

    def patches(self, u_bar):
        M = u_bar.shape[1]
        return (self.gather @ u_bar).reshape(self.K, self.P * M)

    def apply(self, u_bar):
        M = u_bar.shape[1]
        out = (self.W2 @ self.patches(u_bar)).reshape(self.C_out, self.P, M)
        if self.b.size:
            out += self.b[:, None, None] * u_bar[-1][None, None, :]
        return out.reshape(self.C_out * self.P, M)

    def rapply(self, g):
        M = g.shape[1]
        G = g.reshape(self.C_out, self.P * M)
        back = self.gather_T @ (self.W2.T @ G).reshape(self.K * self.P, M)
        back[-1] += (self.b[:, None] * g.reshape(self.C_out, self.P, M).sum(axis=1)).sum(axis=0)
        return back

    def gradient(self, g, u_bar):
        M = g.shape[1]
        G = g.reshape(self.C_out, self.P * M)
        dW = G @ self.patches(u_bar).T
        db = (g.reshape(self.C_out, self.P, M) * u_bar[-1]).sum(axis=(1, 2))
        return dW, db


class DagPlan:
    """The compiled form of a DAG sheaf (read from the graph at every call that builds one).

    Attributes
    ----------
    order : list
        Vertices in topological order, the input first.
    defining : dict
        Vertex -> list of :class:`Edge` defining its coordinates.
    dims : dict
        Vertex -> number of free coordinates (its stalk minus the pinned 1).
    """

    def __init__(self, S):
        if not is_dag_sheaf(S):
            raise SheafError("not a DAG sheaf (build it with gn.dag_sheaf or gn.from_torch)")
        self.S = S
        self.input, self.output = S.graph["input"], S.graph["output"]
        try:
            self.order = list(nx.topological_sort(S))
        except nx.NetworkXUnfeasible:
            raise SheafError("a DAG sheaf has no directed cycles; this one has") from None
        self.dims = {v: int(S.nodes[v]["dim"]) - 1 for v in S}
        self.defining = {v: [] for v in S}
        for e in S.edges:
            self.defining[e[1]].append(Edge(S, e))
        for v in self.order:
            edges = self.defining[v]
            if v == self.input:
                if edges:
                    raise SheafError(f"{edges[0].where}: the input vertex has an incoming edge")
                continue
            covered = np.zeros(self.dims[v], dtype=np.int64)
            for e in edges:
                np.add.at(covered, e.rows, 1)
            if np.any(covered != 1):
                bad = int(np.flatnonzero(covered != 1)[0])
                raise SheafError(f"vertex {v!r}: coordinate {bad} is defined by {int(covered[bad])} edges "
                                 "(each must be defined by exactly one)")
        self.edges = [e for v in self.order for e in self.defining[v]]
        self.param_edges = [e for e in self.edges if e.params is not None]

    # -- sweeps ---------------------------------------------------------------------------
    def forward(self, X):
        """Every vertex's value ``[v; 1]`` at the forward pass of inputs X (columns)."""
        X = np.asarray(X, dtype=float)
        X = X.reshape(X.shape[0], -1)
        M = X.shape[1]
        if X.shape[0] != self.dims[self.input]:
            raise SheafError(f"X has {X.shape[0]} rows; the input vertex {self.input!r} has "
                             f"{self.dims[self.input]} coordinates")
        vals = {self.input: np.vstack([X, np.ones((1, M))])}
        for v in self.order[1:]:
            out = np.empty((self.dims[v] + 1, M))
            out[-1] = 1.0
            for e in self.defining[v]:
                out[e.rows] = e.apply(vals[e.tail])
            vals[v] = out
        return vals

    def freeze(self, vals):
        """Every state-dependent map's choices at ``vals`` (see :meth:`Edge.freeze`)."""
        return {e.edge: e.freeze(vals[e.tail]) for e in self.edges if e.state_dependent}

    def tangent(self, vals, inject, frozen=None):
        """``δ_Ω⁻¹`` of edge data at a fixed state: Δ_v[rows_e] = A_e Δ̄_u + inject[e]
        (Δ of the input and of every constant is 0)."""
        frozen = self.freeze(vals) if frozen is None else frozen
        M = vals[self.input].shape[1]
        delta = {self.input: np.zeros((self.dims[self.input] + 1, M))}
        for v in self.order[1:]:
            out = np.zeros((self.dims[v] + 1, M))
            for e in self.defining[v]:
                val = e.apply_frozen(delta[e.tail], frozen.get(e.edge))
                if e.edge in inject:
                    val = val + inject[e.edge]
                out[e.rows] = val
            delta[v] = out
        return delta

    def transposed(self, vals, seed, frozen=None):
        """``δ_Ω⁻ᵀ``: adjoints of every vertex from ``seed`` (vertex -> (n_v, M)), and each
        edge's share ``g_v[rows_e]``."""
        frozen = self.freeze(vals) if frozen is None else frozen
        M = vals[self.input].shape[1]
        adj = {v: np.zeros((self.dims[v], M)) for v in self.order}
        for v, g in seed.items():
            adj[v] += g
        per_edge = {}
        for v in reversed(self.order[1:]):
            for e in self.defining[v]:
                g = adj[v][e.rows]
                per_edge[e.edge] = g
                back = e.rapply_frozen(g, frozen.get(e.edge), vals[e.tail])
                adj[e.tail] += back[:-1]
        return adj, per_edge

    # -- the energy and its flow ----------------------------------------------------------
    def random_state(self, X, draw):
        """Vertex values ``[v; 1]`` with the input pinned to X and every other vertex drawn by
        ``draw(shape)`` (the start of the heat equation and of paper-mode training)."""
        M = X.shape[1]
        vals = {self.input: np.vstack([X, np.ones((1, M))])}
        for v in self.order[1:]:
            x = np.ones((self.dims[v] + 1, M))
            x[:-1] = draw((self.dims[v], M))
            vals[v] = x
        return vals

    def residuals(self, vals):
        """Per edge, ``x_v[rows] − A_e(ū) ū`` at the current values."""
        return {e.edge: vals[e.head][e.rows] - e.apply(vals[e.tail]) for e in self.edges}

    def forces(self, vals, r):
        """Minus the gradient of ½Σ‖r_e‖² in every vertex (the constant row included, which
        callers leave untouched): ``−R_eᵀ r_e`` on the head, ``A_e(ū)ᵀ r_e`` on the tail."""
        force = {v: np.zeros_like(vals[v]) for v in vals}
        for e in self.edges:
            force[e.head][e.rows] -= r[e.edge]
            force[e.tail] += e.rapply(r[e.edge], vals[e.tail])
        return force

    # -- parameters -----------------------------------------------------------------------
    def parameters(self):
        """Edge -> flattened parameters read from its map."""
        return {e.edge: e.theta() for e in self.param_edges}

    def write_back(self, thetas):
        for e in self.param_edges:
            if e.edge in thetas:
                e.set_theta(np.asarray(thetas[e.edge], dtype=float))
