"""Morphisms of sheaves on one graph, their induced maps on cohomology, and the kernel,
image and cokernel sheaves.

A morphism φ: F -> G of sheaves on the same graph is a linear map per vertex,
``φ_v: F(v) -> G(v)``, and per edge, ``φ_e: F(e) -> G(e)``, commuting with the
restriction maps: ``G_{v◁e} φ_v = φ_e F_{v◁e}``. Stacked into block-diagonal matrices
V (vertices) and E (edges) this is ``δ_G V = E δ_F``: φ is a map of cochain complexes
and induces maps on H⁰ and H¹ (Curry 2014, §4.1; CellularSheaves.jl's ``SheafMorphism``,
PySheaf's ``inducedMap``).
"""

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from .constructions import edge_maps as dense_edge_maps
from .constructions import empty_like
from .exceptions import SheafError
from .layout import edge_offsets, stalk_offsets
from .linalg import coboundary_matrix
from .sheaves import describe_edge, iter_edges, validate_sheaf

__all__ = ["SheafMorphism", "induced_map"]


def _block_diagonal(blocks, rows_at, cols_at, shape):
    """Sparse matrix with ``blocks[k]`` at rows ``rows_at[k]``, columns ``cols_at[k]``."""
    r, c, d = [], [], []
    for M, rs, cs in zip(blocks, rows_at, cols_at):
        M = sp.coo_array(np.asarray(M))
        r.append(M.row + rs.start)
        c.append(M.col + cs.start)
        d.append(M.data)
    if not r:
        return sp.csr_array(shape)
    data = np.concatenate(d)
    return sp.coo_array((data, (np.concatenate(r), np.concatenate(c))), shape=shape).tocsr()


def _finite(M, what):
    try:
        M = np.asarray(M)
        if M.dtype.kind not in "biufc":
            M = M.astype(float)
    except (TypeError, ValueError):
        raise SheafError(f"SheafMorphism: {what} is not a numeric matrix") from None
    if M.size and not np.all(np.isfinite(M)):
        raise SheafError(f"SheafMorphism: {what} has entries that are not finite")
    return M


