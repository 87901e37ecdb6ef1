"""Assembly of the sheaf Laplacian of uniform stalks from d×d blocks, straight into CSR.

Every stalk of dimension d and every map a d-column matrix: the diagonal blocks are summed
per node, the off-diagonal ones per node pair, and one block-sparse array is converted to
CSR -- or, for a harmonic extension with whole stalks pinned, the three blocks
``L[Ω,Ω]``, ``L[Ω,U]``, ``L[U,U]`` are assembled directly.
"""

import numpy as np
import scipy.sparse as sp

from ._threads import row_ranges, run_all, split_rows

#: stored entries from which the BSR-to-CSR conversion is split over threads
THREADED_NNZ = 2**20
#: blocks per chunk of the products XᵀX (the copy of a chunk stays in cache)
_CHUNK = 1 << 14

__all__ = ["block_csr", "index_type", "uniform_laplacian"]


def index_type(*extents):
    """int32 when every extent fits, else int64."""
    return np.int32 if max(extents, default=0) < 2**31 - 1 else np.int64


def uniform_laplacian(table, A, B, split=None, workers=1):
    """L for stalks all of dim d and maps (E, r, d): d×d blocks summed per node pair, then
    one block-sparse (BSR) array converted to CSR, so the work and memory stay near the
    size of the nonzeros. With ``split`` (free nodes): the three blocks of whole stalks
    ``L[Ω,Ω], L[Ω,U], L[U,U]`` and the free nodes' d×d diagonal blocks (n_free, d, d)."""
    E, _, d = A.shape
    n = len(table.dims)
    t, h = table.tails, table.heads
    itype = index_type(n * d, E)
    # Every block that can land in L, as rows of one array (no copies later): the n
    # diagonal blocks, then -AᵀB at (t, h) and -BᵀA at (h, t) for every edge. Batched
    # matmul is ~3x faster than einsum on millions of small blocks.
    src = np.empty((n + 2 * E, d * d))
    diag = src[:n]
    AB = src[n:n + E].reshape(E, d, d)
    BA = src[n + E:].reshape(E, d, d)
    # diagonal blocks: Σ AᵀA over edges leaving the node + Σ BᵀB over edges entering it
    # (AB and BA serve as scratch for AᵀA and BᵀB first)
    def products(X, Y, out):  # out = Xᵀ Y per edge, edges split over the workers
        # For Xᵀ X NumPy spots the two operands as one buffer and its transpose and calls
        # BLAS syrk once per 3×3 block, 4x slower than its own small-matrix loop (and slower
        # again in threads, which contend inside OpenBLAS): a copy makes them two buffers.
        # The copy is made chunk by chunk into one small reused buffer: a copy of the whole
        # part faults in fresh pages (3·10⁶ blocks on two threads: 0.26-0.62 s with the
        # whole copy, 0.08 s chunked, the same as Aᵀ B)
        def part(s):
            if Y is not X:
                np.matmul(X[s].transpose(0, 2, 1), Y[s], out=out[s])
                return
            buf = np.empty((min(_CHUNK, s.stop - s.start),) + Y.shape[1:], dtype=Y.dtype)
            for i in range(s.start, s.stop, _CHUNK):
                j = min(i + _CHUNK, s.stop)
                y = buf[:j - i]
                np.copyto(y, Y[i:j])
                np.matmul(X[i:j].transpose(0, 2, 1), y, out=out[i:j])
        split_rows(part, E, workers)

    products(A, A, AB)
    products(B, B, BA)
    AtA, BtB = AB.reshape(E, d * d), BA.reshape(E, d * d)
    for k in range(d * d):  # d² weighted bincounts, each vectorised over the edges
        diag[:, k] = np.bincount(t, AtA[:, k], n) + np.bincount(h, BtB[:, k], n)
    products(A, B, AB)
    products(B, A, BA)
    loops = t == h
    edges = None  # edges whose cross blocks are placed (all of them unless there are loops)
    if loops.any():  # a self-loop's cross terms -AᵀB - BᵀA land on its own diagonal block
        l = np.flatnonzero(loops)
        cross = (AB[l] + BA[l]).reshape(len(l), d * d)
        for k in range(d * d):
            diag[:, k] -= np.bincount(t[l], cross[:, k], n)
        edges = np.flatnonzero(~loops)
        t, h = t[edges], h[edges]
    np.negative(src[n:], out=src[n:])
    m = len(t)
    # row positions in src of the n + 2m candidate blocks, in key order below
    if edges is None:
        position = None
    else:
        position = np.concatenate([np.arange(n), n + edges, n + E + edges])
    # block (row, col) keys: the diagonal, then (t, h) for -AᵀB, then (h, t) for -BᵀA
    if split is None:
        key = np.empty(n + 2 * m, dtype=np.int64)
        key[:n] = np.arange(n, dtype=np.int64) * (n + 1)
        np.multiply(t, n, out=key[n:n + m])
        key[n:n + m] += h
        np.multiply(h, n, out=key[n + m:])
        key[n + m:] += t
    else:  # the blocks of (free, free), (free, pinned), (pinned, pinned) node pairs, keyed
        # part-major with each side renumbered in order, so that every part comes out sorted;
        # the blocks of pinned rows and free columns (not needed) get a key past every other
        # and are cut off after the sort. Written into one key array, part by part, with two
        # edge-sized temporaries: each array of this size is fresh memory, and on the test
        # machine a fresh page is slow (the former concatenate-and-filter made seven more)
        new = np.empty(n, dtype=np.int64)
        nf = int(split.sum())
        new[split] = np.arange(nf)
        new[~split] = np.arange(n - nf)
        pinned = ~split
        nn, unused = n * n, 3 * n * n
        key = np.empty(n + 2 * m, dtype=np.int64)
        np.multiply(new, n + 1, out=key[:n])  # the diagonal: part 0 (free) or 2 (pinned)
        key[:n] += pinned * (2 * nn)
        pt, ph = pinned[t], pinned[h]
        nt, nh, scratch = new[t], new[h], np.empty(m, dtype=np.int64)
        for lo, a, b, pa, pb in ((n, nt, nh, pt, ph), (n + m, nh, nt, ph, pt)):
            part = key[lo:lo + m]  # rows a, columns b: part 0, 1 or 2 by pinned ends
            np.add(pa, pb, out=part, dtype=np.int64)
            part *= nn
            part += np.multiply(a, n, out=scratch)
            part += b
            part[pa & ~pb] = unused
        del nt, nh, scratch, pt, ph
    order = np.argsort(key, kind="stable")
    if split is not None:  # (the unused blocks sorted last)
        order = order[:len(order) - int(np.count_nonzero(key == unused))]
    key = key[order]
    if position is not None:
        order = position[order]
        del position
    first = np.r_[True, key[1:] != key[:-1]]
    if first.all():  # one block per position: one take of whole rows, in sorted order
        blocks = _gather(src, order, workers)
    else:  # parallel or antiparallel edges share a position: the first block of each is
        # taken, the (usually few) others are added onto it
        starts = np.flatnonzero(first)
        blocks = _gather(src, order[starts], workers)
        rest = np.flatnonzero(~first)
        # (each extra block's position among the first ones by a search over the few extras,
        # not a running count over every block: 0.1 s at 10⁶ nodes)
        np.add.at(blocks, np.searchsorted(starts, rest, side="right") - 1,
                  np.take(src, order[rest], axis=0))
        key = key[starts]
    blocks = blocks.reshape(len(key), d, d)
    # the free nodes' diagonal blocks (a block-Jacobi preconditioner needs no extraction)
    free_diag = None if split is None else diag[split].reshape(-1, d, d)  # (a copy)
    # src is read no more: its memory, already touched, receives the CSR values (at least
    # as many as the blocks' entries), so that they do not fault in fresh pages (a 10⁶-node
    # O(3) sheaf: 5·10⁸ bytes, 0.5 s of a process's first assembly on the test machine)
    spare = src.reshape(-1)
    del src, diag, AB, BA, order, first
    if split is None:
        rows = key // n
        return block_csr(blocks, rows, key - rows * n, n, n, d, itype, workers, spare=spare)
    # the parts' ranges from the sorted keys themselves, and each part's (row, column) from
    # its own slice (no part-number and remainder arrays of the whole size)
    cut = np.searchsorted(key, np.arange(4) * (n * n))
    shapes = ((nf, nf), (nf, n - nf), (n - nf, n - nf))
    parts = []
    for p, (a, b, shape) in enumerate(zip(cut[:-1], cut[1:], shapes)):
        rows, cols = np.divmod(key[a:b] - p * n * n if p else key[a:b], n)
        parts.append(block_csr(blocks[a:b], rows, cols, *shape, d, itype, workers,
                               spare=spare[a * d * d:b * d * d]))
        del rows, cols
    return tuple(parts) + (free_diag,)


