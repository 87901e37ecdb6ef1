"""Harmonic extension: the energy-minimising completion of boundary data.

Given pinned coordinates U with values x_U, the harmonic extension minimises the
Dirichlet energy ½‖δx‖² over the free coordinates Ω:
``L[Ω,Ω] x_Ω = -L[Ω,U] x_U``. It is unique exactly when the relative cohomology
H^0(G, U; F) = ker δ_Ω vanishes.
"""

import warnings

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .cohomology import DENSE_LIMIT, blocks_of, sparse_kernel
from .exceptions import ConvergenceWarning, NonUniqueExtensionError, SheafError
from .laplace_solvers import graph_kind, pins_determine
from .laplace_solvers import solve as laplace_solve
from .complex_sheaves import (complex_assignment, complex_span, is_complex_sheaf, real_boundary,
                              real_to_complex, realify)
from .layout import assignment_of, boundary_coordinates, boundary_of, complement
from .linalg import coboundary_of, edge_table, laplacian_of, uniform_maps
from .maps import is_state_dependent
from .solvers import (BlockJacobi, accumulate_product, available_workers, direct_fill_limit,
                      factor_fill_estimate, pcg)

__all__ = ["HarmonicExtension", "harmonic_extension", "restricted_laplacian"]


class HarmonicExtension(dict):
    """A dict node -> value (the extension) carrying what else the solve found.

    Attributes
    ----------
    undetermined : ndarray of shape (dim C^0, h)
        Orthonormal basis (rows in C^0 order) of the directions the boundary leaves
        free: ker δ_Ω. Empty (h = 0) when the extension is unique.
    energy : float or ndarray of shape (M,)
        Dirichlet energy ½‖δx‖² of the extension (per sample for batched boundaries):
        zero exactly when the boundary data extend to a global section.
    method : str
        "dense" (SVD of δ_Ω), "lu" (sparse LU of L[Ω,Ω]), "cg" (block-Jacobi
        preconditioned conjugate gradients), "amg" (multigrid-preconditioned conjugate
        gradients) or "lsmr" (minimum-norm sparse least squares).
    reason : str or None
        With ``method="auto"``: why that solver was chosen.
    iterations : int or None
        Conjugate-gradient iterations ("cg" and "amg").
    fill_estimate : int or None
        With ``method="auto"`` on a large mesh-like graph: the estimated factor size
        (entries) that decided between "lu" and "amg" (see :mod:`graphsheaf.solvers`).
    uniqueness : str or None
        On the iterative paths: "structural" (invertible maps and a whole stalk pinned in
        every component) or "probe" (a random probe column solved alongside).
    multigrid : str or None
        With "amg": "classical (Ruge-Stüben)" when L[Ω,Ω] is an M-matrix (no positive
        entry off its diagonal), else "smoothed aggregation".
    """

    undetermined = None
    energy = None
    method = None
    multigrid = None

    def __repr__(self):
        free = 0 if self.undetermined is None else self.undetermined.shape[1]
        energy = self.energy if np.ndim(self.energy) == 0 else f"<array {np.shape(self.energy)}>"
        energy = f"{energy:.6g}" if isinstance(energy, float) else energy
        return (f"HarmonicExtension({len(self)} nodes, energy={energy}, method={self.method!r}, "
                f"undetermined directions={free})")
    reason = None
    uniqueness = None
    iterations = None
    fill_estimate = None


def restricted_laplacian(G, boundary, *, state=None, dim="dim", source_map="source_map",
                         target_map="target_map", validate=True):
    """Return ``(L[Ω,Ω], L[Ω,U], free_index, pinned_index)`` for a boundary spec.

    Indices are positions in the C^0 vector (``list(G)`` order). Both blocks are
    sparse CSR arrays.

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    >>> L_ff, L_fb, free, pinned = gs.restricted_laplacian(G, [0, 2])
    >>> L_ff.toarray().tolist(), free.tolist(), pinned.tolist()
    ([[2.0]], [1], [0, 2])
    """
    table = edge_table(G, dim=dim, source_map=source_map, target_map=target_map,
                       validate=validate)
    b = boundary_coordinates(G, boundary, table.nodelist, dim=dim)
    delta = coboundary_of(G, table, state, dim, source_map, target_map)
    free = complement(delta.shape[1], b.index)
    D_f, D_b = delta[:, free], delta[:, b.index]
    return (D_f.T @ D_f).tocsr(), (D_f.T @ D_b).tocsr(), free, b.index