class SheafMorphism:
    """A morphism φ: F -> G of sheaves on the same graph.

    Parameters
    ----------
    source, target : networkx.DiGraph or MultiDiGraph
        Sheaves F and G on the same nodes and edges (same orientation).
    node_maps : dict
        Node v -> matrix of shape ``(dim G(v), dim F(v))``.
    edge_maps : dict, optional
        Edge -> matrix of shape ``(dim G(e), dim F(e))``. When omitted, each edge map is
        the least-squares (minimum-norm) solution of ``φ_e [F_u | F_v] = [G_u φ_u | G_v φ_v]``:
        determined by the node maps whenever F's two maps at that edge jointly span its
        stalk. Check the result with :meth:`is_valid`.
    tol : float, default 1e-9
        Tolerance of :meth:`is_valid`, relative to the size of the maps.

    Examples
    --------
    Multiplying every stalk by 2 is a morphism of the constant sheaf to itself:

    >>> import networkx as nx, numpy as np, graphsheaf as gs
    >>> F = gs.constant_sheaf(nx.cycle_graph(4))
    >>> phi = gs.SheafMorphism(F, F, {v: 2 * np.eye(1) for v in F})
    >>> phi.is_valid(), gs.induced_map(phi, 0).round(12).tolist()
    (True, [[2.0]])
    """

    def __init__(self, source, target, node_maps, edge_maps=None, *, tol=1e-9):
        validate_sheaf(source)
        validate_sheaf(target)
        self.source, self.target, self.tol = source, target, tol
        if set(source) != set(target) or set(source.edges) != set(target.edges):
            diff = (set(source) ^ set(target)) or (set(source.edges) ^ set(target.edges))
            raise SheafError(f"SheafMorphism: source and target differ at {next(iter(diff))!r}; a "
                             "morphism needs sheaves on the same graph")
        self.node_maps = {}
        for v in source:
            if v not in node_maps:
                raise SheafError(f"SheafMorphism: node_maps has no map for node {v!r}")
            M = _finite(node_maps[v], f"the map at node {v!r}")
            want = (target.nodes[v]["dim"], source.nodes[v]["dim"])
            if M.shape != want:
                raise SheafError(f"SheafMorphism: the map at node {v!r} has shape {M.shape}, "
                                 f"expected {want} (dim G(v), dim F(v))")
            self.node_maps[v] = M
        src = {e: (A, B) for e, _, A, B in dense_edge_maps(source)}
        tgt = {e: (A, B) for e, _, A, B in dense_edge_maps(target)}
        self.edge_maps = {}
        for e in source.edges:
            (Af, Bf), (Ag, Bg) = src[e], tgt[e]
            if edge_maps is not None:
                if e not in edge_maps:
                    raise SheafError(f"SheafMorphism: edge_maps has no map for {describe_edge(e)}")
                M = _finite(edge_maps[e], f"the map at {describe_edge(e)}")
                if M.shape != (Ag.shape[0], Af.shape[0]):
                    raise SheafError(f"SheafMorphism: the map at {describe_edge(e)} has shape {M.shape}, "
                                     f"expected {(Ag.shape[0], Af.shape[0])}")
            else:
                lhs = np.hstack([Af, Bf])
                rhs = np.hstack([Ag @ self.node_maps[e[0]], Bg @ self.node_maps[e[1]]])
                M = rhs @ np.linalg.pinv(lhs) if lhs.size else np.zeros((Ag.shape[0], Af.shape[0]))
            self.edge_maps[e] = M

    def __repr__(self):
        return (f"SheafMorphism({self.source.number_of_nodes()} nodes, "
                f"{self.source.number_of_edges()} edges)")

    @classmethod
    def identity(cls, F):
        """The identity morphism of F."""
        return cls(F, F, {v: np.eye(F.nodes[v]["dim"]) for v in F},
                   {e: np.eye(len(d["source_map"])) for e, d in iter_edges(F)})

    def vertex_matrix(self):
        """V: C⁰(F) -> C⁰(G), block diagonal (sparse), in each sheaf's own node order."""
        so, to = stalk_offsets(self.source), stalk_offsets(self.target)
        nodes = list(self.source)
        shape = (to[list(self.target)[-1]].stop if to else 0, so[nodes[-1]].stop if so else 0)
        return _block_diagonal([self.node_maps[v] for v in nodes], [to[v] for v in nodes],
                               [so[v] for v in nodes], shape)

    def edge_matrix(self):
        """E: C¹(F) -> C¹(G), block diagonal (sparse), in each sheaf's own edge order."""
        so, to = edge_offsets(self.source), edge_offsets(self.target)
        edges = list(self.source.edges)
        n_t = max((s.stop for s in to.values()), default=0)
        n_s = max((s.stop for s in so.values()), default=0)
        return _block_diagonal([self.edge_maps[e] for e in edges], [to[e] for e in edges],
                               [so[e] for e in edges], (n_t, n_s))

    def mismatch(self):
        """Per edge, the largest entry of ``δ_G V − E δ_F`` on its rows (dict edge -> float)."""
        D = self.target_coboundary() @ self.vertex_matrix() - self.edge_matrix() @ self.source_coboundary()
        D = sp.csr_array(D)
        row_max = np.zeros(D.shape[0])
        if D.nnz:
            np.maximum.at(row_max, np.repeat(np.arange(D.shape[0]), np.diff(D.indptr)), np.abs(D.data))
        return {e: float(row_max[s].max()) if s.stop > s.start else 0.0
                for e, s in edge_offsets(self.target).items()}

    def source_coboundary(self):
        return coboundary_matrix(self.source)

    def target_coboundary(self):
        return coboundary_matrix(self.target)

    def is_valid(self):
        """True when φ commutes with the restriction maps (``δ_G V = E δ_F``) to ``tol``."""
        try:
            self.check()
        except SheafError:
            return False
        return True

    def check(self):
        """Raise :class:`SheafError` naming the first edge where φ does not commute."""
        scale = max([1.0] + [float(np.abs(M).max()) for M in self.node_maps.values() if M.size])
        for e, err in self.mismatch().items():
            if err > self.tol * scale:
                raise SheafError(f"SheafMorphism: does not commute at {describe_edge(e)}: "
                                 f"|δ_G V − E δ_F| = {err:.3g} on its rows")

    def compose(self, other):
        """``self ∘ other`` (apply ``other`` first)."""
        if other.target is not self.source:
            raise SheafError("compose: the first morphism's target is not the second's source")
        return SheafMorphism(other.source, self.target,
                             {v: self.node_maps[v] @ other.node_maps[v] for v in self.node_maps},
                             {e: self.edge_maps[e] @ other.edge_maps[e] for e in self.edge_maps},
                             tol=max(self.tol, other.tol))

    __matmul__ = compose

    def _subquotient(self, kind):
        """The kernel, image or cokernel sheaf and its canonical morphism."""
        F, G = self.source, self.target
        base = F if kind == "kernel" else G
        S = empty_like(base)
        bases = {}

        def basis(M):
            if kind == "kernel":
                return la.null_space(M) if M.size else np.eye(M.shape[1])
            if kind == "image":
                return la.orth(M) if M.size else np.zeros((M.shape[0], 0))
            return la.null_space(M.T) if M.size else np.eye(M.shape[0])  # cokernel

        for v, data in base.nodes(data=True):
            bases[v] = basis(self.node_maps[v])
            S.add_node(v, **dict(data, dim=int(bases[v].shape[1])))
        maps = {e: (A, B) for e, _, A, B in dense_edge_maps(base)}
        edge_bases = {}
        for e, data in iter_edges(base):
            Q = basis(self.edge_maps[e])
            edge_bases[e] = Q
            A, B = maps[e]
            attrs = dict(data, source_map=Q.T @ A @ bases[e[0]], target_map=Q.T @ B @ bases[e[1]])
            if len(e) == 3:
                S.add_edge(e[0], e[1], key=e[2], **attrs)
            else:
                S.add_edge(e[0], e[1], **attrs)
        if kind == "cokernel":  # the projection G -> coker
            return SheafMorphism(G, S, {v: Q.T for v, Q in bases.items()},
                                 {e: Q.T for e, Q in edge_bases.items()}, tol=self.tol)
        return SheafMorphism(S, base, bases, edge_bases, tol=self.tol)  # the inclusion

    def kernel(self):
        """The kernel sheaf ``ker φ`` with its inclusion into F (a SheafMorphism ker φ -> F).

        Stalks are ``ker φ_v`` and ``ker φ_e`` with orthonormal bases; the restriction maps
        are F's, which carry ``ker φ_v`` into ``ker φ_e`` because φ commutes with them.
        """
        return self._subquotient("kernel")

    def image(self):
        """The image sheaf ``im φ`` with its inclusion into G (a SheafMorphism im φ -> G)."""
        return self._subquotient("image")

    def cokernel(self):
        """The cokernel sheaf ``G / im φ`` with the projection G -> coker φ.

        Stalks are the orthogonal complements of ``im φ_v`` (and ``im φ_e``), standing for
        the quotients; maps are G's followed by the orthogonal projection, well defined
        because G's maps carry ``im φ_v`` into ``im φ_e``.
        """
        return self._subquotient("cokernel")


