"""Sheaf heat diffusion ``dx/dt = -L x`` with optional pinned coordinates.

Pinned coordinates stay fixed, the free ones follow
``dx_Ω/dt = -(L[Ω,Ω] x_Ω + L[Ω,U] x_U)``, the gradient flow of the Dirichlet
energy. For linear sheaves the flow is computed exactly with the action of the matrix
exponential; explicit Euler re-evaluates state-dependent maps at every step.
"""

import itertools
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ._repr import short_repr
from .cohomology import DENSE_LIMIT
from .exceptions import DivergenceError, SheafError
from .complex_sheaves import (complex_assignment, complex_to_real, is_complex_sheaf, real_boundary,
                              real_to_complex, realify)
from .layout import boundary_coordinates, complement, to_assignment, to_vector
from .linalg import CoboundaryOperator, check_finite_cochain
from .solvers import accumulate_product as _accumulate_product

__all__ = ["Trajectory", "heat_diffusion"]


@dataclass(frozen=True)
class Trajectory:
    """States of a diffusion on a time grid.

    Attributes
    ----------
    times : ndarray of shape (T,)
    vectors : ndarray of shape (T, dim C^0) or (T, dim C^0, M)
        Rows are C^0 vectors in ``nodelist`` order.
    nodelist : list
    step : float or None
        Euler step used (None for the exact method).
    """

    def __repr__(self):
        return short_repr(self)

    times: np.ndarray
    vectors: np.ndarray
    nodelist: list
    step: object = None
    _graph: object = field(default=None, repr=False, compare=False)

    @property
    def states(self):
        """The states as a list of dicts node -> value."""
        return [to_assignment(self._graph, v, self.nodelist) for v in self.vectors]

    def __len__(self):
        return len(self.times)

    def __getitem__(self, i):
        return to_assignment(self._graph, self.vectors[i], self.nodelist)


def heat_diffusion(G, x0, t, *, boundary=None, method="expm", step=None, state=None,
                   dim="dim", source_map="source_map", target_map="target_map", validate=True):
    """Run the sheaf heat equation ``dx/dt = -L x`` from ``x0`` for time ``t``.

    Parameters
    ----------
    G : sheaf
    x0 : dict node -> value, or C^0 vector
        Initial state; values of shape (dim,) or (dim, M) for M independent samples.
    t : float or 1-D array of non-decreasing times
        A single time returns the state at that time; a grid returns a
        :class:`Trajectory`.
    boundary : boundary spec, optional
        Pinned coordinates. With values they replace those of ``x0``; given as nodes or
        coordinate sets (no values), ``x0`` supplies them. They never move.
    method : {"expm", "euler"}
        "expm" is exact for linear sheaves (``scipy.sparse.linalg.expm_multiply``).
        "euler" is explicit Euler; state-dependent maps are re-evaluated at every step
        (the state-dependent heat equation) unless a fixed ``state=`` is given.
    step : float, optional
        Euler step. Default ``1/λ_max`` (a bound for state-dependent maps), which
        makes the energy non-increasing. A step at or above ``2/λ_max`` diverges and
        raises :class:`DivergenceError`.
    state : dict, optional
        Freeze state-dependent maps at this state (then the sheaf is linear).

    Returns
    -------
    dict or Trajectory

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    >>> x = gs.heat_diffusion(G, {0: [3.0], 1: [0.0], 2: [0.0]}, 50.0)
    >>> [round(float(x[v][0]), 6) for v in G]
    [1.0, 1.0, 1.0]
    """
    if method not in ("expm", "euler"):
        raise ValueError(f"method must be 'expm' or 'euler', got {method!r}")
    op = CoboundaryOperator(G, dim=dim, source_map=source_map, target_map=target_map,
                            validate=validate)
    nodelist = op.table.nodelist
    if is_complex_sheaf(op.table):
        return _complex_diffusion(G, op.table, x0, t, boundary=boundary, method=method, step=step,
                                  state=state, dim=dim, source_map=source_map,
                                  target_map=target_map)
    X0 = to_vector(G, x0, nodelist) if isinstance(x0, dict) else np.asarray(x0, dtype=float)
    n = op.shape[1]
    if X0.ndim not in (1, 2) or X0.shape[0] != n:
        raise SheafError(f"x0 has shape {X0.shape}, but dim C^0 = {n}")
    check_finite_cochain(X0, op.table, "x0")
    X0 = X0.copy()
    b = boundary_coordinates(G, boundary, nodelist, dim=dim)
    if b.values is not None and b.index.size:
        vals = b.values
        if X0.ndim == 2 and vals.ndim == 1:
            vals = np.repeat(vals[:, None], X0.shape[1], axis=1)
        if vals.shape[1:] != X0.shape[1:]:
            raise SheafError(f"boundary values have shape {vals.shape}, x0 has {X0.shape}")
        X0[b.index] = vals
    free = complement(n, b.index)
    times = np.atleast_1d(np.asarray(t, dtype=float))
    if times.ndim != 1 or np.any(np.diff(times) < 0) or np.any(times < 0) or \
            not np.all(np.isfinite(times)):
        raise SheafError("t must be a non-negative time or a non-decreasing 1-D grid of them")
    linear = op.is_linear or state is not None
    if method == "expm" and not linear:
        e = op.stateful_ends[0][5]
        raise SheafError(f"edge {e!r} has a state-dependent map: the exact method needs a "
                         "linear sheaf; use method='euler' or freeze the maps with state=")
    if linear:
        delta = op.const if op.is_linear else _frozen(G, op, state, dim, source_map, target_map)
        D_f, D_b = delta[:, free], delta[:, b.index]
        L_ff = (D_f.T @ D_f).tocsr()
        c = D_f.T @ (D_b @ X0[b.index])  # constant forcing from the pinned values
        if method == "expm":
            out = _expm_path(L_ff, c, X0, free, times)
            used_step = None
        else:
            lam_max = _lambda_max(L_ff)
            used_step = _check_step(step, lam_max)
            out = _euler_linear(L_ff, c, X0, free, times, used_step)
    else:
        lam_bound = _lambda_max_bound(op, free)
        used_step = step if step is not None else 1.0 / lam_bound
        if used_step <= 0:
            raise SheafError(f"step must be positive, got {step}")
        out = _euler_stateful(op, X0, free, times, used_step)
    if np.ndim(t) == 0:
        return to_assignment(G, out[0], nodelist)
    return Trajectory(times, np.stack(out), nodelist, used_step, G)


