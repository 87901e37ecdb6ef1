"""Iterative solvers on the assembled restricted Laplacian L[Ω,Ω], and how to choose them.

The harmonic extension solves ``L[Ω,Ω] x = -L[Ω,U] x_U``. Where a sparse factorisation
would fill in (meshes, expanders) it iterates on the assembled ``L[Ω,Ω]`` -- one CSR
product per iteration -- preconditioned by

* algebraic multigrid on mesh-like graphs, whose diameter grows like a power of n and
  where one-level preconditioners need ~√n iterations: PyAMG's classical (Ruge-Stüben)
  AMG when L[Ω,Ω] is an M-matrix, else its smoothed aggregation with the constant vectors
  of each stalk coordinate as near-kernel candidates;
* the inverse of the node-diagonal blocks (:class:`graphsheaf.solvers.BlockJacobi`) on
  expander-like graphs, whose diameter is O(log n) and whose Laplacians are well
  conditioned.

Uniqueness (H⁰(G, U; F) = 0) is settled structurally where it can be -- a local system
(invertible square maps) in which every connected component has a whole stalk pinned --
and otherwise by a probe column solved alongside (see :func:`solve`).
"""

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components

from ._threads import available_workers, split_rows
from .exceptions import ConvergenceWarning
from .solvers import BlockJacobi, accumulate_product, node_graph, pcg

__all__ = ["graph_kind", "pins_determine", "solve"]


def graph_kind(table):
    """"expander" when the BFS tree from one node has depth at most 4·log₂(n) + 8 (a small
    diameter), else "mesh"."""
    n = len(table.nodelist)
    if n < 2 or not table.tails.size:
        return "expander"
    # the node graph holds both directions of every edge already: a directed BFS on it is
    # the undirected one, without SciPy symmetrising it again (0.16 s against 0.64 s on
    # 10⁶ nodes / 3·10⁶ edges)
    root = int(table.tails[0])
    order, pred = breadth_first_order(node_graph(table), root, directed=True,
                                      return_predecessors=True)
    reached = pred >= 0
    reached[root] = True
    table.derived["bfs_reached"] = reached  # (pins_determine reads the components off it)
    # a BFS visits nodes by nondecreasing depth: the last one is the deepest, and its depth
    # is its predecessor chain's length, walked only as far as the decision needs
    limit = 4 * int(np.ceil(np.log2(n))) + 8
    v, depth = int(order[-1]), 0
    while v != root and depth <= limit:
        v, depth = int(pred[v]), depth + 1
    return "expander" if depth <= limit else "mesh"


def pins_determine(table, maps, pinned_whole):
    """True when the pins certainly determine the extension: every stalk of one dimension
    d, every map an invertible d × d matrix (a section is then fixed by its value at any
    one node), and a whole stalk pinned in every connected component.

    ``maps``: (A, B) stacks or None; ``pinned_whole``: bool per node.
    """
    if maps is None:
        return False
    A, B = maps
    dims = np.asarray(table.dims)
    if dims.size == 0 or A.shape[1] != A.shape[2] or np.any(dims != A.shape[1]) \
            or B.shape[1:] != A.shape[1:]:
        return False
    for X in (A, B):
        Y = X[:1] if X.shape[0] > 1 and X.strides[0] == 0 else X  # one shared map
        if not _invertible(Y):
            return False
    graph, pinned = node_graph(table), pinned_whole
    reached = table.derived.get("bfs_reached")
    if reached is not None:  # graph_kind's BFS found one component: only the nodes it did
        # not reach (usually a few small pieces) need a components pass
        if not np.any(pinned_whole & reached):
            return False
        rest = np.flatnonzero(~reached)
        if rest.size == 0:
            return True
        graph, pinned = graph[rest][:, rest], pinned_whole[rest]
    # (the node graph is symmetric: its strong components are the undirected ones)
    n_comp, labels = connected_components(graph, directed=True, connection="strong")
    covered = np.zeros(n_comp, dtype=bool)
    covered[labels[pinned]] = True
    return bool(covered.all())


