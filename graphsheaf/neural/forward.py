"""The forward pass as a harmonic extension, and the linear algebra behind it.

Lemma 3.2 (Bosca & Ghrist): ordering free coordinates and edges along the
computation, the restricted coboundary δ_Ω is square and block unit lower
triangular for every activation pattern, so det δ_Ω = 1 and L[Ω,Ω] = δ_Ωᵀδ_Ω is
positive definite. Proposition 3.4: the unique harmonic extension of the pinned
input (and constant ones) is the forward pass, computed by one block forward
substitution -- which is the layer-by-layer forward pass.
"""

from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.linalg as la

from ..exceptions import SheafError
from ..linalg import boundary_coordinates, coboundary_matrix
from .builder import OutputActivation, architecture

__all__ = [
    "NetView",
    "Spectrum",
    "Unitriangularity",
    "check_unitriangular",
    "forward",
    "forward_boundary",
    "free_blocks",
    "pinned_spec",
    "predict",
    "restricted_spectrum",
    "topological_layout",
]


class NetView:
    """The parameters of a neural sheaf as arrays, read once from its edges.

    ``W[l]`` is the (n_{l+1}, n_l) weight block of W̄ and ``c[l]`` the bias term
    ``W̄[:, n_l:] @ 1`` (the constant coordinates are pinned to 1), so that the affine
    edge reads ``z = W a + c``.
    """

    def __init__(self, S):
        self.dims = architecture(S)
        self.k = len(self.dims) - 2
        self.output = S.graph.get("output_activation", "identity")
        self.with_y = "y" in S
        self.affine = [("x", "z1")] + [(f"a{l}", f"z{l + 1}") for l in range(1, self.k + 1)]
        self.W, self.c, self.ones = [], [], []
        for l, (u, v) in enumerate(self.affine):
            W_bar = np.asarray(S.edges[u, v]["source_map"], dtype=float)
            n_in = self.dims[l]
            self.W.append(W_bar[:, :n_in])
            self.c.append(W_bar[:, n_in:].sum(axis=1))
            self.ones.append(W_bar.shape[1] - n_in)
        self.strict = any(getattr(S.edges[f"z{l}", f"a{l}"]["source_map"], "strict", False)
                          for l in range(1, self.k + 1))
        self.phi = S.edges[f"z{self.k + 1}", "y"]["source_map"] if self.with_y else None

    def mask(self, z):
        return z > 0 if self.strict else z >= 0

    def output_value(self, z):
        if isinstance(self.phi, OutputActivation):
            return self.phi.value(z)
        if self.phi is None:
            return z
        return np.asarray(self.phi) @ z


def edge_square_norms(net, state):
    """Per-sample ``‖(δc)_e‖²`` of every edge of a neural sheaf (output edge through φ itself).

    ``state`` maps nodes to values of shape (dim, M); returns edge -> array (M,).
    """
    out = {}
    for l, (u, v) in enumerate(net.affine):
        r = net.W[l] @ state[u][:net.dims[l]] + net.c[l][:, None] - state[v]
        out[(u, v)] = np.sum(r * r, axis=0)
    for l in range(1, net.k + 1):
        z = state[f"z{l}"]
        q = np.where(net.mask(z), z, 0.0) - state[f"a{l}"][:net.dims[l]]
        out[(f"z{l}", f"a{l}")] = np.sum(q * q, axis=0)
    if net.with_y:
        d = net.output_value(state[f"z{net.k + 1}"]) - state["y"]
        out[(f"z{net.k + 1}", "y")] = np.sum(d * d, axis=0)
    return out


def _inputs(net, X):
    X = np.asarray(X, dtype=float)
    if X.ndim not in (1, 2) or X.shape[0] != net.dims[0]:
        raise SheafError(f"X has shape {X.shape}; the network takes ({net.dims[0]},) or "
                         f"({net.dims[0]}, M) (one column per sample)")
    if not np.all(np.isfinite(X)):
        raise SheafError("X contains NaN or inf")
    return X


def _extend(a, w):
    ones = np.ones((w,) + a.shape[1:])
    return np.concatenate([a, ones], axis=0)


