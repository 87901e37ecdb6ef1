"""Hodge decomposition of cochains and the nearest global section.

On a graph the cochain complex is ``0 -> C⁰ --δ--> C¹ -> 0`` and the Hodge
decomposition (Hansen & Ghrist 2019, §3.2) splits each degree orthogonally:

* ``C⁰ = ker δ ⊕ im δᵀ``: a 0-cochain is its nearest global section (the harmonic part,
  an element of H⁰) plus a co-image part;
* ``C¹ = im δ ⊕ ker δᵀ``: a 1-cochain is a coboundary (the image part, ``δx`` for the
  least-squares potential x) plus a harmonic part, the representative of its class in H¹.
  Graphs have no 2-cells, so the third summand of the general decomposition of C¹ (the
  image of δ₁ᵀ) is zero here.

Both splits come from one least-squares problem with a minimum-norm solution: dense
``lstsq`` up to :data:`DENSE_LIMIT` coordinates, LSMR on the sparse δ above.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg as spla

from .exceptions import SheafError
from .layout import to_assignment, to_vector
from .linalg import coboundary_of, edge_table

__all__ = ["HodgeDecomposition", "NearestSection", "hodge_decomposition", "nearest_section"]

#: δ with at most this many rows and columns is solved densely
DENSE_LIMIT = 3000


def _min_norm_solve(D, Y, atol):
    """Minimum-norm least-squares solution X of ``D X ≈ Y`` (Y with columns)."""
    m, n = D.shape
    if m == 0 or n == 0:
        return np.zeros((n, Y.shape[1]), dtype=np.result_type(D.dtype, Y.dtype))
    if max(m, n) <= DENSE_LIMIT:
        return np.linalg.lstsq(D.toarray(), Y, rcond=None)[0]
    out = np.empty((n, Y.shape[1]), dtype=np.result_type(D.dtype, Y.dtype))
    for j in range(Y.shape[1]):  # one Krylov solve per right-hand side
        out[:, j] = spla.lsmr(D, Y[:, j], atol=atol, btol=atol, maxiter=20 * (m + n))[0]
    return out


@dataclass(frozen=True)
class HodgeDecomposition:
    """Result of :func:`hodge_decomposition`: orthogonal parts summing to the input.

    Attributes
    ----------
    degree : int
    image : ndarray or None
        Degree 1: the coboundary part ``δ potential`` (in ``im δ``).
    harmonic : ndarray
        Degree 1: the part in ``ker δᵀ`` (H¹'s representative); degree 0: the nearest
        global section (in ``ker δ``).
    coimage : ndarray or None
        Degree 0: the part in ``im δᵀ``.
    potential : ndarray or None
        Degree 1: the minimum-norm 0-cochain with ``δ potential = image``.
    """

    degree: int
    harmonic: np.ndarray
    image: np.ndarray = None
    coimage: np.ndarray = None
    potential: np.ndarray = None

    def __repr__(self):
        parts = {"image": self.image, "harmonic": self.harmonic, "coimage": self.coimage}
        norms = ", ".join(f"|{k}|={np.linalg.norm(v):.3g}" for k, v in parts.items() if v is not None)
        return f"HodgeDecomposition(degree={self.degree}, {norms})"


def hodge_decomposition(G, cochain, degree=1, *, state=None, atol=1e-12, dim="dim",
                        source_map="source_map", target_map="target_map"):
    """Split a cochain into its orthogonal Hodge parts.

    Parameters
    ----------
    G : networkx.DiGraph or MultiDiGraph
        A sheaf.
    cochain : array_like
        A 1-cochain (degree 1; length dim C¹, edges in ``G.edges`` order) or a 0-cochain
        (degree 0; length dim C⁰ or an assignment dict). A 2-D array is a batch of
        cochains as columns.
    degree : {1, 0}
    atol : float
        Tolerance of the sparse least-squares solver (above the dense size limit).

    Returns
    -------
    HodgeDecomposition
        Degree 1: ``image + harmonic == cochain``; degree 0: ``harmonic + coimage ==
        cochain``; the parts are orthogonal.

    Examples
    --------
    Flow around a triangle is purely harmonic; a gradient has no harmonic part:

    >>> import networkx as nx, numpy as np, graphsheaf as gs
    >>> G = gs.constant_sheaf(nx.DiGraph([(0, 1), (1, 2), (2, 0)]))
    >>> h = gs.hodge_decomposition(G, [1.0, 1.0, 1.0])
    >>> np.allclose(h.harmonic, 1.0), np.allclose(h.image, 0.0)
    (True, True)
    """
    if degree not in (0, 1):
        raise ValueError(f"degree must be 0 or 1 (a graph has no 2-cells), got {degree!r}")
    table = edge_table(G, dim=dim, source_map=source_map, target_map=target_map)
    D = coboundary_of(G, table, state, dim, source_map, target_map)
    if degree == 0:
        x = to_vector(G, cochain, dim=dim) if isinstance(cochain, dict) else np.asarray(cochain)
        X = _columns(x, D.shape[1], "0-cochain")
        co = _min_norm_solve(D, D @ X, atol)  # the part of x orthogonal to ker δ
        shape = x.shape
        return HodgeDecomposition(0, harmonic=(X - co).reshape(shape), coimage=co.reshape(shape))
    y = np.asarray(cochain)
    Y = _columns(y, D.shape[0], "1-cochain")
    P = _min_norm_solve(D, Y, atol)
    image = D @ P
    return HodgeDecomposition(1, harmonic=(Y - image).reshape(y.shape), image=image.reshape(y.shape),
                              potential=P.reshape((D.shape[1],) + y.shape[1:]))


def _columns(x, n, what):
    if x.ndim not in (1, 2) or x.shape[0] != n:
        raise SheafError(f"the {what} has shape {x.shape}; expected ({n},) or ({n}, k)")
    if not np.all(np.isfinite(x)):
        raise SheafError(f"the {what} has non-finite entries")
    return x.reshape(n, 1) if x.ndim == 1 else x


@dataclass(frozen=True)
class NearestSection:
    """Result of :func:`nearest_section`.

    Attributes
    ----------
    section : dict
        Node -> stalk value of the nearest global section.
    vector : ndarray
        The same as a 0-cochain.
    distance : float
        ``‖x − section‖`` (Euclidean over all coordinates): 0 exactly when x is a section.
    """

    section: dict
    vector: np.ndarray
    distance: float

    def __repr__(self):
        return f"NearestSection({len(self.section)} nodes, distance={self.distance:.6g})"


def nearest_section(G, x, *, state=None, atol=1e-12, dim="dim", source_map="source_map",
                    target_map="target_map"):
    """Return the global section nearest to ``x``: its orthogonal projection onto H⁰.

    Parameters
    ----------
    G : networkx.DiGraph or MultiDiGraph
        A sheaf.
    x : dict or array_like
        An assignment node -> value, or a 0-cochain vector (``G``'s node order).

    Returns
    -------
    NearestSection
        ``section``, ``vector`` and ``distance``.

    Examples
    --------
    On the constant sheaf the nearest section is the mean (per component):

    >>> import networkx as nx, graphsheaf as gs
    >>> s = gs.nearest_section(gs.constant_sheaf(nx.path_graph(3)), {0: [0.0], 1: [1.0], 2: [5.0]})
    >>> s.section[0].tolist(), round(s.distance, 6)
    ([2.0], 3.741657)
    """
    h = hodge_decomposition(G, x, 0, state=state, atol=atol, dim=dim, source_map=source_map,
                            target_map=target_map)
    vec = np.asarray(h.harmonic)
    return NearestSection(to_assignment(G, vec, dim=dim), vec,
                          float(np.linalg.norm(np.asarray(h.coimage))))