def induced_map(morphism, degree, *, source_cohomology=None, target_cohomology=None):
    """Return the matrix of the map ``H^k(F) -> H^k(G)`` induced by a sheaf morphism.

    Coordinates are those of the orthonormal bases of :func:`graphsheaf.cohomology`:
    ``h0_basis`` (global sections) for degree 0 and ``h1_basis`` (harmonic 1-cochains, one
    per class) for degree 1. In degree 1 the image cochain is projected onto G's harmonic
    cochains, which picks its class's representative.

    Parameters
    ----------
    morphism : SheafMorphism
    degree : {0, 1}
    source_cohomology, target_cohomology : Cohomology, optional
        Results of ``gs.cohomology(..., bases=True)`` to take the bases from (computed
        when omitted).

    Returns
    -------
    ndarray of shape (h^k(G), h^k(F))

    Examples
    --------
    Projecting the 2-dimensional constant sheaf on a triangle onto its first coordinate
    maps its two loops (H¹ = ℝ²) onto the one loop of the scalar constant sheaf:

    >>> import networkx as nx, numpy as np, graphsheaf as gs
    >>> F = gs.constant_sheaf(nx.cycle_graph(3), dim=2)
    >>> G = gs.constant_sheaf(nx.cycle_graph(3), dim=1)
    >>> phi = gs.SheafMorphism(F, G, {v: np.array([[1.0, 0.0]]) for v in F})
    >>> M = gs.induced_map(phi, 1)
    >>> M.shape, int(np.linalg.matrix_rank(M))
    ((1, 2), 1)
    """
    from .cohomology import cohomology

    if degree not in (0, 1):
        raise ValueError(f"degree must be 0 or 1 (a graph has no higher cohomology), got {degree!r}")
    cf = source_cohomology or cohomology(morphism.source, bases=True)
    cg = target_cohomology or cohomology(morphism.target, bases=True)
    if cf.h0_basis is None or cg.h0_basis is None:
        raise SheafError("induced_map needs cohomology computed with bases=True")
    if degree == 0:
        return cg.h0_basis.T @ (morphism.vertex_matrix() @ cf.h0_basis)
    return cg.h1_basis.T @ (morphism.edge_matrix() @ cf.h1_basis)
