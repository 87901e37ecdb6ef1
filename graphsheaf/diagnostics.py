"""Energies, per-edge discrepancies and spectra.

With the orientation convention of graphsheaf, the residual on edge ``e = (u, v)`` is
``(δx)_e = target_map @ x_v - source_map @ x_u``; its energy is ``½‖(δx)_e‖²`` and the
Dirichlet energy ``½‖δx‖²`` is their sum.
"""

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .cohomology import DENSE_LIMIT
from .exceptions import SheafError
from .harmonic import restricted_laplacian
from .complex_sheaves import is_complex_sheaf
from .layout import to_vector
from .linalg import CoboundaryOperator, coboundary_of, check_finite_cochain

__all__ = ["dirichlet_energy", "edge_energies", "edge_residuals", "group_energies", "spectral_gap"]


def _vector(G, x, nodelist):
    if isinstance(x, dict):
        return to_vector(G, x, nodelist)
    x = np.asarray(x)
    return x.astype(complex if x.dtype.kind == "c" else float, copy=False)


def _residual(G, x, state, kw):
    op = CoboundaryOperator(G, **kw)
    X = _vector(G, x, op.table.nodelist)
    if X.ndim not in (1, 2) or X.shape[0] != op.shape[1]:
        raise SheafError(f"cochain has shape {X.shape}, but dim C^0 = {op.shape[1]}")
    check_finite_cochain(X, op.table, "cochain")
    if np.iscomplexobj(X) or is_complex_sheaf(op.table):  # complex sheaves: the complex δ itself
        attrs = {k: kw[k] for k in ("dim", "source_map", "target_map") if k in kw}
        return op, coboundary_of(G, op.table, state, **attrs) @ X
    return op, op.matvec(X, state=state)


def _square(r):
    """|r|² entrywise (real for complex residuals)."""
    return (r.conj() * r).real if np.iscomplexobj(r) else r * r


def dirichlet_energy(G, x, *, state=None, dim="dim", source_map="source_map",
                     target_map="target_map", validate=True):
    """Return the Dirichlet energy ½‖δx‖².

    Parameters
    ----------
    G : sheaf
    x : dict node -> value, or C^0 vector
        Values of shape (dim,) or (dim, M); with M samples the result is an array of
        per-sample energies.
    state : dict, optional
        Where state-dependent maps are evaluated (per sample when batched).

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    >>> gs.dirichlet_energy(G, {0: [0.0], 1: [1.0], 2: [3.0]})
    2.5
    """
    _, r = _residual(G, x, state, dict(dim=dim, source_map=source_map, target_map=target_map,
                                       validate=validate))
    e = 0.5 * np.sum(_square(r), axis=0)
    return float(e) if np.ndim(e) == 0 else e


def edge_residuals(G, x, *, state=None, dim="dim", source_map="source_map",
                   target_map="target_map", validate=True):
    """Return dict edge -> ``(δx)_e = target_map @ x_v - source_map @ x_u``.

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    >>> {e: r.tolist() for e, r in gs.edge_residuals(G, {0: [0.0], 1: [1.0], 2: [3.0]}).items()}
    {(0, 1): [1.0], (1, 2): [2.0]}
    """
    op, r = _residual(G, x, state, dict(dim=dim, source_map=source_map, target_map=target_map,
                                        validate=validate))
    es = op.table.edge_start
    return {e: r[es[i]:es[i + 1]].copy() for i, e in enumerate(op.table.edges)}


def edge_energies(G, x, *, state=None, dim="dim", source_map="source_map",
                  target_map="target_map", validate=True):
    """Return dict edge -> ½‖(δx)_e‖² (per-sample arrays for batched x); they sum to the energy.

    The ½ makes them sum to the Dirichlet energy ½‖δx‖² whose gradient is Lx. The neural
    diagnostics' *discord* (:func:`graphsheaf.neural.discord`, the paper's quantity) is
    ‖(δx)_e‖² without the ½: twice these values, batch-averaged.

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    >>> gs.edge_energies(G, {0: [0.0], 1: [1.0], 2: [3.0]})
    {(0, 1): 0.5, (1, 2): 2.0}
    """
    op, r = _residual(G, x, state, dict(dim=dim, source_map=source_map, target_map=target_map,
                                        validate=validate))
    es = op.table.edge_start
    sq = 0.5 * _square(r)
    if len(op.table.edge_dims) == 0:
        return {}
    # segment sums over edge blocks (empty blocks give 0)
    csum = np.concatenate([np.zeros((1,) + sq.shape[1:]), np.cumsum(sq, axis=0)], axis=0)
    per_edge = csum[es[1:]] - csum[es[:-1]]
    if per_edge.ndim == 1:
        return {e: float(per_edge[i]) for i, e in enumerate(op.table.edges)}
    return {e: per_edge[i].copy() for i, e in enumerate(op.table.edges)}