def _gather(src, rows, workers):
    """``src[rows]`` (whole rows), the rows split over the workers."""
    out = np.empty((len(rows),) + src.shape[1:], dtype=src.dtype)
    split_rows(lambda s: np.take(src, rows[s], axis=0, out=out[s], mode="clip"), len(rows), workers)
    return out


def block_csr(blocks, rows, cols, n_rows, n_cols, d, itype, workers=1, spare=None):
    """CSR array of d×d blocks at block positions (rows, cols), sorted by row then column.

    With ``workers`` > 1 a large conversion is split in ranges of block rows converted in
    threads, each into its own slice of the result (SciPy's BSR-to-CSR kernel releases the
    GIL; 1.7 s for the 6·10⁷ entries of a 10⁶-node O(3) sheaf on one thread). ``spare``: a
    float array the caller no longer needs, of at least the blocks' size, that the
    threaded conversion may take for the result's values.
    """
    indptr = np.zeros(n_rows + 1, dtype=itype)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    cols = cols.astype(itype)
    kernel = _bsr_kernel() if workers > 1 and len(blocks) * d * d >= THREADED_NNZ else None
    if kernel is None:
        L = sp.bsr_array((blocks, cols, indptr), shape=(n_rows * d, n_cols * d)).tocsr()
    else:
        L = _threaded_bsr_to_csr(kernel, blocks, cols, indptr, n_rows, n_cols, d, itype, workers,
                                 spare)
    L.eliminate_zeros()
    return L


