"""The restriction maps of DAG network operations, acting on stalks ``ū = [u; 1]`` (every
vertex of a DAG sheaf carries a pinned 1 after its coordinates, which the biases read).

A convolution is a sparse matrix whose stored entries are gathered from one weight
tensor (``data = θ[index]``, θ = the flattened weights, then the biases): weight sharing
is a property of the map, which :class:`~.plan.DagPlan` checks when it reads the weights
back, and training rewrites ``data`` from θ instead of keeping a dense copy per position.
"""

import numpy as np
import scipy.sparse as sp

from ...exceptions import SheafError
from ...maps import PiecewiseLinearGate, StateDependentMap, map_registry

__all__ = ["MaxPoolMap", "affine_map", "conv_map", "diag_affine_map", "gate", "pool_windows",
           "selection"]


def affine_map(W, b):
    """``[W | b]`` (dense), the map of a linear layer on ``ū``."""
    W = np.asarray(W, dtype=float)
    b = np.zeros(W.shape[0]) if b is None else np.asarray(b, dtype=float).reshape(-1)
    return np.hstack([W, b[:, None]])


def selection(n_rows, n_cols, offset):
    """Rows ``offset .. offset + n_rows`` of the identity on a stalk of ``n_cols`` coordinates
    (the target map of an edge that defines that block of its head)."""
    M = np.zeros((n_rows, n_cols))
    M[np.arange(n_rows), offset + np.arange(n_rows)] = 1.0
    return M


def _out_size(n, k, stride, padding):
    out = (n + 2 * padding - k) // stride + 1
    if out < 1:
        raise SheafError(f"a window of {k} with stride {stride} and padding {padding} does not fit "
                         f"an input of size {n}")
    return out