def harmonic_extension(G, boundary, *, state=None, allow_nonunique=False, tol=None,
                       method="auto", rtol=1e-10, maxiter=None, workers=None, dim="dim",
                       source_map="source_map", target_map="target_map", validate=True):
    """Extend boundary data to the whole sheaf by minimising the Dirichlet energy.

    Parameters
    ----------
    G : networkx.DiGraph or MultiDiGraph
        A sheaf.
    boundary : dict
        Node -> stalk value (shape (dim,) or (dim, M) for M samples) or node ->
        ``{coordinate: value}`` (only those coordinates pinned). See
        :func:`boundary_coordinates`.
    state : dict, optional
        Assignment at which state-dependent maps are evaluated. A batched state (values
        of shape (d, M)) evaluates the maps per sample, matching a batched boundary.
    allow_nonunique : bool, default False
        When H^0(G, B; F) ≠ 0 the extension is not unique: by default this raises
        :class:`NonUniqueExtensionError`; with True the minimum-norm minimiser is
        returned and ``result.undetermined`` spans the free directions.
    tol : float, optional
        Singular-value threshold deciding uniqueness (as in :func:`cohomology`).
    method : {"auto", "dense", "sparse", "cg", "amg"}
        "dense": SVD of δ_Ω. "sparse": sparse LU of L[Ω,Ω], factored once for every
        right-hand side. "cg": conjugate gradients on the assembled L[Ω,Ω] (one CSR
        product per iteration) preconditioned by the inverse of its node-diagonal blocks,
        all right-hand sides at once. "amg": the same with an algebraic-multigrid
        V-cycle (PyAMG's classical Ruge-Stüben AMG when L[Ω,Ω] is an M-matrix, its
        smoothed aggregation otherwise; one hierarchy for every right-hand side).
        "auto" takes "dense" up to ``DENSE_LIMIT`` coordinates, then "sparse" when the
        estimated factor is small (at most :data:`graphsheaf.solvers.FILL_RATIO` times
        the nonzeros of L[Ω,Ω] and :data:`graphsheaf.solvers.DIRECT_FILL_LIMIT` entries
        in all: band-like graphs), then "amg" on mesh-like graphs (a BFS does not reach
        the whole component within 4 log₂ n + 8 levels) and "cg" on expander-like ones;
        ``result.method``, ``result.reason``, ``result.fill_estimate`` and
        ``result.iterations`` report the choice. Uniqueness is settled structurally
        when every map is an invertible square matrix and every component has a whole
        stalk pinned (``result.uniqueness == "structural"``), else by a probe column
        solved alongside.
    rtol : float, default 1e-10
        Relative residual at which conjugate gradients stop.
    maxiter : int, optional
        Conjugate-gradient iteration limit (a :class:`ConvergenceWarning` when reached).
    workers : int, optional
        Threads for the sparse products of "cg" and "amg" on large problems (rows split
        in ranges; results do not depend on it beyond rounding order, which is unchanged:
        each row is summed by one thread). Defaults to the cores this process may use
        (:func:`graphsheaf.solvers.available_workers`); 1 keeps everything on one thread.

    Returns
    -------
    HarmonicExtension
        A dict node -> value; pinned coordinates are returned unchanged.

    Examples
    --------
    Interpolating along a path with the ends pinned:

    >>> G = gs.constant_sheaf(nx.path_graph(5, create_using=nx.DiGraph))
    >>> x = gs.harmonic_extension(G, {0: [0.0], 4: [2.0]})
    >>> [round(float(x[v][0]), 12) for v in G]
    [0.0, 0.5, 1.0, 1.5, 2.0]
    """
    if method not in ("auto", "dense", "sparse", "cg", "amg"):
        raise ValueError(f"method must be 'auto', 'dense', 'sparse', 'cg' or 'amg', got {method!r}")
    table = edge_table(G, dim=dim, source_map=source_map, target_map=target_map,
                       validate=validate)
    if is_complex_sheaf(table):
        return _complex_extension(G, table, boundary, state=state, allow_nonunique=allow_nonunique,
                                  tol=tol, method=method, rtol=rtol, maxiter=maxiter, dim=dim,
                                  source_map=source_map, target_map=target_map)
    b = boundary_of(G, table.nodelist, table.node_start, boundary, require_values=True,
                    index=table.node_index, ranged=table.ranged)
    stateful = table.has_state_maps
    kw = dict(dim=dim, source_map=source_map, target_map=target_map)
    solver = dict(rtol=rtol, maxiter=maxiter,
                  workers=available_workers() if workers is None else int(workers))
    batched_state = stateful and state is not None and _state_batch(state) is not None
    if not batched_state:
        return _solve(G, table, b.index, b.values, state, allow_nonunique, tol, method, kw, solver)
    # one operator per distinct evaluated pattern, each factored once
    M = _state_batch(state)
    values = b.values if b.values.ndim == 2 else np.repeat(b.values[:, None], M, axis=1)
    if values.shape[1] != M:
        raise SheafError(f"state carries {M} samples but the boundary values carry {values.shape[1]}")
    keys = [_pattern_key(table, {v: np.asarray(s)[:, m] for v, s in state.items()})
            for m in range(M)]
    out_vec = np.zeros((int(table.node_start[-1]), M))
    energy = np.zeros(M)
    undetermined = None
    for key in dict.fromkeys(keys):
        cols = [m for m in range(M) if keys[m] == key]
        col_state = {v: np.asarray(s)[:, cols[0]] for v, s in state.items()}
        res = _solve(G, table, b.index, values[:, cols], col_state, allow_nonunique, tol,
                     method, kw, solver, as_vector=True)
        out_vec[:, cols] = res[0]
        energy[cols] = res[1]
        undetermined = res[2] if undetermined is None or res[2].shape[1] > undetermined.shape[1] \
            else undetermined
        used = res[3]
    return _package(G, table, out_vec, energy, undetermined, used)