def _complex_diffusion(G, table, x0, t, dim, source_map, target_map, **kw):
    """The heat flow of a complex sheaf, run on its realification."""
    X0 = to_vector(G, x0, table.nodelist, dim=dim) if isinstance(x0, dict) else np.asarray(x0)
    if X0.shape[:1] != (int(table.node_start[-1]),):
        raise SheafError(f"x0 has shape {X0.shape}, but dim C^0 = {int(table.node_start[-1])}")
    kw["boundary"] = real_boundary(kw["boundary"], G, dim)
    res = heat_diffusion(realify(G, dim=dim, source_map=source_map, target_map=target_map),
                         complex_to_real(X0, table.dims), t, dim=dim, source_map=source_map,
                         target_map=target_map, **kw)
    if np.ndim(t) == 0:
        return complex_assignment(res, G, dim)
    vectors = np.moveaxis(real_to_complex(np.moveaxis(res.vectors, 1, 0), table.dims), 0, 1)
    return Trajectory(res.times, vectors, res.nodelist, res.step, G)


def _frozen(G, op, state, dim, source_map, target_map):
    from .linalg import coboundary_of
    return coboundary_of(G, op.table, state, dim, source_map, target_map)


def _lambda_max(L):
    n = L.shape[0]
    if n == 0:
        return 0.0
    if n <= DENSE_LIMIT:
        return float(la.eigvalsh(L.toarray())[-1])
    if L.nnz == 0:
        return 0.0
    # a random start: the all-ones vector is a global section of every constant sheaf
    # (L·1 = 0, and ARPACK stops on it). Lanczos approaches λ_max from below, so a loose
    # tolerance (the top of a mesh Laplacian's spectrum is clustered: full accuracy took
    # 12 s on a 10⁵-node grid) is lifted by its error and capped by Gershgorin's bound,
    # which is what is used if ARPACK fails.
    gersh = float(abs(L).sum(axis=1).max())
    v0 = np.random.default_rng(0).standard_normal(n)
    try:
        lam = float(spla.eigsh(L, k=1, which="LA", v0=v0, tol=1e-3, maxiter=300,
                               return_eigenvectors=False)[0])
    except spla.ArpackError:
        return gersh
    return min(lam * 1.01, gersh)


def _check_step(step, lam_max):
    if step is None:
        return 1.0 / lam_max if lam_max > 0 else 1.0
    step = float(step)
    if step <= 0:
        raise SheafError(f"step must be positive, got {step}")
    if lam_max > 0 and step * lam_max >= 2.0:
        raise DivergenceError(
            f"explicit Euler with step {step:g} diverges: it needs step < 2/λ_max = "
            f"{2.0 / lam_max:.6g} (λ_max = {lam_max:.6g}); omit step= for the safe default "
            f"{1.0 / lam_max:.6g} or use method='expm'")
    return step


