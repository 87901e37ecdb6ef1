"""Solving the normal equations δ_Ωᵀδ_Ω x = δ_Ωᵀ r of a harmonic extension at scale.

Two large-problem solvers, and the rule that picks between them:

* a direct sparse LU factorisation of L[Ω,Ω] (exact to rounding, reusable for every
  right-hand side) when its fill fits in memory;
* preconditioned conjugate gradients that never form L[Ω,Ω]: each iteration applies δ_Ω
  and then δ_Ωᵀ (two sparse products), preconditioned by the inverses of the stalk
  blocks on the diagonal of L[Ω,Ω] (block Jacobi). Memory is the coboundary plus a few
  vectors per right-hand side and one d×d block per node.

The fill of a factorisation is estimated from the envelope of the node graph in
reverse Cuthill–McKee order (the factor of a matrix fits in its envelope), scaled by
the stalk dimensions. The estimate is an upper bound for a banded factorisation and is
deliberately conservative: graphs without a narrow band (random graphs, expanders)
go to conjugate gradients, whose iteration count depends on the conditioning and not on
the fill.
"""

import inspect

import numpy as np
import scipy.sparse as sp
from scipy.linalg.blas import daxpy
from scipy.sparse.csgraph import reverse_cuthill_mckee

from ._threads import available_workers, row_ranges, run_all

__all__ = ["DIRECT_FILL_LIMIT", "FILL_RATIO", "THREADED_NNZ", "BlockJacobi", "accumulate_product",
           "available_workers", "cokernel_basis", "consecutive_numbers",
           "direct_fill_limit", "envelope_size", "factor_fill_estimate", "jacobi", "node_graph",
           "pcg",
           "probe_kernel"]

#: estimated factor entries above which "auto" prefers conjugate gradients (~0.5 GB of LU)
DIRECT_FILL_LIMIT = 3 * 10**7


#: stored entries from which :func:`accumulate_product` splits a product over threads
THREADED_NNZ = 2**20


#: a factorisation is preferred only while its estimated fill is at most this many times
#: the nonzeros of L[Ω,Ω]; beyond that, conjugate gradients win even when LU fits
FILL_RATIO = 20


def direct_fill_limit(table, free_counts):
    """Largest estimated fill for which "auto" factorises: min(DIRECT_FILL_LIMIT, FILL_RATIO × nnz)."""
    f = free_counts.astype(np.int64)
    nnz = int(np.sum(f * f) + 2 * np.sum(f[table.tails] * f[table.heads]))
    return min(DIRECT_FILL_LIMIT, FILL_RATIO * nnz)


def node_graph(table):
    """The node graph of an edge table as a symmetric CSR pattern (both directions of every
    edge), built once per table and kept in ``table.derived``."""
    if "node_graph" not in table.derived:
        n = len(table.nodelist)
        index = np.int32 if n < 2**31 else np.int64  # (csgraph works on 32-bit indices)
        u, v = table.tails.astype(index), table.heads.astype(index)
        # through COO: its conversion sums the duplicates (multigraphs) in one counting
        # sort, without the constructor's second canonicalising pass (0.19 s against 0.32 s
        # on 10⁶ nodes / 3·10⁶ edges)
        table.derived["node_graph"] = sp.coo_array(
            (np.ones(2 * u.size, dtype=np.int8), (np.concatenate([u, v]), np.concatenate([v, u]))),
            shape=(n, n)).tocsr()
    return table.derived["node_graph"]