def _invertible(Y):
    """True when every square map of the stack Y has |det| > 1e-10 · (largest |entry|)^d;
    the maps split over the cores, each part worked through in cache-sized chunks with the
    d² entries as contiguous rows (3·10⁶ 3×3 maps: 0.21 -> 0.04 s on two threads)."""
    E, d = Y.shape[0], Y.shape[1]
    if not d or not E:
        return True
    ok = np.empty(E, dtype=bool)
    flat = Y.reshape(E, d * d)
    chunk = max(1, 2**17 // (d * d))

    def check(s):
        for a in range(s.start, s.stop, chunk):
            b = min(a + chunk, s.stop)
            F = flat[a:b].T.copy()  # row k: entry k of every map of the chunk
            scale = np.abs(F).max(axis=0)
            det = _det_of_entries(F, d) if d <= 3 else np.linalg.det(Y[a:b])
            ok[a:b] = np.abs(det) > 1e-10 * np.maximum(scale, 1e-300) ** d
    split_rows(check, E, available_workers())
    return bool(ok.all())


def _det_of_entries(F, d):
    """Determinants from the entries of d × d maps (d ≤ 3), F[k] the k-th entries in
    row-major order (closed forms: LAPACK per matrix is several times slower on millions
    of tiny blocks)."""
    if d == 1:
        return F[0].copy()
    if d == 2:
        return F[0] * F[3] - F[1] * F[2]
    # the rule of Sarrus on the nine entries (no cross-product temporaries)
    return (F[0] * (F[4] * F[8] - F[5] * F[7]) - F[1] * (F[3] * F[8] - F[5] * F[6])
            + F[2] * (F[3] * F[7] - F[4] * F[6]))


def solve(L_ff, rhs, node_of, local_of, kind, *, probe=True, rtol=1e-10, maxiter=None, workers=1,
          diagonal=None, info=None):
    """PCG on the assembled L[Ω,Ω] with AMG (``kind="amg"``) or block Jacobi (``"cg"``).

    With ``probe`` a random column z is solved for with right-hand side L z: PCG iterates
    stay in M⁻¹ range(L), so ``k = z - x`` lies in ker L at convergence and vanishes
    (for almost every z) exactly when the kernel is trivial. The products with L[Ω,Ω] run
    on ``workers`` threads when large (:func:`graphsheaf.solvers.accumulate_product`).
    ``diagonal``: L[Ω,Ω]'s node-diagonal blocks (n, d, d) when the caller has them (whole
    stalks of one dimension), else they are read off L[Ω,Ω]. ``info`` (a dict) receives
    the kind of multigrid used (``"multigrid"``). Returns ``(x, kernel direction or None,
    iterations, converged)``; with ``info``, also ``info["product"]``: L[Ω,Ω] X at the
    solution (from the final residual check), shaped like X.
    """
    n = L_ff.shape[0]
    cols = rhs.reshape(n, -1)
    z = None
    if probe:
        z = np.random.default_rng(0).standard_normal(n)
        cols = np.column_stack([cols, L_ff @ z])
    if kind == "amg":
        precond = _amg(L_ff, local_of)
        if info is not None:
            info["multigrid"] = precond.kind
    else:
        precond = BlockJacobi.from_matrix(L_ff, node_of, local_of, blocks=diagonal)
    product = accumulate_product(L_ff, workers=workers)
    buf = np.empty((n, cols.shape[1]))

    def matvec(P):
        if P.shape != buf.shape:
            out = np.zeros(P.shape)
            product(P, out)
            return out
        buf.fill(0.0)
        product(P, buf)
        return buf

    final = None if info is None else np.empty((n, cols.shape[1]))
    X, its, relres = pcg(matvec, cols, precond, rtol=rtol, maxiter=maxiter, product_out=final)
    converged = bool(relres.max() <= np.sqrt(rtol))
    if not converged:
        warnings.warn(f"conjugate gradients stopped after {its} iterations at relative residual "
                      f"{relres.max():.1e} (rtol {rtol:.0e}; preconditioner: "
                      f"{'multigrid' if kind == 'amg' else 'block Jacobi'}); raise maxiter or use "
                      "method='sparse'", ConvergenceWarning, stacklevel=4)
    kernel = None
    if probe:
        k = z - X[:, -1]
        knorm = float(np.linalg.norm(k))
        if converged and knorm > 1e-8 * float(np.linalg.norm(z)):
            kernel = k / knorm
        X = X[:, :-1]
    if info is not None:
        final = final[:, :X.shape[1]]
        info["product"] = final if rhs.ndim == 2 else final[:, 0]
    return (X if rhs.ndim == 2 else X[:, 0]), kernel, its, converged


def _amg(L_ff, local_of):
    """A PyAMG V-cycle as a preconditioner on (n, k) blocks: classical (Ruge-Stüben) AMG
    when L[Ω,Ω] is an M-matrix (no positive entry off the diagonal: graph Laplacians,
    constant sheaves and positive scalar weights), where it converges in fewer and
    cheaper cycles (1000×1000 grid, constant sheaf: 2.5 s against 4.4 s for smoothed
    aggregation, setup and solve, with PyAMG's default options; a constant sheaf of dim 3
    on a 300×300 grid: 0.5 s against 2.3 s); otherwise smoothed aggregation with the
    constant vectors of each stalk coordinate as near-kernel candidates."""
    import pyamg
    A = sp.csr_matrix(L_ff)
    if is_m_matrix(A):
        # forward Gauss-Seidel before, backward after (the V-cycle stays symmetric, as CG
        # needs, with half the sweeps of PyAMG's default symmetric smoothing), direct
        # interpolation and the second RS pass (fewer, cheaper cycles). Setup + solve against
        # PyAMG's defaults on five M-matrices: 1000×1000 grid 1.66 / 2.52 s (9 / 10 cycles),
        # dim-3 constant sheaf on 300×300 0.41 / 0.52 s, 50³ grid 0.33 / 0.47 s, 10⁵-node
        # random geometric graph 0.49 / 0.65 s, random positive weights 0.22 / 0.30 s
        ml = pyamg.ruge_stuben_solver(
            A, CF=("RS", {"second_pass": True}), interpolation="direct",
            presmoother=("gauss_seidel", {"sweep": "forward"}),
            postsmoother=("gauss_seidel", {"sweep": "backward"}))
        kind = "classical (Ruge-Stüben)"
    else:
        d = int(local_of.max()) + 1 if local_of.size else 1
        B = (local_of[:, None] == np.arange(d)[None, :]).astype(float)  # constants per coordinate
        ml = pyamg.smoothed_aggregation_solver(A, B=B, symmetry="symmetric")
        kind = "smoothed aggregation"
    M = ml.aspreconditioner(cycle="V")  # one symmetric V-cycle

    def precond(R):
        if R.ndim == 1:
            return M @ R
        out = np.empty_like(R)
        for j in range(R.shape[1]):
            out[:, j] = M @ R[:, j]
        return out
    precond.kind = kind
    precond.hierarchy = ml
    return precond


def is_m_matrix(A):
    """True when the CSR matrix A has no positive entry off its diagonal (for the
    symmetric positive definite L[Ω,Ω]: an M-matrix)."""
    rows = np.repeat(np.arange(A.shape[0], dtype=A.indices.dtype), np.diff(A.indptr))
    return not np.any((A.data > 0) & (A.indices != rows))
