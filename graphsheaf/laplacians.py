"""Sheaf Laplacians: the vertex Laplacian L = δᵀWδ (weighted, normalised) and the edge
(up) Laplacian δWδᵀ.

With edge weights w_e (W = ⊕ w_e I on C¹) the quadratic form is ``Σ_e w_e ‖(δx)_e‖²``;
``weight=None`` is W = I. The normalised Laplacian is ``D^{-1/2} L D^{-1/2}`` with D the
block diagonal of L (one d_v × d_v block per stalk; Hansen & Ghrist, "Toward a spectral
theory of cellular sheaves", 2019, §3.4), which for the constant scalar sheaf is
networkx's ``normalized_laplacian_matrix``. Blocks that are singular (an isolated vertex,
a stalk some coordinate of which no map sees) are inverted on their range only, as
networkx does for isolated nodes. ``normalized="augmented"`` uses ``D + I`` instead of
D, as neural sheaf diffusion does (Bodnar et al., NeurIPS 2022).
"""

import numpy as np
import scipy.sparse as sp

from .exceptions import SheafError
from ._threads import available_workers
from .linalg import coboundary_of, edge_table, laplacian_of

__all__ = ["edge_laplacian", "sheaf_laplacian"]


def _edge_weights(G, table, weight):
    """Per-edge weights (1 where the attribute is missing) repeated over edge coordinates."""
    E = G.edges
    w = np.array([E[e].get(weight, 1.0) for e in table.edges], dtype=float)
    if not np.all(np.isfinite(w)):
        i = int(np.flatnonzero(~np.isfinite(w))[0])
        raise SheafError(f"edge {table.edges[i]!r} has a non-finite {weight!r} = {w[i]!r}")
    return np.repeat(w, np.diff(table.edge_start))


def _weighted(G, table, weight, state, kw, workers=1):
    if weight is None:
        return laplacian_of(G, table, state, workers=workers, **kw)
    D = coboundary_of(G, table, state, **kw)
    w = _edge_weights(G, table, weight)
    out = sp.csr_array(D.conj().T @ (D * w[:, None]))
    out.sum_duplicates()
    return out


def _inverse_sqrt_blocks(L, starts, shift):
    """Block-diagonal ``(D + shift I)^{-1/2}`` for the diagonal blocks D of L (pseudo-inverse
    on singular blocks), grouped by block size so each group is one batched eigh."""
    dims = np.diff(starts)
    n = int(starts[-1])
    C = L.tocoo()
    node = np.repeat(np.arange(dims.size), dims)
    keep = node[C.row] == node[C.col]
    r, c, v = C.row[keep], C.col[keep], C.data[keep]
    rows, cols, vals = [], [], []
    for d in np.unique(dims[dims > 0]):
        nodes = np.flatnonzero(dims == d)
        slot = -np.ones(dims.size, dtype=np.int64)
        slot[nodes] = np.arange(nodes.size)
        blocks = np.zeros((nodes.size, d, d), dtype=L.dtype)
        mine = slot[node[r]] >= 0
        k = slot[node[r[mine]]]
        np.add.at(blocks, (k, r[mine] - starts[node[r[mine]]], c[mine] - starts[node[c[mine]]]),
                  v[mine])
        blocks += shift * np.eye(d)
        lam, U = np.linalg.eigh(blocks)
        big = lam > lam.max(axis=1, keepdims=True).clip(min=0) * d * np.finfo(float).eps * 10
        inv = np.where(big & (lam > 0), 1.0 / np.sqrt(np.where(lam > 0, lam, 1.0)), 0.0)
        M = np.einsum("nij,nj,nkj->nik", U, inv, U.conj())
        base = starts[nodes]
        ii = base[:, None, None] + np.arange(d)[None, :, None]
        jj = base[:, None, None] + np.arange(d)[None, None, :]
        rows.append(np.broadcast_to(ii, M.shape).ravel())
        cols.append(np.broadcast_to(jj, M.shape).ravel())
        vals.append(M.ravel())
    if not rows:
        return sp.csr_array((n, n))
    return sp.coo_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(n, n)).tocsr()