def factor_fill_estimate(table, free_counts):
    """Estimated entries of a factor of L[Ω,Ω] from the RCM envelope of the node graph.

    Parameters
    ----------
    table : edge table of the sheaf (tails, heads, node dims)
    free_counts : array (n_nodes,)
        Number of free coordinates of each node.

    Returns
    -------
    int
        Σ over nodes of (free coordinates) × (free coordinates of the nodes between its
        furthest earlier neighbour with free coordinates and itself, in the RCM order of
        the whole node graph): the envelope of L[Ω,Ω] in coordinates, in that order.
    """
    n = len(free_counts)
    A = node_graph(table)  # shared with graph_kind's BFS (the pinned nodes simply weigh 0)
    perm = reverse_cuthill_mckee(A, symmetric_mode=True)
    pos = np.empty(n, dtype=np.int64)
    pos[perm] = np.arange(n)
    # first (lowest RCM position) neighbour with free coordinates of each node, itself when
    # it has none earlier: one minimum per CSR row
    first = pos.copy()
    rows = np.flatnonzero(np.diff(A.indptr))
    if rows.size:
        neighbour = np.where(free_counts > 0, pos, n)[A.indices]
        first[rows] = np.minimum(first[rows], np.minimum.reduceat(neighbour, A.indptr[rows]))
    counts_in_order = free_counts[perm].astype(np.int64)
    before = np.r_[0, np.cumsum(counts_in_order)]  # free coordinates before each RCM position
    width = before[pos + 1] - before[first]  # coordinates from the first neighbour to the node
    return int(np.sum(free_counts * width))


def envelope_size(M):
    """Entries in the envelope of the symmetric sparse matrix M after reverse Cuthill–McKee
    reordering: an upper bound on the fill of a banded factorisation of M.

    Examples
    --------
    A path is a band of width one; a complete graph fills its whole lower triangle:

    >>> from graphsheaf.solvers import envelope_size
    >>> envelope_size(nx.laplacian_matrix(nx.path_graph(100)))
    199
    >>> envelope_size(nx.laplacian_matrix(nx.complete_graph(10)))
    55
    """
    M = sp.csr_array(M)
    n = M.shape[0]
    if n == 0:
        return 0
    perm = reverse_cuthill_mckee(M, symmetric_mode=True)
    P = M[perm][:, perm].tocsr()
    rows = np.arange(n)
    first = rows.copy()
    nonempty = np.flatnonzero(np.diff(P.indptr))
    if nonempty.size:
        first[nonempty] = np.minimum(rows[nonempty],
                                     np.minimum.reduceat(P.indices, P.indptr[nonempty]))
    return int(np.sum(rows - first + 1))


def probe_kernel(X, node_of, local_of, threshold, *, need_vectors=True, start=8, rtol=1e-10,
                 maxiter=None, rng=0):
    """Kernel of XᵀX (singular values of X below ``threshold``) by randomized probing.

    For random z, conjugate gradients on XᵀX y = XᵀX z (block-Jacobi preconditioned,
    matrix-free) converge to a y with z - y in the kernel (the step is repeated once when
    that converges, shrinking the part of z - y outside the kernel); p probes span min(p, h)
    kernel directions. A Rayleigh–Ritz step on the span decides which directions have
    ‖X q‖ ≤ threshold, and p doubles until some probe comes back without a kernel
    direction. Nothing is factored: the cost is iterations × sparse products.

    Returns
    -------
    count, vectors (n, count) or None, sigma_zero, sigma_nonzero, iterations
        ``sigma_nonzero`` is the smallest Ritz value above the threshold, an upper
        bound on the smallest nonzero singular value (inf when none was seen).

    Examples
    --------
    The coboundary of the constant sheaf on two disjoint paths has a 2-dimensional
    kernel (one constant per component):

    >>> from graphsheaf.solvers import probe_kernel
    >>> G = gs.constant_sheaf(nx.disjoint_union(nx.path_graph(30), nx.path_graph(20)))
    >>> D = gs.coboundary_matrix(G)
    >>> count, K, *_ = probe_kernel(D, np.arange(50), np.zeros(50, dtype=int), 1e-6)
    >>> count, bool(np.abs(D @ K).max() < 1e-8)
    (2, True)
    """
    X = sp.csr_array(X)
    n = X.shape[1]
    XT = X.T
    gen = np.random.default_rng(rng)

    def gram(P):
        return XT @ (X @ P)

    precond = BlockJacobi(X, node_of, local_of)
    K = np.zeros((n, 0))
    p, its_total = min(start, n), 0
    while True:
        new = gen.standard_normal((n, p - K.shape[1]))
        for attempt in range(2):  # z -> z - (XᵀX)⁺XᵀX z; a second pass cleans rounding
            Y, its, relres = pcg(gram, gram(new), precond, rtol=rtol, maxiter=maxiter)
            its_total += its
            if attempt and not relres.max() <= np.sqrt(rtol):
                break  # rounding-level right-hand sides can make the refinement diverge
            new -= Y
        K = np.column_stack([K, new])
        U, s, _ = np.linalg.svd(K, full_matrices=False)
        cand = U[:, s > max(s[0], np.finfo(float).tiny) * 1e-13] if s.size else U
        XU = X @ cand
        w, V = np.linalg.eigh(XU.T @ XU)
        sig = np.sqrt(np.clip(w, 0.0, None))
        count = int(np.sum(sig <= threshold))
        if count < p or p >= n:
            vecs = cand @ V[:, :count] if need_vectors else None
            sz = float(sig[count - 1]) if count else 0.0
            snz = float(sig[count]) if count < len(sig) else np.inf
            return count, vecs, sz, snz, its_total
        p = min(n, 2 * p)


