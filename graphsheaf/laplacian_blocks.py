"""Assembly of the sheaf Laplacian of uniform stalks from d×d blocks, straight into CSR.

Every stalk of dimension d and every map a d-column matrix: the diagonal blocks are summed
per node, the off-diagonal ones per node pair, and one block-sparse array is converted to
CSR -- or, for a harmonic extension with whole stalks pinned, the three blocks
``L[Ω,Ω]``, ``L[Ω,U]``, ``L[U,U]`` are assembled directly.
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["block_csr", "index_type", "uniform_laplacian"]


def index_type(*extents):
    """int32 when every extent fits, else int64."""
    return np.int32 if max(extents, default=0) < 2**31 - 1 else np.int64


def uniform_laplacian(table, A, B, split=None):
    """L for stalks all of dim d and maps (E, r, d): d×d blocks summed per node pair, then
    one block-sparse (BSR) array converted to CSR, so the work and memory stay near the
    size of the nonzeros. With ``split`` (free nodes): the three blocks of whole stalks."""
    E, _, d = A.shape
    n = len(table.dims)
    t, h = table.tails, table.heads
    itype = index_type(n * d, E)
    # diagonal blocks: Σ AᵀA over edges leaving the node + Σ BᵀB over edges entering it
    diag = np.empty((n, d * d))
    AtA = np.einsum("nij,nik->njk", A, A).reshape(E, d * d)
    BtB = np.einsum("nij,nik->njk", B, B).reshape(E, d * d)
    for k in range(d * d):  # d² weighted bincounts, each vectorised over the edges
        diag[:, k] = np.bincount(t, AtA[:, k], n) + np.bincount(h, BtB[:, k], n)
    del AtA, BtB
    AtB = np.einsum("nij,nik->njk", A, B)
    loops = t == h
    if loops.any():  # a self-loop's cross terms -AᵀB - BᵀA land on its own diagonal block
        l = np.flatnonzero(loops)
        cross = (AtB[l] + AtB[l].transpose(0, 2, 1)).reshape(len(l), d * d)
        for k in range(d * d):
            diag[:, k] -= np.bincount(t[l], cross[:, k], n)
        keep = ~loops
        t, h, AtB = t[keep], h[keep], AtB[keep]
    m = len(t)
    # block (row, col) keys: the diagonal, then (t, h) for -AᵀB, then (h, t) for -BᵀA
    source = None
    if split is None:
        key = np.empty(n + 2 * m, dtype=np.int64)
        key[:n] = np.arange(n, dtype=np.int64) * (n + 1)
        np.multiply(t, n, out=key[n:n + m])
        key[n:n + m] += h
        np.multiply(h, n, out=key[n + m:])
        key[n + m:] += t
    else:  # the blocks of (free, free), (free, pinned), (pinned, pinned) node pairs, keyed
        # part-major with each side renumbered in order, so that every part comes out sorted
        new = np.empty(n, dtype=np.int64)
        nf = int(split.sum())
        new[split] = np.arange(nf)
        new[~split] = np.arange(n - nf)
        r = np.concatenate([np.arange(n), t, h])
        c = np.concatenate([np.arange(n), h, t])
        part = np.where(split[r], np.where(split[c], 0, 1), np.where(split[c], 3, 2))
        source = np.flatnonzero(part != 3)  # (pinned rows, free columns: not needed)
        key = part[source] * (n * n) + new[r[source]] * n + new[c[source]]
        del r, c, part
    order = np.argsort(key, kind="stable")
    key = key[order]
    if source is not None:
        order = source[order]
        del source
    # gather the blocks in sorted order straight from their three sources
    blocks = np.empty((len(order), d, d))
    src = order < n
    blocks[src] = diag.reshape(n, d, d)[order[src]]
    src = (order >= n) & (order < n + m)
    blocks[src] = -AtB[order[src] - n]
    src = order >= n + m
    blocks[src] = -AtB[order[src] - n - m].transpose(0, 2, 1)
    del src, order, diag, AtB
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    if len(starts) < len(key):  # parallel or antiparallel edges share a block: sum them
        blocks = np.add.reduceat(blocks, starts, axis=0)
        key = key[starts]
    if split is None:
        rows = key // n
        return block_csr(blocks, rows, key - rows * n, n, n, d, itype)
    part, key = np.divmod(key, n * n)
    rows, cols = np.divmod(key, n)
    cut = np.searchsorted(part, [0, 1, 2, 3])
    return tuple(block_csr(blocks[a:b], rows[a:b], cols[a:b], *shape, d, itype)
                 for a, b, shape in zip(cut[:-1], cut[1:], ((nf, nf), (nf, n - nf), (n - nf, n - nf))))


def block_csr(blocks, rows, cols, n_rows, n_cols, d, itype):
    """CSR array of d×d blocks at block positions (rows, cols), sorted by row then column."""
    indptr = np.zeros(n_rows + 1, dtype=itype)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    L = sp.bsr_array((blocks, cols.astype(itype), indptr), shape=(n_rows * d, n_cols * d)).tocsr()
    L.eliminate_zeros()
    return L
