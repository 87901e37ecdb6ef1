"""Per-edge discord and spectral diagnostics of neural sheaves (Bosca & Ghrist §6).

Discord of an edge is the squared norm of its residual ``‖(δc)_e‖²``, averaged over
the batch as the authors do; the total (sum over edges) is ``2E`` per sample: each edge's
discord is twice its :func:`graphsheaf.edge_energies` value ``½‖(δc)_e‖²``. It
decomposes by operation type (affine / ReLU / output) and by layer (layer ℓ = affine
edge ℓ + ReLU edge ℓ; the output edge joins layer k+1).
"""

from dataclasses import dataclass

import numpy as np
import scipy.linalg as la

from .._repr import short_repr
from ..exceptions import SheafError
from .dynamics import heat_equation
from .forward import (
    restricted_delta,
    forward,
    free_blocks,
    topological_layout,
    without_output_vertex,
)
from .kernels import edge_square_norms, residuals
from .dag.plan import is_dag_sheaf
from .plan import NetworkPlan

__all__ = ["Discord", "SpectralDiagnostics", "discord", "pinned_discord", "spectral_diagnostics"]


@dataclass(frozen=True)
class Discord:
    """Per-edge discord and its decompositions (batch means of ‖(δc)_e‖²).

    Attributes
    ----------
    edges : dict edge -> float
    by_kind : dict {"affine", "relu", "output"} -> float
    by_layer : dict layer -> float
    total : float
    per_sample : dict edge -> ndarray (M,)
    """

    def __repr__(self):
        return short_repr(self)

    edges: dict
    by_kind: dict
    by_layer: dict
    total: float
    per_sample: dict


def discord(S, state, *, X=None):
    """Per-edge discord of an assignment, decomposed by layer and by operation.

    Parameters
    ----------
    S : neural sheaf
    state : dict node -> value (shape (dim,) or (dim, M))
        Any assignment, e.g. ``gn.forward(S, X)`` (all zero), a heat-equation state,
        or a training state. Output edges use φ itself (sigmoid/softmax).

    Returns
    -------
    Discord

    Examples
    --------
    >>> W, b = gn.init_weights([2, 3, 1], rng=0)
    >>> S = gn.neural_sheaf(W, b)
    >>> gn.discord(S, gn.forward(S, np.ones((2, 4)))).total
    0.0
    """
    if is_dag_sheaf(S):
        from .dag.dynamics import dag_discord
        edges, by_kind = dag_discord(S, state)
        return Discord(edges, by_kind, {}, float(sum(edges.values())), {})
    plan = NetworkPlan(S)
    val = plan.free_parts(state, list(S))
    z = [val[v] for v in plan.z_nodes]
    a = [val[plan.input]] + [val[v] for v in plan.a_nodes]
    r, q = residuals(plan, z, a)
    d = plan.output_value(z[-1]) - val[plan.y] if plan.y is not None else None
    per = edge_square_norms(plan, r, q, d)
    edges = {e: float(v.mean()) for e, v in per.items()}
    kinds = dict.fromkeys(plan.affine_edges, "affine")
    kinds.update(dict.fromkeys(plan.gate_edges, "relu"))
    if plan.output_edge is not None:
        kinds[plan.output_edge] = "output"
    layers = {e: l + 1 for l, e in enumerate(plan.affine_edges)}
    layers.update({e: l + 1 for l, e in enumerate(plan.gate_edges)})
    if plan.output_edge is not None:
        layers[plan.output_edge] = plan.k + 1
    by_kind, by_layer = {}, {}
    for e, v in edges.items():
        data = S.edges[e]
        kind, layer = data.get("kind", kinds[e]), data.get("layer", layers[e])
        by_kind[kind] = by_kind.get(kind, 0.0) + v
        by_layer[layer] = by_layer.get(layer, 0.0) + v
    return Discord(edges, by_kind, by_layer, float(sum(edges.values())), per)