def cokernel_basis(X, node_of, local_of, k, *, rtol=1e-10, maxiter=None, rng=0):
    """Orthonormal basis of ker Xᵀ, of known dimension k, by projecting random vectors.

    w - X y with XᵀX y = Xᵀ w is the orthogonal projection of w onto ker Xᵀ; the solves
    use the Gram matrix XᵀX (block-Jacobi PCG), whose own kernel is the small side, so
    they converge where probing the large kernel directly would stagnate.
    (A second projection pass is not made: its right-hand side is at rounding level and
    not exactly consistent, and conjugate gradients diverge on it.)
    """
    X = sp.csr_array(X)
    m = X.shape[0]
    if k == 0:
        return np.zeros((m, 0))
    XT = X.T
    precond = BlockJacobi(X, node_of, local_of)
    W = np.random.default_rng(rng).standard_normal((m, min(m, k + 8)))
    Y = pcg(lambda P: XT @ (X @ P), XT @ W, precond, rtol=rtol, maxiter=maxiter)[0]
    W -= X @ Y
    U = np.linalg.svd(W, full_matrices=False)[0]
    return U[:, :k]


def consecutive_numbers(labels):
    """Number the distinct ``labels`` 0, 1, ... in increasing order (``np.unique``'s
    inverse): a running count of changes when ``labels`` is sorted, as block owners of
    coordinates in node order are (10 ms against 0.28 s for ``np.unique`` on 3·10⁶
    coordinates).

    Examples
    --------
    >>> import numpy as np
    >>> from graphsheaf.solvers import consecutive_numbers
    >>> consecutive_numbers(np.array([3, 3, 7, 9, 9])).tolist()
    [0, 0, 1, 2, 2]
    >>> consecutive_numbers(np.array([9, 3, 9])).tolist()
    [1, 0, 1]
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(0, dtype=np.int64)
    if np.any(labels[1:] < labels[:-1]):
        return np.unique(labels, return_inverse=True)[1].ravel()
    out = np.empty(labels.size, dtype=np.int64)
    out[0] = 0
    np.cumsum(labels[1:] != labels[:-1], out=out[1:])
    return out


def _diagonal_blocks(blocks):
    """True when every (n, d, d) block is diagonal up to 10⁻¹² of its largest diagonal entry
    in every row (NaN is not). The entries are laid out (d, d, n) first, so the sums run
    over whole columns of n: NumPy's reductions over a trailing axis of 3 cost 0.25 s on
    10⁶ blocks, this 0.05 s."""
    n, d = blocks.shape[:2]
    A = np.abs(blocks.reshape(n, d * d).T, order="C").reshape(d, d, n)  # A[i, j]: |entry (i, j)|
    diag = A[np.arange(d), np.arange(d)]
    return bool(np.all(A.sum(axis=1) - diag <= 1e-12 * diag.max(axis=0, initial=0.0)))


class BlockJacobi:
    """Inverse of the node-block diagonal of L[Ω,Ω] = δ_Ωᵀδ_Ω, applied to (n_Ω, k) blocks.

    The (c, c') entry of node v's block is the inner product of the columns of δ_Ω for
    coordinates c and c' of v. Inverting whole stalk blocks (not just their diagonal)
    removes the ill-conditioning that sits inside a node: random restriction maps are
    often nearly singular, and plain Jacobi then needs thousands of iterations.

    Parameters
    ----------
    D_f : sparse (m, n_Ω)
        δ restricted to the free coordinates.
    node_of : array (n_Ω,)
        Node position of each free coordinate.
    local_of : array (n_Ω,)
        Its index inside the node's stalk.
    """

    def __init__(self, D_f, node_of, local_of):
        n_f = D_f.shape[1]
        node_of = consecutive_numbers(node_of)
        n_nodes = int(node_of[-1]) + 1 if n_f else 0
        d = int(local_of.max()) + 1 if n_f else 0
        self.node_of, self.local_of, self.shape = node_of, local_of, (n_nodes, d)
        # whole stalks in node order: M⁻¹R is a reshape and one stacked product
        self.whole = n_f == n_nodes * d and np.array_equal(local_of, np.tile(np.arange(d), n_nodes))
        D = sp.csr_array(D_f)
        D.sort_indices()
        blocks = np.zeros((n_nodes, d, d))
        groups = self._row_blocks(D, node_of, local_of, d) if self.whole else None
        if groups is not None:  # each row meets a node in all d coordinates: sum outer products
            node, vals = groups
            for c in range(d):
                for c2 in range(c, d):
                    v = np.bincount(node, weights=vals[:, c] * vals[:, c2], minlength=n_nodes)
                    blocks[:, c, c2] = blocks[:, c2, c] = v
        else:
            # columns of δ_Ω for coordinate c of every node, as an (m, n_nodes) matrix
            per_coord = []
            for c in range(d):
                sel = np.flatnonzero(local_of == c)
                pick = sp.csr_array((np.ones(len(sel)), (sel, node_of[sel])), shape=(n_f, n_nodes))
                per_coord.append(D @ pick)
            for c in range(d):
                for c2 in range(c, d):
                    v = np.asarray(per_coord[c].multiply(per_coord[c2]).sum(axis=0)).ravel()
                    blocks[:, c, c2] = blocks[:, c2, c] = v
        self._invert(blocks)

    @classmethod
    def from_matrix(cls, L, node_of, local_of, *, blocks=None):
        """The same preconditioner read off an assembled L[Ω,Ω] (its node-diagonal blocks),
        or from those blocks (n_nodes, d, d) when given (whole stalks of one dimension)."""
        self = cls.__new__(cls)
        n_f = L.shape[0]
        node_of = consecutive_numbers(node_of)
        n_nodes = int(node_of.max()) + 1 if n_f else 0
        d = int(local_of.max()) + 1 if n_f else 0
        self.node_of, self.local_of, self.shape = node_of, local_of, (n_nodes, d)
        self.whole = n_f == n_nodes * d and np.array_equal(local_of, np.tile(np.arange(d), n_nodes))
        if blocks is not None:
            if not self.whole or blocks.shape != (n_nodes, d, d):
                raise ValueError(f"diagonal blocks of shape {blocks.shape} do not match whole "
                                 f"stalks of {n_nodes} nodes of dim {d}")
            blocks = np.array(blocks, dtype=float)  # (inverted in place below)
        elif self.whole:  # whole stalks in node order: block (i, j) lies on L's diagonal j - i
            L = sp.csr_array(L)
            blocks = np.zeros((n_nodes, d, d))
            for k in range(-(d - 1), d):
                diag = L.diagonal(k)  # diag[r] = L[r, r + k] (or L[r - k, r] below)
                for i in range(max(0, -k), min(d, d - k)):
                    start = i if k >= 0 else i + k
                    blocks[:, i, i + k] = diag[start::d][:n_nodes]
        else:
            C = sp.coo_array(L)
            keep = node_of[C.row] == node_of[C.col]
            r, c = C.row[keep], C.col[keep]
            flat = (node_of[r] * d + local_of[r]) * d + local_of[c]  # (node, i, j) as one index
            blocks = np.bincount(flat, weights=C.data[keep], minlength=n_nodes * d * d)
            blocks = blocks.reshape(n_nodes, d, d)
        self._invert(blocks)
        return self

    def _invert(self, blocks):
        node_of, local_of = self.node_of, self.local_of
        n_nodes, d = self.shape
        present = np.zeros((n_nodes, d), dtype=bool)
        present[node_of, local_of] = True
        idx = np.nonzero(~present)
        blocks[idx[0], idx[1], idx[1]] = 1.0  # padding coordinates of smaller stalks
        diag = np.diagonal(blocks, axis1=1, axis2=2)
        self.scale = None
        if self.whole and _diagonal_blocks(blocks):
            # diagonal blocks (orthogonal maps give deg·I): one scaling per coordinate, no
            # eigendecomposition and no stacked d×d product at every iteration
            top = np.abs(diag.T).max(axis=0)[:, None]  # (d passes over n, not n over d)
            floor = np.maximum(top * 1e-12, np.finfo(float).tiny)
            safe = np.where(diag > floor, diag, np.where(top > 0, floor, 1.0))
            self.scale = (1.0 / safe).reshape(-1, 1)
            self.inverse = None
            return
        w, V = np.linalg.eigh(blocks)
        floor = np.maximum(w[:, -1:] * 1e-12, np.finfo(float).tiny)
        w = np.where(w > floor, w, np.where(w[:, -1:] > 0, floor, 1.0))
        self.inverse = np.einsum("nij,nj,nkj->nik", V, 1.0 / w, V)

    @staticmethod
    def _row_blocks(D, node_of, local_of, d):
        """(node, values (groups, d)) when the nonzeros of every row come in whole node
        blocks, coordinates 0..d-1 in order (stored zeros included); else None."""
        # (called for whole stalks in node order: column c is coordinate c % d of node c // d)
        nnz = D.indptr[-1]
        if nnz % d or np.any(np.diff(D.indptr) % d):
            return None
        cols = D.indices.reshape(-1, d)
        first = cols[:, 0]
        if np.any(first % d) or np.any(cols[:, 1:] - first[:, None] != np.arange(1, d)):
            return None
        return first // d, D.data.reshape(-1, d)

    def __call__(self, R, out=None):
        """M⁻¹R for R of shape (n_Ω, k), written into ``out`` when given."""
        n_nodes, d = self.shape
        k = R.shape[1]
        if self.scale is not None:
            return np.multiply(self.scale, R, out=out)
        if self.whole:
            if out is not None:
                np.matmul(self.inverse, R.reshape(n_nodes, d, k), out=out.reshape(n_nodes, d, k))
                return out
            return (self.inverse @ R.reshape(n_nodes, d, k)).reshape(-1, k)
        full = np.zeros((n_nodes, d, k))
        full[self.node_of, self.local_of] = R
        Z = (self.inverse @ full)[self.node_of, self.local_of]
        if out is None:
            return Z
        np.copyto(out, Z)
        return out


def accumulate_product(A, transpose=False, *, workers=1):
    """Return ``f(x, y)`` doing ``y += A @ x`` (or ``Aᵀ @ x``) in place; x is (n,) or (n, k).

    SciPy's compiled sparse kernels write into ``y`` directly, so an iteration needs no
    temporaries (on a 10⁶-node sheaf each would be tens of megabytes, faulted in anew);
    if they are unavailable the public product is used (one temporary per call).
    ``transpose=True`` applies Aᵀ through the same arrays (A's CSR is Aᵀ's CSC).

    With ``workers`` > 1 a large product (at least :data:`THREADED_NNZ` stored entries, not
    transposed) is split into that many row ranges of about equal nonzeros, run in threads:
    SciPy's kernels release the GIL, and each range writes its own rows of ``y``. A
    3·10⁶-row product with 6·10⁷ entries takes 0.106 s on two threads against 0.226 s on
    one on the 2-core benchmark machine (memory-bound; ``benchmarks/README.md``).

    Examples
    --------
    >>> A = sp.csr_array(np.array([[1.0, 2.0], [0.0, 3.0], [4.0, 0.0]]))
    >>> y = np.ones(3); accumulate_product(A)(np.array([1.0, 1.0]), y); y
    array([4., 4., 5.])
    >>> z = np.zeros(2); accumulate_product(A, transpose=True)(np.ones(3), z); z
    array([5., 5.])
    """
    A = sp.csr_array(A)
    A.sort_indices()
    try:
        from scipy.sparse import _sparsetools as kernels
        kernels.csr_matvec, kernels.csr_matvecs, kernels.csc_matvec, kernels.csc_matvecs  # noqa: B018
    except (ImportError, AttributeError):  # pragma: no cover - older or newer SciPy layouts
        op = A.T if transpose else A

        def product(x, y):
            np.add(y, op @ x, out=y)
        return product
    n_row, n_col = A.shape
    indptr, indices, data = A.indptr, A.indices, A.data
    one, many = (kernels.csc_matvec, kernels.csc_matvecs) if transpose else \
        (kernels.csr_matvec, kernels.csr_matvecs)
    rows, cols = (n_col, n_row) if transpose else (n_row, n_col)
    workers = max(1, int(workers))
    # ranges of output rows (first, last, and their slices of the arrays): the whole product
    # as one, or with workers > 1 a large CSR product in ranges of about equal nonzeros
    parts = [(0, rows, indptr, indices, data)]
    if workers > 1 and not transpose and A.nnz >= THREADED_NNZ and n_row >= workers:
        bounds = row_ranges(indptr, workers)
        parts = [(int(r0), int(r1), indptr[r0:r1 + 1] - indptr[r0],
                  indices[indptr[r0]:indptr[r1]], data[indptr[r0]:indptr[r1]])
                 for r0, r1 in zip(bounds[:-1], bounds[1:])]

    def run(part, x, y):
        r0, r1, ptr, idx, val = part
        if x.ndim == 1 or x.shape[1] == 1:  # (the one-vector kernel is ~15% faster)
            one(r1 - r0, cols, ptr, idx, val, x.ravel(), y[r0:r1].ravel())
        else:
            many(r1 - r0, cols, x.shape[1], ptr, idx, val, x.ravel(), y[r0:r1].ravel())

    def product(x, y):
        if not y.flags.c_contiguous:  # the kernels write through a flat view of y
            z = np.ascontiguousarray(y)
            product(x, z)
            y[...] = z
            return
        x = np.ascontiguousarray(x)
        if len(parts) == 1:  # (small products run in hot loops: no dispatch)
            run(parts[0], x, y)
        else:
            run_all(lambda part: run(part, x, y), parts)
    return product


def jacobi(diag):
    """Diagonal (Jacobi) preconditioner from the diagonal of A; zeros act as ones.
    Returns ``f(R, out=None)``."""
    inv = np.where(diag > 0, 1.0 / np.where(diag > 0, diag, 1.0), 1.0)[:, None]
    return lambda R, out=None: np.multiply(inv, R, out=out)


def _parameters(f):
    """The names of a callable's parameters (empty when they cannot be read)."""
    try:
        return inspect.signature(f).parameters
    except (TypeError, ValueError):
        return {}


def _coldot(A, B):
    """Column-wise dot products of two (n, k) arrays (a BLAS dot per column for small k)."""
    if A.shape[1] <= 8:
        return np.array([A[:, j] @ B[:, j] for j in range(A.shape[1])])
    return np.einsum("ij,ij->j", A, B)


def pcg(matvec, B, precond=None, *, rtol=1e-10, maxiter=None, product_out=None):
    """Preconditioned conjugate gradients on all columns of B at once.

    Parameters
    ----------
    matvec : callable
        X (n, k) -> A X for a symmetric positive (semi)definite A (it may return the
        same buffer every call: the result is used before the next call).
    B : array (n, k)
    precond : callable, optional
        R (n, k) -> M⁻¹R for a symmetric positive definite M ≈ A (:class:`BlockJacobi`,
        :func:`jacobi`); none by default. One with an ``out`` parameter (as those two)
        writes into one buffer reused every iteration.
    rtol : float
        Stop a column when ‖b - A x‖ ≤ rtol ‖b‖.
    maxiter : int, optional
        Defaults to max(1000, 10 n^{1/2}).
    product_out : array (n, k), optional
        Receives A X at the returned X (the product that the final residual check computes
        anyway: callers that need A X, e.g. for an energy, save one product).

    Returns
    -------
    X : array (n, k)
    iterations : int
    relres : array (k,)
        Final relative residual of each column.

    Examples
    --------
    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> X, its, res = pcg(lambda X: A @ X, np.eye(2), jacobi(np.diag(A)))
    >>> np.allclose(A @ X, np.eye(2)), bool(res.max() < 1e-10)
    (True, True)
    """
    n, k = B.shape
    if maxiter is None:
        maxiter = max(1000, int(10 * np.sqrt(n)))
    if precond is None:
        precond = np.copy
    X = np.zeros((n, k))
    R = B.copy()
    tmp = np.empty((n, k))  # every update in place: no vector-sized temporary per iteration
    bnorm = np.sqrt(_coldot(B, B))
    target = rtol * np.where(bnorm > 0, bnorm, 1.0)
    Z = precond(R)
    P = np.array(Z, order="C")
    rz = _coldot(R, Z)
    # a preconditioner taking ``out`` writes M⁻¹R into one buffer (no fresh vector-sized
    # array, faulted in anew, every iteration); one column moves X and R by BLAS axpys,
    # one pass each instead of a scaling and an addition (3·10⁶ unknowns: 18-24 ms of
    # vector work an iteration before, about 14 ms after, against 103 ms for the product)
    into = "out" in _parameters(precond)
    if into and (not (Z.flags.c_contiguous and Z.flags.writeable)
                 or np.may_share_memory(Z, R)):
        Z = np.array(Z, order="C")  # (a buffer of its own to write into)
    axpy = k == 1 and all(a.flags.c_contiguous and a.dtype == np.float64 for a in (X, R, P))
    x, r, p = X.reshape(-1), R.reshape(-1), P.reshape(-1)
    active = bnorm > 0
    its = 0
    while its < maxiter and active.any():
        Q = matvec(P)
        pq = _coldot(P, Q)
        alpha = np.where(active & (pq > 0), rz / np.where(pq > 0, pq, 1.0), 0.0)
        if axpy and Q.flags.c_contiguous and Q.dtype == np.float64:
            daxpy(p, x, a=float(alpha[0]))
            daxpy(Q.reshape(-1), r, a=-float(alpha[0]))
        else:
            np.multiply(P, alpha, out=tmp)
            X += tmp
            np.multiply(Q, alpha, out=tmp)
            R -= tmp
        its += 1
        res = np.sqrt(_coldot(R, R))
        active &= (res > target) & (pq > 0)
        Z = precond(R, out=Z) if into else precond(R)
        rz_new = _coldot(R, Z)
        beta = np.where(rz > 0, rz_new / np.where(rz > 0, rz, 1.0), 0.0)
        P *= beta
        P += Z
        rz = rz_new
    AX = matvec(X)
    if product_out is not None:
        np.copyto(product_out, AX)
    relres = np.linalg.norm(B - AX, axis=0) / np.where(bnorm > 0, bnorm, 1.0)
    return X, its, relres