def _expm_path(L_ff, c, X0, free, times):
    """Exact affine flow x' = -L x - c on the free block, via an augmented generator."""
    x = X0[free]
    batch = x.shape[1] if x.ndim == 2 else None
    k = 1 if batch is None else batch
    nf = L_ff.shape[0]
    # d/dt [x; s] = [[-L, -C], [0, 0]] [x; s] with s = e_m carries column m's forcing
    C = c.reshape(nf, k)
    A = sp.block_array([[-L_ff, sp.csr_array(-C)], [None, sp.csr_array((k, k))]]).tocsr()
    Y = np.vstack([x.reshape(nf, k), np.eye(k)])
    out, prev = [], 0.0
    for tt in times:
        if tt > prev and nf:
            Y = spla.expm_multiply(A * (tt - prev), Y)
        prev = tt
        X = X0.copy()
        X[free] = Y[:nf, 0] if batch is None else Y[:nf]
        out.append(X)
    return out


def _euler_linear(L_ff, c, X0, free, times, h):
    """Explicit Euler x ← x - h (L x + c): two preallocated buffers, no allocation per step."""
    X = X0.copy()
    x = np.ascontiguousarray(X[free])
    force = np.ascontiguousarray(np.broadcast_to(c, x.shape))
    y = np.empty_like(x)
    product = _accumulate_product(L_ff)

    def step(hh):
        np.copyto(y, force)
        product(x, y)  # y = L x + c
        np.multiply(y, hh, out=y)
        np.subtract(x, y, out=x)

    out, now = [], 0.0
    for tt in times:
        n_full = int(np.floor((tt - now) / h + 1e-12))
        for _ in range(n_full):
            step(h)
        rest = (tt - now) - n_full * h
        if rest > 1e-15 * max(1.0, tt):
            step(rest)
        now = tt
        if not np.all(np.isfinite(x)):
            raise DivergenceError("Euler diffusion produced non-finite values")
        X = X0.copy()
        X[free] = x
        out.append(X)
    return out


def _lambda_max_bound(op, free):
    """Upper bound on λ_max of L over all states: ‖|δ|‖_1 ‖|δ|‖_∞ with envelopes."""
    E = abs(op.const).tolil() if op.stateful_ends else abs(op.const)
    for rows, cols, _node, m, _sign, _e in op.stateful_ends:
        E[rows, cols] = np.maximum(E[rows, cols].toarray(), np.abs(m.envelope()))
    E = sp.csr_array(E)[:, free]
    if E.shape[1] == 0 or E.nnz == 0:
        return 1.0
    return float(E.sum(axis=0).max() * E.sum(axis=1).max())


def _euler_stateful(op, X0, free, times, h):
    """Explicit Euler of the state-dependent heat equation (maps read the current x).

    The residual and gradient live in two buffers reused by every step (the operator's
    constant part writes into them in place); only the state-dependent maps' own small
    outputs are new arrays.
    """
    X = np.array(X0, dtype=float, order="C")
    fixed = np.ones(X.shape[0], dtype=bool)
    fixed[free] = False
    R = np.empty((op.shape[0],) + X.shape[1:])
    grad = np.empty_like(X)

    out, now = [], 0.0
    energy0 = None
    for tt in times:
        n_full = int(np.floor((tt - now) / h + 1e-12))
        rest = (tt - now) - n_full * h
        last = [rest] if rest > 1e-15 * max(1.0, tt) else []
        # steps generated one at a time: t = 1e9 must not build a list of 10⁹ floats first
        for hh in itertools.chain(itertools.repeat(h, n_full), last):
            op.matvec(X, state=X, out=R)
            if energy0 is None:
                energy0 = 0.5 * float(np.sum(R * R))
            op.rmatvec(R, state=X, out=grad)
            grad[fixed] = 0.0
            grad *= hh
            X -= grad
        now = tt
        if not np.all(np.isfinite(X)) or (
                energy0 is not None and 0.5 * float(np.sum(op.matvec(X, state=X, out=R) ** 2))
                > 10 * max(energy0, 1e-300)):
            raise DivergenceError(
                f"state-dependent Euler diffusion blew up with step {h:g}: reduce step "
                "below 2/λ_max of the Laplacian (omit step= for a safe default)")
        out.append(X.copy())
    return out