def pinned_discord(S, X, Y, *, method="equilibrium", dt=0.01, tol=1e-10, steps=100_000,
                   output_mode="identity"):
    """Discord after pinning the output to labels Y and relaxing from the forward pass.

    The authors' diagnostic for trained networks: with the output hard-pinned to the
    true labels, the equilibrium shows where the prediction error is absorbed. With
    ``method="heat"`` the heat equation runs from the forward pass (their procedure:
    α = 1, Δt = 0.01, tol 1e-10); ``"equilibrium"`` solves for the limit exactly.

    Returns
    -------
    Discord
    """
    plan = NetworkPlan(S)
    X = plan.check_inputs(X)
    Y = np.asarray(Y, dtype=float)
    out = plan.output
    Y2 = Y.reshape(plan.dims[-1], -1) if Y.ndim <= 1 else Y
    pins = {out: Y2 if X.ndim == 2 else Y2[:, 0]}
    if method == "heat":
        res = heat_equation(S, X, pins=pins, dt=dt, tol=tol, steps=steps, init="forward",
                            criterion="step",
                            record=False, output_mode=output_mode)
        return discord(S, res.state)
    if method != "equilibrium":
        raise SheafError(f"method must be 'equilibrium' or 'heat', got {method!r}")
    from .pinning import equilibrium
    return discord(S, equilibrium(S, X, pins=pins).state)


@dataclass(frozen=True)
class SpectralDiagnostics:
    """Spectra of L[Ω,Ω] at each input's forward-pass pattern (arrays over inputs).

    ``fiedler_energy`` and ``top_energy`` map each free block (``"z1"``, ``"a1"``, ...)
    to the fraction of the squared norm of the λ_min (Fiedler) and λ_max
    eigenvectors lying in that block.
    """

    def __repr__(self):
        return short_repr(self)

    lambda_min: np.ndarray
    lambda_max: np.ndarray
    condition: np.ndarray
    fiedler_energy: dict
    top_energy: dict


def spectral_diagnostics(S, X, *, include_output=True):
    """Spectral gap, λ_max, condition number and eigenvector energy by block, per input.

    ``include_output=False`` drops the output vertex of sigmoid/softmax networks (see
    :func:`restricted_spectrum`).

    Examples
    --------
    >>> W, b = gn.init_weights([2, 5, 1], rng=0)
    >>> d = gn.spectral_diagnostics(gn.neural_sheaf(W, b), np.ones((2, 3)))
    >>> d.lambda_min.shape, sorted(d.fiedler_energy)
    ((3,), ['a1', 'z1', 'z2'])
    """
    if is_dag_sheaf(S):
        from .dag.dynamics import dag_spectral_diagnostics
        return SpectralDiagnostics(*dag_spectral_diagnostics(S, X))
    X = np.asarray(X, dtype=float)
    X2 = X[:, None] if X.ndim == 1 else X
    if not include_output and "y" in S:
        S = without_output_vertex(S)
    nodes, edges = topological_layout(S)
    blocks = free_blocks(S, nodes)
    spans, pos = {}, 0
    for v in nodes:
        if v in blocks:
            spans[v] = slice(pos, pos + len(blocks[v]))
            pos += len(blocks[v])
    lo, hi, fied, top = [], [], {v: [] for v in spans}, {v: [] for v in spans}
    for m in range(X2.shape[1]):
        D, _ = restricted_delta(S, forward(S, X2[:, m]), nodes, edges)
        w, V = la.eigh(D.T @ D)
        lo.append(w[0])
        hi.append(w[-1])
        for v, sl in spans.items():
            fied[v].append(float(np.sum(V[sl, 0] ** 2)))
            top[v].append(float(np.sum(V[sl, -1] ** 2)))
    lo, hi = np.array(lo), np.array(hi)
    return SpectralDiagnostics(lo, hi, hi / lo, {v: np.array(x) for v, x in fied.items()},
                               {v: np.array(x) for v, x in top.items()})