def _bsr_kernel():
    try:
        from scipy.sparse._sparsetools import bsr_tocsr
    except ImportError:  # pragma: no cover - another SciPy layout: the public conversion
        return None
    return bsr_tocsr


def _threaded_bsr_to_csr(kernel, blocks, cols, bptr, n_rows, n_cols, d, itype, workers,
                         spare=None):
    nnz = len(blocks) * d * d
    out_ptr = np.empty(n_rows * d + 1, dtype=itype)
    out_idx = np.empty(nnz, dtype=itype)
    if spare is not None and spare.dtype == blocks.dtype and spare.size >= nnz \
            and spare.flags.c_contiguous and spare.flags.writeable:
        out_val = spare[:nnz]
    else:
        out_val = np.empty(nnz, dtype=blocks.dtype)
    flat = blocks.reshape(-1)
    bounds = row_ranges(bptr, workers)

    def run(rows):
        r0, r1 = rows
        b0, b1 = int(bptr[r0]), int(bptr[r1])
        ptr = np.empty((r1 - r0) * d + 1, dtype=itype)
        kernel(r1 - r0, n_cols, d, d, bptr[r0:r1 + 1] - bptr[r0], cols[b0:b1],
               flat[b0 * d * d:b1 * d * d], ptr, out_idx[b0 * d * d:b1 * d * d],
               out_val[b0 * d * d:b1 * d * d])
        out_ptr[r0 * d:r1 * d + 1] = ptr + b0 * d * d

    run_all(run, [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])])
    return sp.csr_array((out_val, out_idx, out_ptr), shape=(n_rows * d, n_cols * d))
