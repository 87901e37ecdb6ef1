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

from .._repr import short_repr
from ..layout import boundary_coordinates
from ..linalg import coboundary_matrix
from .kernels import forward_output, forward_sweep
from .dag.api import dag_boundary, dag_forward, dag_predict
from .dag.plan import is_dag_sheaf
from .plan import NetworkPlan

__all__ = [
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


def forward(S, X, *, out=None, check_finite=True):
    """Return the forward pass as an assignment node -> value.

    This is the unique harmonic extension of the pinned input and constants
    (Proposition 3.4), computed by block forward substitution along the path (Lemma
    3.2: δ_Ω is unit lower triangular), which costs exactly a forward pass. The maps
    are those on the edges of S (:mod:`graphsheaf.neural.plan`): an edited weight,
    bias block or gate is what is computed.

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
        The input vertex -> x̄, ``"z1"`` -> z^(1), ``"a1"`` -> ā^(1), ..., and the output
        vertex when present; values have shape (dim,) or (dim, M). The stalks up to the
        output pre-activation are views of one array laid out as
        :func:`graphsheaf.to_vector` would stack them (their common ``.base``), so
        keeping any one stalk keeps all.

    Examples
    --------
    >>> W = [np.array([[1., -1.], [2., 0.], [-1., 1.]]), np.array([[1., -2., 3.]])]
    >>> b = [np.array([0., -1., .5]), np.array([.5])]
    >>> x = gn.forward(gn.neural_sheaf(W, b), np.array([1., 2.]))
    >>> x["z1"].tolist(), x["a1"].tolist(), x["z2"].tolist()
    ([-1.0, 1.0, 1.5], [0.0, 1.0, 1.5, 1.0], [3.0])
    """
    if is_dag_sheaf(S):
        vals = dag_forward(S, X)
        return {v: x[:, 0] for v, x in vals.items()} if np.ndim(X) == 1 else vals
    plan = NetworkPlan(S)
    a = plan.check_inputs(X) if check_finite else np.asarray(X, dtype=float)
    tail = a.shape[1:]
    nodes = [u for u in plan.nodes if u != plan.y]
    if out is not None and all(u in out and out[u].shape == (plan.width[u],) + tail for u in nodes):
        res = out
        for u in nodes:
            res[u][plan.free[u]:] = 1.0
    else:
        res = {} if out is None else out
        res.update(plan.new_slab(tail))
    res[plan.input][:plan.dims[0]] = a
    z = [res[u][:plan.free[u]] for u in plan.z_nodes]
    acts = [None] + [res[u][:plan.free[u]] for u in plan.a_nodes]
    forward_sweep(plan, a, z=z, a=acts)
    if plan.y is not None:
        res[plan.y] = plan.output_value(z[-1]) if plan.phi is not None else z[-1].copy()
    return res


def predict(S, X):
    """Return the network output φ(z^(k+1)) for X of shape (n_0,) or (n_0, M).

    Examples
    --------
    >>> S = gn.neural_sheaf([np.eye(2)], [np.ones(2)], output="softmax")
    >>> gn.predict(S, np.zeros(2)).tolist()
    [0.5, 0.5]
    """
    if is_dag_sheaf(S):
        out = dag_predict(S, X)
        return out[:, 0] if np.ndim(X) == 1 else out
    plan = NetworkPlan(S)
    return plan.output_value(forward_output(plan, plan.check_inputs(X)))


def forward_boundary(S, X):
    """The boundary spec of the forward pass: the extended input and every constant.

    Examples
    --------
    >>> S = gn.neural_sheaf([np.ones((3, 2)), np.ones((1, 3))])
    >>> b = gn.forward_boundary(S, np.array([1.0, 2.0]))
    >>> b["x"].tolist(), b["a1"]
    ([1.0, 2.0, 1.0, 1.0, 1.0], {3: 1.0})
    """
    if is_dag_sheaf(S):
        return dag_boundary(S, X)
    plan = NetworkPlan(S)
    return plan.boundary(plan.check_inputs(X))


def topological_layout(S):
    """Nodes in topological order and edges ordered by the position of their head."""
    nodes = list(nx.topological_sort(S))
    pos = {v: i for i, v in enumerate(nodes)}

    def first_row(e):  # the first head coordinate the edge defines (blocks of a concatenation)
        T = S.edges[e]["target_map"]
        T = T.toarray() if hasattr(T, "toarray") else np.asarray(T)
        return int(T[0].argmax()) if T.ndim == 2 and T.shape[0] else 0

    edges = sorted(S.edges, key=lambda e: (pos[e[1]], first_row(e), pos[e[0]]))
    return nodes, edges


def free_blocks(S, nodes=None):
    """Node -> indices of its free coordinates, in the order ``nodes`` (topological)."""
    plan = NetworkPlan(S)
    nodes = nodes or topological_layout(S)[0]
    return {v: list(range(plan.free[v])) for v in nodes if v != plan.input}


def restricted_delta(S, x_state, nodes, edges):
    delta = coboundary_matrix(S, nodes, edges, state=x_state, validate=False).toarray()
    b = boundary_coordinates(S, pinned_spec(S), nodes)
    free = np.setdiff1d(np.arange(delta.shape[1]), b.index)
    return delta[:, free], delta[:, b.index]


def pinned_spec(S):
    """Boundary spec (no values) of the forward pass: the whole input and every constant."""
    if is_dag_sheaf(S):
        return {v: (None if c is None else set(c)) for v, c in S.graph["pinned"].items()}
    return NetworkPlan(S).pinned_spec()


def _columns(X):
    X = np.asarray(X, dtype=float)
    return [X] if X.ndim == 1 else [X[:, m] for m in range(X.shape[1])]


@dataclass(frozen=True)
class Unitriangularity:
    """Result of :func:`check_unitriangular` (one entry per sample when batched)."""

    def __repr__(self):
        return short_repr(self)

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
        D, _ = restricted_delta(S, forward(S, x), nodes, edges)
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

    def __repr__(self):
        return short_repr(self)

    lambda_min: object
    lambda_max: object
    condition: object


def without_output_vertex(S):
    """The same network's sheaf without the output vertex (identity read-out)."""
    plan = NetworkPlan(S)
    if plan.y is None:
        return S
    T = S.copy()
    T.remove_node(plan.y)
    T.graph["output"] = plan.z_nodes[-1]
    T.graph["output_activation"] = "identity"
    return T


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
        D, _ = restricted_delta(S, forward(S, x), nodes, edges)
        w = la.eigvalsh(D.T @ D) if D.size else np.array([np.inf])
        lo.append(float(w[0]))
        hi.append(float(w[-1]))
    lo, hi = np.array(lo), np.array(hi)
    if np.asarray(X).ndim == 1:
        return Spectrum(float(lo[0]), float(hi[0]), float(hi[0] / lo[0]))
    return Spectrum(lo, hi, hi / lo)