def _complex_extension(G, table, boundary, dim, source_map, target_map, **kw):
    """The harmonic extension of a complex sheaf, solved on its realification."""
    res = harmonic_extension(realify(G, dim=dim, source_map=source_map, target_map=target_map),
                             real_boundary(boundary, G, dim), dim=dim, source_map=source_map,
                             target_map=target_map, **kw)
    out = HarmonicExtension(complex_assignment(res, G, dim))
    out.__dict__.update(res.__dict__)
    out.undetermined = complex_span(real_to_complex(res.undetermined, table.dims),
                                    res.undetermined.shape[1] // 2)
    return out


def _state_batch(state):
    for s in state.values():
        s = np.asarray(s)
        return s.shape[1] if s.ndim == 2 and s.shape[1] > 1 else None
    return None


def _pattern_key(table, state_col):
    parts = []
    for i, (A, B) in enumerate(zip(table.A, table.B)):
        for m, end in ((A, 0), (B, 1)):
            if is_state_dependent(m):
                e = table.edges[i]
                parts.append(np.asarray(m.matrix(np.asarray(state_col[e[end]], float))).tobytes())
    return b"|".join(parts)


def _package(G, table, vec, energy, undetermined, method, info=None):
    out = HarmonicExtension(assignment_of(table.nodelist, table.dims, vec))
    out.undetermined = undetermined
    out.energy = energy if np.ndim(energy) else float(energy)
    out.method = method
    for key, value in (info or {}).items():
        setattr(out, key, value)
    return out


def _solve(G, table, pinned, values, state, allow_nonunique, tol, method, kw, solver,
           as_vector=False):
    n = int(table.node_start[-1])
    free = complement(n, pinned)
    kind, info = method, {}
    if kind == "auto":
        m = int(table.edge_start[-1])
        if max(m, free.size) <= DENSE_LIMIT:
            kind = "dense"
            info["reason"] = f"small: {m} x {free.size} coordinates"
        elif graph_kind(table) == "expander":  # an LU of an expander fills in: never tried
            kind = "cg"
            info["reason"] = ("the graph is expander-like (a BFS reaches every node within "
                              "4 log2 n + 8 levels): block-Jacobi conjugate gradients")
        else:
            free_counts = np.diff(np.searchsorted(free, table.node_start))
            info["fill_estimate"] = fill = factor_fill_estimate(table, free_counts)
            if fill <= direct_fill_limit(table, free_counts):
                kind = "sparse"
                info["reason"] = f"the LU factor is estimated at {fill:,} entries: small"
            else:
                kind = "amg"
                info["reason"] = (f"the graph is mesh-like and an LU factor would fill in "
                                  f"({fill:,} entries): multigrid-preconditioned conjugate gradients")
    if kind in ("cg", "amg") and not (allow_nonunique and kind == "amg"):
        return _iterate(G, table, free, pinned, values, state, allow_nonunique, tol, kind, kw,
                        solver, info, as_vector)
    delta = coboundary_of(G, table, state, **kw)
    D_f, D_b = delta[:, free], delta[:, pinned]
    rhs = -(D_b @ values)  # we want δ_f x_f ≈ rhs in least squares
    if kind == "dense":
        x_f, N = _dense_solve(D_f.toarray(), rhs, tol)
        used = "dense"
    elif kind == "cg":
        precond = BlockJacobi(D_f, *blocks_of(free, table.node_start))
        x_f, N, used, info["iterations"] = _cg_solve(D_f, rhs, tol, allow_nonunique, precond,
                                                     **solver)
    else:
        x_f, N, used = _sparse_solve(D_f, rhs, tol, allow_nonunique)
    basis = np.zeros((n, N.shape[1]))
    basis[free] = N
    if N.shape[1] and not allow_nonunique:
        raise NonUniqueExtensionError(_nonunique_message(table, basis, at_least=used == "cg"),
                                      basis, _directions(table, basis))
    vec = np.zeros((n,) + values.shape[1:])
    vec[pinned] = values
    vec[free] = x_f
    r = delta @ vec
    energy = 0.5 * np.sum(r * r, axis=0)
    if as_vector:
        return vec, energy, basis, used
    return _package(G, table, vec, energy, basis, used, info)


def _iterate(G, table, free, pinned, values, state, allow_nonunique, tol, kind, kw, solver, info,
             as_vector):
    """PCG on the assembled L[Ω,Ω] (one CSR product per iteration), preconditioned by AMG
    on meshes and block Jacobi on expanders; every right-hand side at once."""
    n = int(table.node_start[-1])
    dims = np.diff(table.node_start)
    pinned_mask = np.zeros(n, dtype=bool)
    pinned_mask[pinned] = True
    pinned_count = np.add.reduceat(pinned_mask, table.node_start[:-1]) if n else np.zeros(0, int)
    whole = (pinned_count == dims) & (dims > 0)
    blocks = None
    if np.all(whole | (pinned_count == 0)):  # whole stalks pinned: assemble the blocks directly
        blocks = laplacian_of(G, table, state, split=~whole, workers=solver["workers"], **kw)
    diagonal = None
    if blocks is not None:
        L_ff, L_fb, L_bb, diagonal = blocks
    else:
        L = laplacian_of(G, table, state, **kw)
        L_f = L[free]
        L_ff, L_fb = L_f[:, free], L_f[:, pinned]
    rhs = -(L_fb @ values)
    sure = not table.has_state_maps and pins_determine(table, uniform_maps(table), whole)
    info["uniqueness"] = "structural" if sure else "probe"
    node_of, local_of = blocks_of(free, table.node_start)
    x_f, k, its, converged = laplace_solve(L_ff, rhs, node_of, local_of, kind, probe=not sure,
                                           diagonal=diagonal, info=info, **solver)
    info["iterations"] = its
    product = info.pop("product")  # L_ff x_f, from the solver's final residual check
    if k is not None:
        # a probe left a component: is it a genuine kernel direction (σ_min threshold)?
        lk = float(np.sqrt(max(k @ (L_ff @ k), 0.0)))
        if lk <= _laplacian_threshold(L_ff, tol):
            if allow_nonunique:
                return _solve(G, table, pinned, values, state, True, tol, "sparse", kw, solver,
                              as_vector)
            basis = np.zeros((n, 1))
            basis[free] = k[:, None]
            raise NonUniqueExtensionError(_nonunique_message(table, basis, at_least=True), basis,
                                          _directions(table, basis))
    vec = np.zeros((n,) + values.shape[1:])
    vec[pinned] = values
    vec[free] = x_f
    if blocks is not None:  # ½ xᵀLx from the blocks: x_fᵀ L_ff x_f + 2 x_fᵀ L_fb x_U + x_Uᵀ L_bb x_U
        Xf, Xb = x_f.reshape(free.size, -1), values.reshape(pinned.size, -1)
        LX = 2 * (L_fb @ Xb)
        LX += product.reshape(LX.shape)  # L_ff X_f + 2 L_fb X_U
        energy = 0.5 * (np.einsum("ij,ij->j", Xf, LX)
                        + np.einsum("ij,ij->j", Xb, L_bb @ Xb))
    else:
        V = vec.reshape(n, -1)
        energy = 0.5 * np.einsum("ij,ij->j", V, L @ V)
    energy = energy if vec.ndim == 2 else energy[0]
    basis = np.zeros((n, 0))
    if as_vector:
        return vec, energy, basis, kind
    return _package(G, table, vec, energy, basis, kind, info)


def _laplacian_threshold(L_ff, tol):
    """The σ_min threshold of δ_Ω from L[Ω,Ω]: sqrt(n eps) ‖L‖₁^½ (as the direct path)."""
    if tol is not None:
        return tol
    n = L_ff.shape[0]
    return np.sqrt(n * np.finfo(float).eps) * np.sqrt(float(abs(L_ff).sum(axis=0).max()))


def _singular_threshold(D_f, n, tol):
    """The σ_min threshold of the direct path: sqrt(n eps) ‖L‖^½ (‖L‖₁ bounded by ‖δ‖₁‖δ‖_∞)."""
    if tol is not None:
        return tol
    scale = spla.norm(D_f, 1) * spla.norm(D_f, np.inf)
    return np.sqrt(n * np.finfo(float).eps) * np.sqrt(scale)


def _cg_solve(D_f, rhs, tol, allow_nonunique, precond, rtol=1e-10, maxiter=None, workers=1):
    """Matrix-free PCG on δ_fᵀδ_f x = δ_fᵀ rhs, with one extra probe column for uniqueness.

    The probe solves L x = L z for a random z. PCG iterates stay in M⁻¹ range(L), so at
    convergence k = z - x lies in ker L and vanishes (for almost every z) exactly when
    the kernel is trivial; k is then tested against the direct path's σ_min threshold.
    """
    m, n = D_f.shape
    D_f = sp.csr_array(D_f)
    DT = D_f.T
    cols = rhs.reshape(m, -1)
    z = np.random.default_rng(0).standard_normal(n)
    B = np.column_stack([DT @ cols, DT @ (D_f @ z)])
    forward = accumulate_product(D_f, workers=workers)
    backward = accumulate_product(D_f, transpose=True)
    edge_buf, node_buf = np.empty((m, B.shape[1])), np.empty((n, B.shape[1]))

    def normal(P):  # δ_fᵀ δ_f P into reused buffers
        edge_buf.fill(0.0)
        forward(P, edge_buf)
        node_buf.fill(0.0)
        backward(edge_buf, node_buf)
        return node_buf

    X, its, relres = pcg(normal, B, precond, rtol=rtol, maxiter=maxiter)
    converged = relres.max() <= np.sqrt(rtol)
    if not converged:
        warnings.warn(f"conjugate gradients stopped after {its} iterations at relative residual "
                      f"{relres.max():.1e} (rtol {rtol:.0e}); raise maxiter or use method='sparse'",
                      ConvergenceWarning, stacklevel=4)
    k = z - X[:, -1]
    knorm = np.linalg.norm(k)
    if (converged and knorm > 1e-8 * np.linalg.norm(z)
            and np.linalg.norm(D_f @ k) <= _singular_threshold(D_f, n, tol) * knorm):
        if allow_nonunique:  # the minimum-norm solution needs the whole kernel
            return (*_sparse_solve(D_f, rhs, tol, True), its)
        return None, (k / knorm)[:, None], "cg", its
    x = X[:, :-1]
    return (x if rhs.ndim == 2 else x[:, 0]), np.zeros((n, 0)), "cg", its


def _dense_solve(D, rhs, tol):
    m, n = D.shape
    if n == 0:
        return np.zeros((0,) + rhs.shape[1:]), np.zeros((0, 0))
    if m == 0:
        return np.zeros((n,) + rhs.shape[1:]), np.eye(n)
    U, s, Vt = la.svd(D, full_matrices=True)
    t = max(m, n) * np.finfo(float).eps * s[0] if tol is None else tol
    r = int(np.sum(s > t))
    # minimum-norm least-squares solution through the pseudo-inverse (no normal equations)
    coef = (U[:, :r].T @ rhs) / (s[:r] if rhs.ndim == 1 else s[:r, None])
    return Vt[:r].T @ coef, Vt[r:].T


def _sparse_solve(D_f, rhs, tol, allow_nonunique):
    L = (D_f.T @ D_f).tocsc()
    n = L.shape[0]
    try:
        lu = spla.splu(L)
        singular = False
    except RuntimeError:  # exactly singular
        singular = True
    if not singular:
        op = spla.LinearOperator(L.shape, matvec=lu.solve, dtype=float)
        try:
            lam = spla.eigsh(L, k=1, sigma=0, OPinv=op, which="LM", v0=np.ones(n),
                             return_eigenvectors=False)[0]
        except Exception:
            lam = 0.0
        scale = spla.norm(L, 1)
        t = (np.sqrt(n * np.finfo(float).eps) * np.sqrt(scale)) if tol is None else tol
        singular = np.sqrt(max(lam, 0.0)) <= t
    if not singular:
        b = D_f.T @ rhs
        return lu.solve(b), np.zeros((n, 0)), "lu"
    k0, _, N, _, _, _, _ = sparse_kernel(D_f, tol, True)
    if not allow_nonunique:
        return None, N, "lsmr"
    cols = rhs if rhs.ndim == 2 else rhs[:, None]
    sol = np.column_stack([spla.lsmr(D_f, cols[:, j], atol=1e-14, btol=1e-14,
                                     maxiter=10 * n)[0] for j in range(cols.shape[1])])
    sol = sol - N @ (N.T @ sol)  # remove any kernel component: the minimum-norm solution
    return (sol if rhs.ndim == 2 else sol[:, 0]), N, "lsmr"


def _directions(table, basis, most=8):
    """One line per free direction (the first ``most``): the nodes it moves."""
    out = []
    ns = table.node_start
    starts = ns[:-1]
    nonempty = np.diff(ns) > 0
    for j in range(min(basis.shape[1], most)):
        mag = np.zeros(len(starts))
        if basis.shape[0]:
            mag[nonempty] = np.maximum.reduceat(np.abs(basis[:, j]), starts[nonempty])
        idx = np.flatnonzero(mag > 1e-8)
        shown = ", ".join(repr(table.nodelist[i]) for i in idx[:6]) + (" ..." if idx.size > 6 else "")
        out.append(f"direction {j}: nodes {shown}")
    return out


def _nonunique_message(table, basis, at_least=False):
    h = basis.shape[1]
    lines = "; ".join(_directions(table, basis)[:4])
    size = f"at least {h} (conjugate gradients found a free direction)" if at_least else f"{h}"
    return (f"the boundary does not determine the extension: H^0(G, B; F) has dimension {size} "
            f"({lines}{'; ...' if h > 4 else ''}). Pin more coordinates, or pass "
            "allow_nonunique=True for the minimum-norm solution")