def group_energies(G, energies, by="kind", *, default=None):
    """Sum per-edge energies by an edge attribute (``kind``, ``layer``, ...).

    Parameters
    ----------
    G : sheaf
    energies : dict edge -> float or array
        As returned by :func:`edge_energies`.
    by : str or callable
        Edge attribute name, or ``f(edge, data) -> key``.
    default : optional
        Key for edges without the attribute (they are grouped under ``None`` by default).

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    >>> G.edges[0, 1]["kind"] = "a"; G.edges[1, 2]["kind"] = "b"
    >>> gs.group_energies(G, {(0, 1): 0.5, (1, 2): 2.0})
    {'a': 0.5, 'b': 2.0}
    """
    out = {}
    for e, value in energies.items():
        if not G.has_edge(*e):
            raise SheafError(f"energies name {e!r}, which is not an edge of G")
        data = G.edges[e]
        key = by(e, data) if callable(by) else data.get(by, default)
        out[key] = out.get(key, 0) + value
    return out


def spectral_gap(G, boundary=None, *, state=None, tol=None, method="auto", dim="dim",
                 source_map="source_map", target_map="target_map", validate=True):
    """Return the smallest nonzero eigenvalue of the (restricted) sheaf Laplacian.

    With a boundary, the Laplacian is restricted to the free coordinates, L[Ω,Ω]; when
    H^0(G, B; F) = 0 this is its smallest eigenvalue λ_min, the rate at which the
    pinned heat equation forgets its start. Eigenvalues at or below the kernel
    threshold (global sections) are skipped. Returns ``inf`` when every eigenvalue
    is zero or there are no free coordinates.

    Parameters
    ----------
    method : {"auto", "dense", "sparse"}
        Dense ``eigh`` when small, shift-invert Lanczos (deterministic start) when large.

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    >>> round(gs.spectral_gap(G), 12)
    1.0
    >>> round(gs.spectral_gap(G, {0: [0.0]}), 6)
    0.381966
    """
    L_ff, _, free, _ = restricted_laplacian(G, boundary, state=state, dim=dim,
                                            source_map=source_map, target_map=target_map,
                                            validate=validate)
    return _gap(L_ff, tol, method, split=True)


def _gap(L_ff, tol, method, split):
    n = L_ff.shape[0]
    if n == 0:
        return float("inf")
    kind = method if method != "auto" else ("dense" if n <= DENSE_LIMIT else "sparse")
    if kind == "dense":
        w = la.eigvalsh(L_ff.toarray())
        t = n * np.finfo(float).eps * max(abs(w[-1]), 1.0) * 10 if tol is None else tol
        nz = w[w > t]
        return float(nz[0]) if nz.size else float("inf")
    scale = float(spla.norm(L_ff, 1))
    # Lanczos resolves eigenvalues to about eps * ||L||: below this they count as zero
    t = 10 * n * np.finfo(float).eps * scale if tol is None else tol
    k = min(6, n - 2)
    v0 = np.ones(n)
    A = L_ff.tocsc()
    while True:
        w = np.sort(spla.eigsh(A, k=k, sigma=-t, which="LM", v0=v0, return_eigenvectors=False))
        nz = w[w > t]
        if nz.size:
            return float(nz[0])
        if split and k >= min(n - 2, 64):
            # a large kernel (many isolated nodes or components): the gap is the smallest of
            # the components' gaps, each found where its own kernel is small
            from scipy.sparse.csgraph import connected_components
            n_comp, labels = connected_components(sp.csr_array(L_ff), directed=False)
            if n_comp > 1:
                order = np.argsort(labels, kind="stable")
                bounds = np.searchsorted(labels[order], np.arange(n_comp + 1))
                gaps = [_gap(L_ff[idx][:, idx], tol, "auto", split=False)
                        for idx in (order[bounds[c]:bounds[c + 1]] for c in range(n_comp))
                        if idx.size > 1 or L_ff[idx[0], idx[0]] > 0]
                return float(min(gaps, default=float("inf")))
        if k >= n - 2:
            return float("inf")
        k = min(n - 2, 2 * k)