def sheaf_laplacian(G, nodelist=None, *, weight=None, normalized=False, state=None, workers=None,
                    dim="dim", source_map="source_map", target_map="target_map", validate=True):
    """Return the sheaf Laplacian L = δᵀWδ as a scipy sparse CSR array.

    Assembled directly from per-edge blocks: for ``e = (u, v)`` with maps A (tail)
    and B (head), L_uu += AᵀA, L_vv += BᵀB, L_uv -= AᵀB, L_vu -= BᵀA (times ``w_e``).
    Blocks of equal shape are computed together (no Python loop over coordinates). L
    does not depend on the edge orientation.

    Parameters
    ----------
    G : networkx.DiGraph or MultiDiGraph
        A sheaf.
    nodelist : list, optional
        Order of node blocks; defaults to ``list(G)``.
    weight : str, optional
        Edge attribute holding a weight ``w_e`` (1 where missing), as in
        ``nx.laplacian_matrix``; None (the default) weighs every edge 1.
    normalized : {False, True, "augmented"}
        Return ``D^{-1/2} L D^{-1/2}`` with D the block diagonal of L (True) or of
        ``L + I`` (``"augmented"``); see the module notes.
    state : dict, optional
        Assignment at which state-dependent maps are evaluated.
    workers : int, optional
        Threads for the per-edge block products, the gather of the blocks and their
        conversion to CSR on large sheaves whose stalks share one dimension (the result
        does not depend on it). Defaults to the cores this process may use.

    Returns
    -------
    scipy.sparse.csr_array of shape (dim C^0, dim C^0)

    Examples
    --------
    >>> import networkx as nx, graphsheaf as gs
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    >>> gs.sheaf_laplacian(G).toarray().tolist()
    [[1.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 1.0]]
    >>> nx.set_edge_attributes(G, 4.0, "weight")
    >>> gs.sheaf_laplacian(G, weight="weight", normalized=True).toarray().round(3).tolist()
    [[1.0, -0.707, 0.0], [-0.707, 1.0, -0.707], [0.0, -0.707, 1.0]]
    """
    if normalized not in (False, True, "augmented"):
        raise ValueError(f"normalized must be False, True or 'augmented', got {normalized!r}")
    table = edge_table(G, nodelist, None, dim=dim, source_map=source_map,
                       target_map=target_map, validate=validate)
    kw = dict(dim=dim, source_map=source_map, target_map=target_map)
    L = _weighted(G, table, weight, state, kw,
                  available_workers() if workers is None else int(workers))
    if not normalized:
        return L
    S = _inverse_sqrt_blocks(L, table.node_start, 1.0 if normalized == "augmented" else 0.0)
    out = sp.csr_array(S @ L @ S)
    out.sum_duplicates()
    return out


def edge_laplacian(G, edgelist=None, *, weight=None, state=None, dim="dim",
                   source_map="source_map", target_map="target_map", validate=True):
    """Return the edge (up) Laplacian ``W^{1/2} δ δᵀ W^{1/2}`` on 1-cochains, sparse CSR.

    Its kernel is the space of harmonic 1-cochains (``ker δᵀ``, one per class of H¹) and
    its nonzero spectrum equals that of the vertex Laplacian ``δᵀWδ``. On a graph (no
    2-cells) it is the whole Hodge Laplacian of degree 1.

    Parameters
    ----------
    G : networkx.DiGraph or MultiDiGraph
    edgelist : list, optional
        Order of edge blocks; defaults to ``list(G.edges)``.
    weight : str, optional
        Edge attribute holding ``w_e`` (1 where missing).

    Examples
    --------
    >>> import networkx as nx, numpy as np, graphsheaf as gs
    >>> L1 = gs.edge_laplacian(gs.constant_sheaf(nx.cycle_graph(3)))
    >>> sorted(round(float(x), 6) + 0 for x in np.linalg.eigvalsh(L1.toarray()))
    [0.0, 3.0, 3.0]
    """
    table = edge_table(G, None, edgelist, dim=dim, source_map=source_map,
                       target_map=target_map, validate=validate)
    D = coboundary_of(G, table, state, dim, source_map, target_map)
    if weight is not None:
        w = _edge_weights(G, table, weight)
        if np.any(w < 0):
            i = int(np.searchsorted(table.edge_start, np.flatnonzero(w < 0)[0], side="right")) - 1
            raise SheafError(f"edge {table.edges[i]!r} has a negative {weight!r}; the edge "
                             "Laplacian needs weights >= 0")
        D = D * np.sqrt(w)[:, None]
    out = sp.csr_array(D @ D.conj().T)
    out.sum_duplicates()
    return out