def forward(S, X, *, out=None, check_finite=True):
    """Return the forward pass as an assignment node -> value.

    This is the unique harmonic extension of the pinned input and constants
    (Proposition 3.4), computed by block forward substitution along the path (Lemma
    3.2: δ_Ω is unit lower triangular), which costs exactly a forward pass.

    Parameters
    ----------
    S : neural sheaf (:func:`neural_sheaf`)
    X : array of shape (n_0,) or (n_0, M)
        One input, or M inputs as columns.
    out : dict, optional
        A previous result of the same shapes whose arrays are overwritten (no new
        allocation, as with NumPy's ``out=``); it is returned.
    check_finite : bool, default True
        Reject NaN/inf inputs.

    Returns
    -------
    dict
        ``"x"`` -> x̄, ``"z1"`` -> z^(1), ``"a1"`` -> ā^(1), ..., and ``"y"`` when
        present; values have shape (dim,) or (dim, M). The stalks up to the output
        pre-activation are views of one array laid out as :func:`graphsheaf.to_vector`
        would stack them (their common ``.base``), so keeping any one stalk keeps all.

    Examples
    --------
    >>> W = [np.array([[1., -1.], [2., 0.], [-1., 1.]]), np.array([[1., -2., 3.]])]
    >>> b = [np.array([0., -1., .5]), np.array([.5])]
    >>> x = gn.forward(gn.neural_sheaf(W, b), np.array([1., 2.]))
    >>> x["z1"].tolist(), x["a1"].tolist(), x["z2"].tolist()
    ([-1.0, 1.0, 1.5], [0.0, 1.0, 1.5, 1.0], [3.0])
    """
    net = NetView(S)
    a = _inputs(net, X) if check_finite else np.asarray(X, dtype=float)
    tail = a.shape[1:]
    rows = {"x": net.dims[0] + net.ones[0]}
    for l in range(net.k + 1):
        rows[f"z{l + 1}"] = net.dims[l + 1]
        if l < net.k:
            rows[f"a{l + 1}"] = net.dims[l + 1] + net.ones[l + 1]
    if out is not None and all(k in out and out[k].shape == (r,) + tail for k, r in rows.items()):
        res = out
    else:
        # every stalk is a view into one (N, M) slab in node order, so the result costs a
        # single allocation (NumPy's allocator reuses it across calls instead of faulting in
        # fresh pages for each stalk), and the slab is the cochain vector of to_vector
        slab = np.empty((sum(rows.values()),) + tail)
        res = {} if out is None else out
        start = 0
        for node, r in rows.items():
            res[node] = slab[start:start + r]
            start += r

    x_bar = res["x"]
    x_bar[:net.dims[0]] = a
    x_bar[net.dims[0]:] = 1.0
    for l in range(net.k + 1):
        z = res[f"z{l + 1}"]
        np.matmul(net.W[l], a, out=z)
        z += net.c[l] if z.ndim == 1 else net.c[l][:, None]
        if l < net.k:
            # ā = [R_z z; 1] written in place: the real part is a view that feeds the next layer
            n = z.shape[0]
            ext = res[f"a{l + 1}"]
            a = ext[:n]
            if net.strict:
                np.multiply(z, z > 0, out=a)
            else:
                np.maximum(z, 0.0, out=a)  # equals R_z z with the tie rule z >= 0 active
            ext[n:] = 1.0
    if net.with_y:
        res["y"] = net.output_value(z)
    return res


def predict(S, X):
    """Return the network output φ(z^(k+1)) for X of shape (n_0,) or (n_0, M).

    Examples
    --------
    >>> S = gn.neural_sheaf([np.eye(2)], [np.ones(2)], output="softmax")
    >>> gn.predict(S, np.zeros(2)).tolist()
    [0.5, 0.5]
    """
    net = NetView(S)
    a = _inputs(net, X)
    for l in range(net.k + 1):
        z = net.W[l] @ a
        z += net.c[l] if z.ndim == 1 else net.c[l][:, None]
        if l < net.k:
            a = np.where(net.mask(z), z, 0.0)
    if net.output == "identity":
        return z
    return OutputActivation(net.output, z.shape[0]).value(z)


def forward_boundary(S, X):
    """The boundary spec of the forward pass: the extended input and every constant.

    Examples
    --------
    >>> S = gn.neural_sheaf([np.ones((3, 2)), np.ones((1, 3))])
    >>> b = gn.forward_boundary(S, np.array([1.0, 2.0]))
    >>> b["x"].tolist(), b["a1"]
    ([1.0, 2.0, 1.0, 1.0, 1.0], {3: 1.0})
    """
    net = NetView(S)
    a = _inputs(net, X)
    out = {"x": _extend(a, net.ones[0])}
    for node, coords in S.graph["constant"].items():
        if node != "x":
            out[node] = {int(i): 1.0 for i in coords}
    return out


def topological_layout(S):
    """Nodes in topological order and edges ordered by the position of their head."""
    nodes = list(nx.topological_sort(S))
    pos = {v: i for i, v in enumerate(nodes)}
    edges = sorted(S.edges, key=lambda e: (pos[e[1]], pos[e[0]]))
    return nodes, edges


def free_blocks(S, nodes=None):
    """Node -> indices of its free coordinates, in the order ``nodes`` (topological)."""
    nodes = nodes or topological_layout(S)[0]
    const = S.graph["constant"]
    out = {}
    for v in nodes:
        if v == S.graph["input"]:
            continue
        d = S.nodes[v]["dim"]
        fixed = set(const.get(v, ()))
        out[v] = [i for i in range(d) if i not in fixed]
    return out


def _restricted_delta(S, x_state, nodes, edges):
    delta = coboundary_matrix(S, nodes, edges, state=x_state, validate=False).toarray()
    b = boundary_coordinates(S, pinned_spec(S), nodes)
    free = np.setdiff1d(np.arange(delta.shape[1]), b.index)
    return delta[:, free], delta[:, b.index]