def conv_map(in_shape, weight, bias, stride, padding):
    """A convolution (1-D or 2-D, one group) as a sparse map on ``ū``, with the gather index.

    Returns ``(csr, index, out_shape)``: ``csr.data == θ[index]`` where θ is the flattened
    weight followed by the bias.
    """
    W = np.asarray(weight, dtype=float)
    C_out, C_in = W.shape[:2]
    ksz = W.shape[2:]
    spatial = tuple(in_shape[1:])
    if in_shape[0] != C_in or len(ksz) != len(spatial):
        raise SheafError(f"a convolution with weight {W.shape} cannot read an input of shape {in_shape}")
    stride = (stride,) * len(ksz) if np.isscalar(stride) else tuple(stride)
    padding = (padding,) * len(ksz) if np.isscalar(padding) else tuple(padding)
    out_sp = tuple(_out_size(n, k, s, p) for n, k, s, p in zip(spatial, ksz, stride, padding))
    n_in = int(np.prod(in_shape))
    # every (c_out, output position, c_in, kernel offset), as index grids
    grids = np.meshgrid(np.arange(C_out), *[np.arange(o) for o in out_sp], np.arange(C_in),
                        *[np.arange(k) for k in ksz], indexing="ij")
    co, ci = grids[0], grids[1 + len(out_sp)]
    pos = grids[1:1 + len(out_sp)]
    off = grids[2 + len(out_sp):]
    coords = [p * s - pd + o for p, s, pd, o in zip(pos, stride, padding, off)]
    inside = np.ones(co.shape, dtype=bool)
    for c, n in zip(coords, spatial):
        inside &= (c >= 0) & (c < n)
    row = co
    for p, o in zip(pos, out_sp):
        row = row * o + p
    col = ci
    for c, n in zip(coords, spatial):
        col = col * n + c
    widx = co
    widx = widx * C_in + ci
    for o, k in zip(off, ksz):
        widx = widx * k + o
    row, col, widx = row[inside], col[inside], widx[inside]
    n_out = C_out * int(np.prod(out_sp))
    n_w = W.size
    bias_rows = np.arange(n_out)
    rows = np.concatenate([row, bias_rows])
    cols = np.concatenate([col, np.full(n_out, n_in)])
    index = np.concatenate([widx, n_w + bias_rows // int(np.prod(out_sp))])
    order = np.lexsort((cols, rows))
    rows, cols, index = rows[order], cols[order], index[order]
    theta = np.concatenate([W.ravel(), np.zeros(C_out) if bias is None else np.asarray(bias, float)])
    csr = sp.csr_array((theta[index], cols, np.searchsorted(rows, np.arange(n_out + 1))),
                       shape=(n_out, n_in + 1))
    return csr, index, (C_out,) + out_sp


def pool_windows(in_shape, kernel, stride, padding=0):
    """Input flat indices of every pooling window, shape (n_out, window size), -1 in padding."""
    C, spatial = in_shape[0], tuple(in_shape[1:])
    kernel = (kernel,) * len(spatial) if np.isscalar(kernel) else tuple(kernel)
    stride = kernel if stride is None else ((stride,) * len(spatial) if np.isscalar(stride)
                                             else tuple(stride))
    padding = (padding,) * len(spatial) if np.isscalar(padding) else tuple(padding)
    out_sp = tuple(_out_size(n, k, s, p) for n, k, s, p in zip(spatial, kernel, stride, padding))
    grids = np.meshgrid(np.arange(C), *[np.arange(o) for o in out_sp], *[np.arange(k) for k in kernel],
                        indexing="ij")
    c = grids[0]
    pos, off = grids[1:1 + len(out_sp)], grids[1 + len(out_sp):]
    coords = [p * s - pd + o for p, s, pd, o in zip(pos, stride, padding, off)]
    inside = np.ones(c.shape, dtype=bool)
    flat = c
    for x, n in zip(coords, spatial):
        inside &= (x >= 0) & (x < n)
        flat = flat * n + np.clip(x, 0, n - 1)
    flat = np.where(inside, flat, -1)
    n_out = C * int(np.prod(out_sp))
    return flat.reshape(n_out, -1), (C,) + out_sp


def avgpool_map(in_shape, kernel, stride, padding=0):
    """Average pooling (zeros in the padding counted, PyTorch's default) as a sparse map on ``ū``."""
    win, out_shape = pool_windows(in_shape, kernel, stride, padding)
    n_out, k = win.shape
    rows = np.repeat(np.arange(n_out), k)
    cols = win.ravel()
    keep = cols >= 0
    n_in = int(np.prod(in_shape))
    M = sp.coo_array((np.full(keep.sum(), 1.0 / k), (rows[keep], cols[keep])), shape=(n_out, n_in + 1))
    return M.tocsr(), out_shape


def diag_affine_map(scale, shift, in_shape):
    """``y = s ⊙ x + t`` per channel (batch normalisation in evaluation mode) on ``ū``."""
    C = in_shape[0]
    per = int(np.prod(in_shape[1:])) if len(in_shape) > 1 else 1
    n = C * per
    s = np.repeat(np.asarray(scale, float), per)
    t = np.repeat(np.asarray(shift, float), per)
    rows = np.concatenate([np.arange(n), np.arange(n)])
    cols = np.concatenate([np.arange(n), np.full(n, n)])
    return sp.csr_array((np.concatenate([s, t]), (rows, cols)), shape=(n, n + 1))


def gate(activation, n, **kw):
    """The piecewise-linear gate of an activation on a stalk ``z̄ = [z; 1]``."""
    if activation == "relu":
        return PiecewiseLinearGate(n, [0.0], [0.0, 1.0], reads_one=True)
    if activation == "leaky_relu":
        return PiecewiseLinearGate(n, [0.0], [kw.get("negative_slope", 0.01), 1.0], reads_one=True)
    if activation == "relu6":
        return PiecewiseLinearGate(n, [0.0, 6.0], [0.0, 1.0, 0.0], reads_one=True)
    if activation == "hardtanh":
        lo, hi = float(kw.get("min_val", -1.0)), float(kw.get("max_val", 1.0))
        return PiecewiseLinearGate(n, [lo, hi], [0.0, 1.0, 0.0], offset=min(max(0.0, lo), hi),
                                   reads_one=True)
    if activation == "identity":
        return PiecewiseLinearGate(n, [], [1.0], reads_one=True)
    raise SheafError(f"activation {activation!r} is not piecewise linear (relu, leaky_relu, relu6, "
                     "hardtanh, identity)")


class MaxPoolMap(StateDependentMap):
    """Max pooling as a restriction map: at a state, the 0/1 matrix selecting each window's
    largest entry (the first one on ties), on a stalk ``ū = [u; 1]``.

    ``max`` over a window is continuous and piecewise linear, like ReLU: the selection is the
    gate chosen by the state.
    """

    type_name = "max_pool"

    def __init__(self, windows, n_in):
        self.windows = np.asarray(windows, dtype=np.int64)
        self.n_in = int(n_in)
        self.shape = (self.windows.shape[0], self.n_in + 1)

    def _pick(self, s):
        """Input index chosen in every window (per column of a batch of states)."""
        s = np.asarray(s, dtype=float)
        padded = np.concatenate([s[:self.n_in], np.full((1,) + s.shape[1:], -np.inf)], axis=0)
        vals = padded[self.windows]                    # (n_out, k[, M]); -1 reads the -inf row
        arg = vals.argmax(axis=1)
        return np.take_along_axis(self.windows.reshape(self.windows.shape + (1,) * (s.ndim - 1)),
                                  arg[:, None], axis=1)[:, 0]

    def matrix(self, s):
        idx = self._pick(s)
        M = np.zeros(self.shape)
        M[np.arange(self.shape[0]), idx] = 1.0
        return M

    def apply(self, s, x, idx=None):
        idx = self._pick(s) if idx is None else idx
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            return x[idx]
        return np.take_along_axis(x, idx, axis=0) if idx.ndim == 2 else x[idx]

    def rapply(self, s, y, idx=None):
        idx = self._pick(s) if idx is None else idx
        y = np.asarray(y, dtype=float)
        out = np.zeros((self.shape[1],) + y.shape[1:])
        if y.ndim == 1:
            np.add.at(out, idx, y)
        elif idx.ndim == 2:
            np.add.at(out, (idx, np.broadcast_to(np.arange(y.shape[1]), idx.shape)), y)
        else:
            np.add.at(out, idx, y)
        return out

    def envelope(self):
        E = np.zeros(self.shape)
        rows = np.repeat(np.arange(self.shape[0]), self.windows.shape[1])
        cols = self.windows.ravel()
        E[rows[cols >= 0], cols[cols >= 0]] = 1.0
        return E

    def to_dict(self):
        return {"windows": self.windows.tolist(), "n_in": self.n_in}

    @classmethod
    def from_dict(cls, data):
        return cls(np.asarray(data["windows"], dtype=np.int64), data["n_in"])

    def __repr__(self):
        return f"MaxPoolMap({self.shape[0]} windows of {self.windows.shape[1]})"


map_registry[MaxPoolMap.type_name] = MaxPoolMap
