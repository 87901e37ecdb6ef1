"""Sheaf cohomology H^0 and H^1 of a graph sheaf, absolute and relative.

For a graph the cochain complex is ``0 -> C^0 --δ--> C^1 -> 0``, so
``H^0 = ker δ`` (global sections) and ``H^1 = C^1 / im δ``. Relative to a set B of
pinned coordinates, C^0 is replaced by the cochains vanishing on B (the columns of δ
at B are dropped): ``H^0(G, B; F) = ker δ_Ω``, the freedom left once B is fixed.
Ranks are read off singular values of δ (never of L, whose squared singular values
lose half the digits), component by weakly connected component.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ._repr import short_repr
from .complex_sheaves import complex_span, is_complex_sheaf, real_boundary, real_to_complex, realify
from .exact import check_prime, exact_cohomology
from .exceptions import RankDecisionWarning, SheafError
from .layout import boundary_coordinates
from .linalg import coboundary_of, edge_table, uniform_maps
from .solvers import (DIRECT_FILL_LIMIT, cokernel_basis, consecutive_numbers, envelope_size,
                      probe_kernel)
from .transport import components, forest_cohomology

__all__ = ["Cohomology", "cohomology"]

#: components with more rows or columns than this use the sparse method under method="auto"
#: (when bases are wanted: the dense SVD gives them at once; for counts alone the sparse
#: methods win from about 500 on a grid)
DENSE_LIMIT = 2000
DENSE_LIMIT_COUNTS = 500
#: bases=None computes the bases only when dim C⁰ + dim C¹ is at most this
AUTO_BASES_LIMIT = 1000
#: a rank decided with gap (smallest nonzero over largest zero singular value) below this warns
CLOSE_GAP = 100.0


@dataclass(frozen=True)
class Cohomology:
    """Result of :func:`cohomology`.

    Attributes
    ----------
    h0, h1 : int
        Dimensions of H^0 and H^1 (relative when a boundary was given).
    h0_basis : ndarray of shape (dim C^0, h0)
        Orthonormal basis of (relative) global sections, rows in C^0 order; zero on
        pinned coordinates.
    h1_basis : ndarray of shape (dim C^1, h1)
        Orthonormal basis of harmonic 1-cochains (``ker δ_Ωᵀ``), rows in C^1 order:
        one representative per class of H^1. Orientation: head minus tail.
    sigma_zero : float
        Largest singular value of δ counted as zero (0.0 when none).
    sigma_nonzero : float
        Smallest singular value counted as nonzero (inf when none).
    gap : float
        ``sigma_nonzero / sigma_zero`` (inf when nothing was near the threshold): how
        clearly the rank was decided.
    tol : float
        Largest threshold used (singular values <= tol count as zero).
    method : str
        "transport" (local systems decided along a spanning forest, see
        :mod:`graphsheaf.transport`), "dense", "sparse" (shift-invert Lanczos), "probe"
        (randomized kernel probing with conjugate gradients), "exact", "exact mod p", or
        a mix such as "dense+transport".
    dim_c0, dim_c1 : int
        Dimensions of C⁰ and C¹ (complex dimensions for a complex sheaf).
    n_pinned : int
        Coordinates pinned by ``relative_to``.
    field : int or None
        The prime p when computed over GF(p); None over ℝ (or ℚ with method="exact").
    """

    def __repr__(self):
        return short_repr(self)

    h0: int
    h1: int
    h0_basis: np.ndarray
    h1_basis: np.ndarray
    sigma_zero: float
    sigma_nonzero: float
    gap: float
    tol: float
    method: str
    dim_c0: int
    dim_c1: int
    n_pinned: int = 0
    field: int = None

    @property
    def euler_characteristic(self):
        """``h0 - h1``, which equals ``dim C^0_free - dim C^1``."""
        return self.h0 - self.h1


def cohomology(G, *, relative_to=None, tol=None, method="auto", state=None, bases=None,
               field=None, dim="dim", source_map="source_map", target_map="target_map",
               validate=True):
    """Compute H^0 and H^1 of a sheaf, optionally relative to pinned coordinates.

    Parameters
    ----------
    G : networkx.DiGraph or MultiDiGraph
        A sheaf.
    relative_to : boundary spec, optional
        Nodes, or a dict node -> value / {coordinate: value} / set of coordinates (see
        :func:`boundary_coordinates`). The pinned coordinates are dropped from C^0 (the
        relative complex: cochains vanishing on the boundary).
    tol : float, optional
        Absolute threshold on singular values of δ. By default it is relative to the
        scale of each component: ``max(m, n) * eps * sigma_max`` for the dense method and
        ``sqrt(max(m, n) * eps) * sigma_max`` for the sparse one, whose eigenvalue
        solver resolves singular values only down to about ``sqrt(eps) * sigma_max``.
    method : {"auto", "transport", "dense", "sparse", "exact"}
        "auto" decides components that are local systems (one stalk dimension d, every
        map an invertible d × d matrix, transports orthogonal -- constant sheaves, signed
        cycles, O(d) connections -- or trees) structurally, by transport along a
        spanning forest, when no bases are asked for; this is exact for identity and
        signed maps at any size. Other components get a dense SVD up to
        ``DENSE_LIMIT`` rows/columns (``DENSE_LIMIT_COUNTS`` without bases) and a
        sparse method above: shift-invert Lanczos on the smaller Gram matrix when its
        factorisation fits (RCM envelope ≤ :data:`graphsheaf.solvers.DIRECT_FILL_LIMIT`),
        randomized kernel probing otherwise (no factorisation; see
        :func:`graphsheaf.solvers.probe_kernel`). "exact" does Gaussian elimination over
        the rationals; every map must hold integers or rationals (``fractions.Fraction``
        entries, or floats, taken at their exact binary value). See
        :mod:`graphsheaf.exact`.
    state : dict, optional
        Assignment at which state-dependent maps are evaluated (one sample).
    bases : bool, optional
        Compute ``h0_basis`` and ``h1_basis`` (None, the default: only when
        ``dim C⁰ + dim C¹ <= AUTO_BASES_LIMIT``, where they cost little; False gives
        only the numbers and leaves the bases None).
    field : int, optional
        A prime p: compute over the finite field GF(p) instead of the reals, exactly
        (``method`` must be "auto" or "exact"). Maps must hold integers or rationals
        whose denominators p does not divide. Bases are then integer arrays with
        entries in [0, p) (kernel vectors; unit vectors completing the image for H¹).

    Warns
    -----
    RankDecisionWarning
        When a rank was decided close to its threshold (``gap`` < 100).

    Returns
    -------
    Cohomology

    Examples
    --------
    The constant sheaf on a cycle has one global section and one loop:

    >>> c = gs.cohomology(gs.constant_sheaf(nx.cycle_graph(5)))
    >>> c.h0, c.h1
    (1, 1)

    Pinning a node kills the global section:

    >>> gs.cohomology(gs.constant_sheaf(nx.cycle_graph(5)), relative_to=[0]).h0
    0

    A Möbius band on one vertex (δ = −2) is acyclic over ℚ but not over GF(2):

    >>> M = nx.DiGraph(); M.add_node(0, dim=1)
    >>> M.add_edge(0, 0, source_map=np.eye(1), target_map=-np.eye(1))
    >>> c2 = gs.cohomology(M, field=2)
    >>> (gs.cohomology(M).h0, gs.cohomology(M).h1), (c2.h0, c2.h1)
    ((0, 0), (1, 1))
    """
    if method not in ("auto", "transport", "dense", "sparse", "exact"):
        raise ValueError(f"method must be 'auto', 'transport', 'dense', 'sparse' or 'exact', "
                         f"got {method!r}")
    if tol is not None and not (np.isfinite(tol) and tol >= 0):
        raise SheafError(f"tol must be a finite number >= 0, got {tol!r}")
    table = edge_table(G, dim=dim, source_map=source_map, target_map=target_map,
                       validate=validate)
    boundary = boundary_coordinates(G, relative_to, table.nodelist, dim=dim)
    n0, n1 = int(table.node_start[-1]), int(table.edge_start[-1])
    free = np.ones(n0, dtype=bool)
    free[boundary.index] = False
    if bases is None:
        bases = n0 + n1 <= AUTO_BASES_LIMIT
    if field is not None:
        field = check_prime(field)
        if method not in ("auto", "exact"):
            raise SheafError(f"field={field} is computed exactly: method must be 'auto' or "
                             f"'exact', got {method!r}")
        method = "exact"
    if is_complex_sheaf(table):
        return _complex_cohomology(G, table, relative_to, tol, method, state, bases, field,
                                   dict(dim=dim, source_map=source_map, target_map=target_map))
    if method == "exact":
        h0, h1, B0, B1 = exact_cohomology(table, free, bases, source_map, target_map, field)
        return Cohomology(h0, h1, B0, B1, 0.0, np.inf, float("inf"), 0.0,
                          "exact" if field is None else f"exact mod {field}", n0, n1,
                          int(boundary.index.size), field)
    n_comp, labels = components(table)
    structural = [None] * n_comp
    if method == "transport" or (method == "auto" and not bases):
        if bases:
            raise SheafError("method='transport' gives dimensions only: pass bases=False")
        structural = forest_cohomology(table, uniform_maps(table), free, labels, n_comp)
    delta = None
    h0_cols, h1_cols = [], []
    h0 = h1 = 0
    sig_zero, sig_nonzero, max_tol = 0.0, np.inf, 0.0
    used = set()
    for c, rows, cols in _components(table, free, labels, n_comp):
        if structural[c] is not None:
            k0, k1, sz, snz, t = structural[c]
            h0, h1 = h0 + k0, h1 + k1
            sig_zero, sig_nonzero = max(sig_zero, sz), min(sig_nonzero, snz)
            max_tol = max(max_tol, t)
            used.add("transport")
            continue
        if method == "transport":
            raise SheafError(f"method='transport': the component of node {_a_node(table, labels, c)!r} "
                             "is not a local system with orthogonal transports (or a tree); use "
                             "method='auto'")
        if delta is None:
            delta = coboundary_of(G, table, state, dim, source_map, target_map)
        block = delta[rows][:, cols] if rows.size else sp.csr_array((0, cols.size))
        m, n = block.shape
        kind = method
        if kind == "auto":
            limit = DENSE_LIMIT if bases else DENSE_LIMIT_COUNTS
            kind = "dense" if max(m, n) <= limit else "sparse"
        if kind == "dense":
            used.add(kind)
            res = _dense_kernel(block.toarray(), tol, bases)
        else:
            groups = (blocks_of(cols, table.node_start), blocks_of(rows, table.edge_start))
            res = sparse_kernel(block, tol, bases, groups, used)
        k0, k1, N0, N1, sz, snz, t = res
        h0 += k0
        h1 += k1
        sig_zero, sig_nonzero, max_tol = max(sig_zero, sz), min(sig_nonzero, snz), max(max_tol, t)
        if bases:
            h0_cols.append((cols, N0))
            h1_cols.append((rows, N1))
    gap = _gap(sig_zero, sig_nonzero)
    if gap < CLOSE_GAP:
        warnings.warn(f"cohomology: a rank was decided close to its threshold (gap {gap:.3g}: "
                      f"smallest nonzero singular value {sig_nonzero:.3g}, largest zero "
                      f"{sig_zero:.3g}); the dimensions may change with tol",
                      RankDecisionWarning, stacklevel=2)
    return Cohomology(h0, h1, _scatter(h0_cols, n0, h0, bases), _scatter(h1_cols, n1, h1, bases),
                      float(sig_zero), float(sig_nonzero), gap,
                      float(max_tol), "+".join(sorted(used)) or "dense", n0, n1,
                      int(boundary.index.size))


def _complex_cohomology(G, table, relative_to, tol, method, state, bases, field, kw):
    """Cohomology over ℂ of a sheaf with complex maps, from its realification (every
    complex dimension is half the real one; see :mod:`graphsheaf.complex_sheaves`)."""
    if field is not None or method in ("exact", "transport"):
        raise SheafError(f"this sheaf has complex maps: method={method!r}"
                         f"{f' and field={field}' if field is not None else ''} need rational "
                         "ones; use method='auto', 'dense' or 'sparse'")
    R = realify(G, **kw)
    c = cohomology(R, relative_to=real_boundary(relative_to, G, kw["dim"]), tol=tol, method=method,
                   state=state, bases=bases, **kw)
    h0, h1 = c.h0 // 2, c.h1 // 2
    B0 = B1 = None
    if bases:
        B0 = complex_span(real_to_complex(c.h0_basis, table.dims), h0)
        B1 = complex_span(real_to_complex(c.h1_basis, table.edge_dims), h1)
    return Cohomology(h0, h1, B0, B1, c.sigma_zero, c.sigma_nonzero, c.gap, c.tol, c.method,
                      c.dim_c0 // 2, c.dim_c1 // 2, c.n_pinned // 2)


def _a_node(table, labels, c):
    return table.nodelist[int(np.flatnonzero(labels == c)[0])]


def _gap(sz, snz):
    if sz == 0:
        return float("inf")
    return float(snz / sz)


def _scatter(pieces, n, h, bases):
    if not bases:
        return None
    out = np.zeros((n, h))
    j = 0
    for idx, N in pieces:
        if N is not None and N.shape[1]:
            out[idx, j:j + N.shape[1]] = N
            j += N.shape[1]
    return out


def _components(table, free, labels, n_comp):
    """Yield (component, C^1 row indices, free C^0 column indices) per weakly connected
    component (``labels`` from :func:`graphsheaf.transport.components`)."""
    ns, es = table.node_start, table.edge_start
    comp_of_node = np.asarray(labels, dtype=np.int64)
    edge_comp = comp_of_node[table.tails] if table.tails.size else np.zeros(0, dtype=np.int64)
    coord_comp = np.repeat(comp_of_node, np.diff(ns))
    row_comp = np.repeat(edge_comp, np.diff(es))
    free_ids = np.flatnonzero(free)
    col_order = np.argsort(coord_comp[free], kind="stable")
    row_order = np.argsort(row_comp, kind="stable")
    col_bounds = np.searchsorted(coord_comp[free][col_order], np.arange(n_comp + 1))
    row_bounds = np.searchsorted(row_comp[row_order], np.arange(n_comp + 1))
    for c in range(n_comp):
        cols = free_ids[col_order[col_bounds[c]:col_bounds[c + 1]]]
        rows = row_order[row_bounds[c]:row_bounds[c + 1]]
        if cols.size or rows.size:
            yield c, rows, cols


def _dense_kernel(D, tol, bases):
    """Return (h0, h1, ker basis, coker basis, sigma_zero, sigma_nonzero, tol) of a dense block."""
    m, n = D.shape
    if m == 0 or n == 0:
        return (n, m, np.eye(n) if bases else None, np.eye(m) if bases else None,
                0.0, np.inf, 0.0 if tol is None else tol)
    U, s, Vt = la.svd(D, full_matrices=True, lapack_driver="gesdd")
    t = max(m, n) * np.finfo(float).eps * s[0] if tol is None else tol
    r = int(np.sum(s > t))
    sz = float(s[r]) if r < len(s) else 0.0
    snz = float(s[r - 1]) if r > 0 else np.inf
    N0 = Vt[r:].T if bases else None
    N1 = U[:, r:] if bases else None
    return n - r, m - r, N0, N1, sz, snz, float(t)


def blocks_of(ids, starts):
    """(compact block number, position inside the block) of coordinates ``ids``.

    When every block has one size d the owner is ``ids // d`` (no search), and for ids
    in increasing order the compact numbers are a running count (3·10⁶ free coordinates
    of 10⁶ stalks of dim 3: 0.40 s → 0.03 s)."""
    ids = np.asarray(ids)
    n = len(starts) - 1
    d = int(starts[1] - starts[0]) if n > 0 else 0
    if d > 0 and int(starts[-1]) == n * d and int(starts[0]) == 0 \
            and np.array_equal(starts, np.arange(0, n * d + 1, d)):
        owner, local = np.divmod(ids, d)
    else:
        owner = np.searchsorted(starts, ids, side="right") - 1
        local = ids - starts[owner]
    return consecutive_numbers(owner), local


def sparse_kernel(D, tol, bases, groups=None, used=None):
    """Kernel and cokernel of a large sparse block via shift-invert Lanczos.

    The rank is counted on the smaller Gram matrix (δδᵀ when δ is wide, δᵀδ when it
    is tall), whose kernel is the small one; bases of the other side's kernel come
    from its lowest eigenvectors, densely when that kernel is a large fraction. With
    ``groups`` (stalk blocks of columns and rows), a Gram matrix whose factorisation
    would not fit is handled by randomized probing instead. ``used`` (a set) receives
    "sparse" or "probe".
    """
    used = set() if used is None else used
    m, n = D.shape
    D = sp.csr_array(D)
    smax = _norm_estimate(D)
    if smax == 0:
        used.add("sparse")
        return (n, m, np.eye(n) if bases else None, np.eye(m) if bases else None, 0.0, np.inf, 0.0)
    t = np.sqrt(max(m, n) * np.finfo(float).eps) * smax if tol is None else tol
    if groups is not None:
        small_gram = D @ D.T if m <= n else D.T @ D
        if envelope_size(small_gram) > DIRECT_FILL_LIMIT:  # a factorisation would not fit
            used.add("probe")
            return _probed_kernel(D, t, bases, groups)
    used.add("sparse")
    if m <= n:
        k1, N1, sz, snz = _small_singular(D @ D.T, t, need_vectors=bases)
        rank = m - k1
        k0 = n - rank
        N0 = _kernel_vectors(D.T @ D, k0) if bases else None
    else:
        k0, N0, sz, snz = _small_singular(D.T @ D, t, need_vectors=bases)
        rank = n - k0
        k1 = m - rank
        N1 = _kernel_vectors(D @ D.T, k1) if bases else None
    return k0, k1, N0, N1, sz, snz, float(t)


def _probed_kernel(D, t, bases, groups):
    """Kernel and cokernel dimensions (and bases) of D by randomized probing (no factorisation)."""
    m, n = D.shape
    col_groups, row_groups = groups
    sides = [(D, col_groups, n), (sp.csr_array(D.T), row_groups, m)]  # ker D, then ker Dᵀ
    small = 1 if m <= n else 0  # probe the smaller Gram matrix for the counts
    X, g, dim = sides[small]
    k_small, N_small, sz, snz, _ = probe_kernel(X, *g, t, need_vectors=bases)
    rank = dim - k_small
    dim2 = sides[1 - small][2]
    k_big = dim2 - rank
    N_big = None
    if bases:
        if k_big * dim2 > MAX_DENSE_BASIS:
            raise SheafError(f"a cohomology basis of {k_big} vectors of length {dim2} is too large "
                             "to compute densely; pass bases=False to get the dimensions only")
        # ker of the other side is ker Xᵀ: project random vectors with solves on XᵀX
        N_big = cokernel_basis(X, *g, k_big)
    k0, k1 = (k_small, k_big) if small == 0 else (k_big, k_small)
    N0, N1 = (N_small, N_big) if small == 0 else (N_big, N_small)
    return k0, k1, N0, N1, sz, snz, float(t)


#: a kernel basis larger than this many dense entries is refused (use bases=False)
MAX_DENSE_BASIS = 4 * 10**8


def _kernel_vectors(M, k):
    """Orthonormal eigenvectors of the k smallest eigenvalues of the PSD matrix M."""
    n = M.shape[0]
    if k == 0:
        return np.zeros((n, 0))
    if k <= min(200, n // 4):
        shift = -1e-10 * max(float(spla.norm(M, 1)), 1e-300)
        w, V = spla.eigsh(M.tocsc(), k=k, sigma=shift, which="LM",
                          v0=np.random.default_rng(0).standard_normal(n))
        return V[:, np.argsort(w)]
    if n * n > MAX_DENSE_BASIS:
        raise SheafError(f"a basis of a {k}-dimensional kernel in dimension {n} is too large "
                         "to compute densely; pass bases=False to get the dimensions only")
    return la.eigh(M.toarray())[1][:, :k]


def _norm_estimate(D):
    """σ_max(D) to a few percent -- it only sets the scale of the threshold.

    A handful of power iterations on DᵀD from a random start (a Lanczos solve to full
    accuracy took 210k ARPACK iterations on a path, whose top singular values cluster);
    never above the bound sqrt(‖D‖₁ ‖D‖_∞).
    """
    if D.nnz == 0:
        return 0.0
    absD = abs(D)
    bound = float(np.sqrt(absD.sum(axis=0).max() * absD.sum(axis=1).max()))
    x = np.random.default_rng(0).standard_normal(D.shape[1])
    est = 0.0
    for _ in range(30):
        y = D.T @ (D @ x)
        ny = float(np.linalg.norm(y))
        if ny == 0:
            break
        new = np.sqrt(ny / float(np.linalg.norm(x)))
        x = y / ny
        if abs(new - est) <= 1e-3 * new:
            est = new
            break
        est = new
    return min(max(est, 0.0), bound) if est > 0 else bound


def _small_singular(M, t, need_vectors):
    """Count eigenvalues of the PSD matrix M = XᵀX below t² (singular values of X below t).

    Returns (count, eigenvectors or None, sigma_zero, sigma_nonzero).
    """
    n = M.shape[0]
    if n <= 200:
        return _small_singular_dense(M, t, need_vectors)
    shift = -max(t * t, 1e-300) * 10.0
    k = min(n - 2, 8)
    v0 = np.random.default_rng(0).standard_normal(n)
    A = M.tocsc()
    while True:
        w, V = spla.eigsh(A, k=k, sigma=shift, which="LM", v0=v0)
        order = np.argsort(w)
        w, V = w[order], V[:, order]
        s = np.sqrt(np.clip(w, 0, None))
        count = int(np.sum(s <= t))
        if count < k:
            return (count, V[:, :count] if need_vectors else None,
                    float(s[count - 1]) if count else 0.0, float(s[count]))
        if k >= n - 2 or k >= 400:  # a large kernel: Lanczos is the wrong tool, go dense
            return _small_singular_dense(M, t, need_vectors)
        k = min(n - 2, 2 * k)


def _small_singular_dense(M, t, need_vectors):
    w, V = la.eigh(M.toarray())
    s = np.sqrt(np.clip(w, 0, None))
    k = int(np.sum(s <= t))
    return k, V[:, :k] if need_vectors else None, float(s[k - 1]) if k else 0.0, \
        float(s[k]) if k < len(s) else np.inf