def pinned_spec(S):
    """Boundary spec (no values) of the forward pass: the whole input and every constant."""
    spec = {v: set(c) for v, c in S.graph["constant"].items()}
    spec[S.graph["input"]] = None
    return spec


def _columns(X):
    X = np.asarray(X, dtype=float)
    return [X] if X.ndim == 1 else [X[:, m] for m in range(X.shape[1])]


@dataclass(frozen=True)
class Unitriangularity:
    """Result of :func:`check_unitriangular` (one entry per sample when batched)."""

    square: bool
    unit_lower_triangular: bool
    det: object
    max_upper: float
    max_diagonal_error: float
    n_free: int

    def __bool__(self):
        return bool(self.square and self.unit_lower_triangular)


def check_unitriangular(S, X, *, tol=0.0):
    """Check Lemma 3.2 at the activation pattern of X: δ_Ω square, unit lower triangular.

    Coordinates are in topological order of the nodes, edges in order of their heads.

    Returns
    -------
    Unitriangularity
        ``square``, ``unit_lower_triangular`` (all samples), ``det`` of δ_Ω (float, or an
        array over samples), the largest entry above the diagonal and the largest
        deviation of the diagonal from 1.

    Examples
    --------
    >>> W, b = gn.init_weights([2, 4, 3, 1], rng=0)
    >>> r = gn.check_unitriangular(gn.neural_sheaf(W, b), np.array([0.3, -1.0]))
    >>> r.square, r.unit_lower_triangular, r.det
    (True, True, 1.0)
    """
    nodes, edges = topological_layout(S)
    dets, uppers, diags, ok, square, n_free = [], [], [], True, True, 0
    for x in _columns(X):
        D, _ = _restricted_delta(S, forward(S, x), nodes, edges)
        n_free = D.shape[1]
        if D.shape[0] != D.shape[1]:
            square = ok = False
            dets.append(float("nan"))
            uppers.append(float("nan"))
            diags.append(float("nan"))
            continue
        upper = float(np.abs(np.triu(D, 1)).max(initial=0.0))
        diag = float(np.abs(np.diag(D) - 1).max(initial=0.0))
        ok &= upper <= tol and diag <= tol
        # a triangular matrix's determinant is the product of its diagonal (exact here)
        dets.append(float(np.prod(np.diag(D))) if upper == 0 else float(np.linalg.det(D)))
        uppers.append(upper)
        diags.append(diag)
    single = np.asarray(X).ndim == 1
    return Unitriangularity(square, bool(ok), dets[0] if single else np.array(dets),
                            float(np.nanmax(uppers)), float(np.nanmax(diags)), n_free)


@dataclass(frozen=True)
class Spectrum:
    """λ_min, λ_max and condition number of L[Ω,Ω] (arrays over samples when batched)."""

    lambda_min: object
    lambda_max: object
    condition: object


def without_output_vertex(S):
    """The same network's sheaf without the output vertex (identity read-out)."""
    from .builder import neural_sheaf, to_weights
    W, b = to_weights(S)
    return neural_sheaf(W, b, output="identity", output_vertex=False,
                        extension=S.graph.get("extension", "block"))


def restricted_spectrum(S, X, *, include_output=True):
    """Return the spectrum summary of L[Ω,Ω] = δ_Ωᵀδ_Ω at the activation pattern of X.

    For identity outputs L[Ω,Ω] depends only on the weights and the pattern; for
    sigmoid/softmax outputs the output edge is linearised (its Jacobian at the
    forward pass): the tangent sheaf, whose λ_min sets the asymptotic rate of the
    heat equation. ``include_output=False`` drops the output vertex (the hidden
    sheaf, as in the authors' spectral tables).

    Examples
    --------
    >>> W = [np.array([[1., -1.], [2., 0.], [-1., 1.]]), np.array([[1., -2., 3.]])]
    >>> b = [np.array([0., -1., .5]), np.array([.5])]
    >>> s = gn.restricted_spectrum(gn.neural_sheaf(W, b), np.array([1., 2.]))
    >>> round(s.lambda_min, 6), round(s.lambda_max, 6)
    (0.032922, 15.999702)
    """
    if not include_output and "y" in S:
        S = without_output_vertex(S)
    nodes, edges = topological_layout(S)
    lo, hi = [], []
    for x in _columns(X):
        D, _ = _restricted_delta(S, forward(S, x), nodes, edges)
        w = la.eigvalsh(D.T @ D) if D.size else np.array([np.inf])
        lo.append(float(w[0]))
        hi.append(float(w[-1]))
    lo, hi = np.array(lo), np.array(hi)
    if np.asarray(X).ndim == 1:
        return Spectrum(float(lo[0]), float(hi[0]), float(hi[0] / lo[0]))
    return Spectrum(lo, hi, hi / lo)
