"""Complex sheaves (U(d) connections, magnetic Laplacians) through their realification.

A complex sheaf F, stalks ℂ^d and complex maps, is the same linear-algebra problem as the
real sheaf F_ℝ with stalks ℝ^{2d} (coordinates ``[Re x; Im x]`` per stalk) and maps
``A ↦ [[Re A, −Im A], [Im A, Re A]]``: δ_ℝ is δ written over ℝ, the Dirichlet energy is
the same number, ``ker δ_ℝ`` is ``ker δ`` seen as a real space (so every complex
dimension is half the real one), the harmonic extension and the heat flow of F_ℝ are
those of F read in real coordinates. Cohomology, harmonic extension and diffusion of
complex sheaves are therefore computed on F_ℝ by the same code as real sheaves, and
converted back; the Laplacians are assembled directly as Hermitian matrices
(``L = δᴴδ``).
"""

import numpy as np
import scipy.sparse as sp

from .maps import is_state_dependent
from .sheaves import iter_edges

__all__ = ["complex_to_real", "is_complex_sheaf", "real_to_complex", "realify"]


def _is_complex_map(m):
    if is_state_dependent(m):
        return False
    dt = m.dtype if (sp.issparse(m) or isinstance(m, np.ndarray)) else np.asarray(m).dtype
    return dt.kind == "c"


def is_complex_sheaf(table):
    """True when some constant map of the (validated) edge table has complex entries."""
    stacks = [s for s in (table.stored("a")[0], table.stored("b")[0]) if s is not None]
    if stacks and len(stacks) == 2:
        return any(s.dtype.kind == "c" for s in stacks)
    return any(_is_complex_map(m) for m in table.maps)


def _real_block(M):
    M = M.toarray() if sp.issparse(M) else np.asarray(M)
    re, im = M.real.astype(float), M.imag.astype(float) if np.iscomplexobj(M) else np.zeros(M.shape)
    return np.block([[re, -im], [im, re]])


def realify(G, *, dim="dim", source_map="source_map", target_map="target_map"):
    """Return the real sheaf F_ℝ of a complex sheaf (stalks doubled; see the module notes).

    Examples
    --------
    >>> import networkx as nx, numpy as np, graphsheaf as gs
    >>> from graphsheaf.complex_sheaves import realify
    >>> F = gs.constant_sheaf(nx.path_graph(2)); F.edges[0, 1]["source_map"] = np.array([[1j]])
    >>> realify(F).edges[0, 1]["source_map"].tolist()
    [[0.0, -1.0], [1.0, 0.0]]
    """
    R = G.__class__()
    R.graph.update(G.graph)
    for v, data in G.nodes(data=True):
        R.add_node(v, **dict(data, **{dim: 2 * int(data[dim])}))
    for e, data in iter_edges(G):
        attrs = dict(data, **{source_map: _real_block(data[source_map]),
                              target_map: _real_block(data[target_map])})
        if len(e) == 3:
            R.add_edge(e[0], e[1], key=e[2], **attrs)
        else:
            R.add_edge(e[0], e[1], **attrs)
    return R


def _layout(dims):
    """Positions in the real layout of each complex coordinate's real and imaginary part."""
    dims = np.asarray(dims, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(dims)[:-1]])
    node = np.repeat(np.arange(dims.size), dims)
    local = np.arange(int(dims.sum())) - start[node]
    re = 2 * start[node] + local
    return re, re + dims[node]


def complex_to_real(Z, dims):
    """Complex C⁰ vectors (rows in the sheaf's layout; columns a batch) in the real layout."""
    Z = np.asarray(Z)
    re, im = _layout(dims)
    out = np.empty((2 * Z.shape[0],) + Z.shape[1:])
    out[re] = Z.real
    out[im] = Z.imag
    return out


def real_to_complex(X, dims):
    """Inverse of :func:`complex_to_real`."""
    re, im = _layout(dims)
    X = np.asarray(X)
    return X[re] + 1j * X[im]


def real_boundary(boundary, G, dim="dim"):
    """A boundary spec of the complex sheaf as one of F_ℝ: nodes stay nodes, a node's value
    splits into ``[Re; Im]``, a coordinate j of a stalk ℂ^d into coordinates j and j + d."""
    if boundary is None:
        return None
    if not isinstance(boundary, dict):
        return boundary  # a collection of nodes
    out = {}
    for v, spec in boundary.items():
        d = int(G.nodes[v][dim]) if v in G else 0
        if isinstance(spec, dict):
            sub = {}
            for j, val in spec.items():
                sub[j], sub[j + d] = np.real(val), np.imag(val)
            out[v] = sub
        elif isinstance(spec, (set, frozenset)):
            out[v] = set(spec) | {j + d for j in spec}
        else:
            val = np.asarray(spec)
            out[v] = np.concatenate([val.real, val.imag], axis=0) if val.ndim else val
    return out


def complex_assignment(assignment, G, dim="dim"):
    """A dict node -> ``[Re; Im]`` value of F_ℝ as node -> complex value of F."""
    out = {}
    for v, x in assignment.items():
        d = int(G.nodes[v][dim])
        out[v] = x[:d] + 1j * x[d:]
    return out


def complex_span(Z, h):
    """Orthonormal basis (n × h) of the complex span of the columns of Z, whose rank is h:
    a real basis of a complex subspace, read in complex coordinates, spans it twice over."""
    if Z is None:
        return None
    if h == 0:
        return np.zeros((Z.shape[0], 0), dtype=complex)
    U, _, _ = np.linalg.svd(Z, full_matrices=False)
    return U[:, :h]
