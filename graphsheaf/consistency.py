"""Consistency radius of a (partial) assignment (Robinson, *Topological Signal Processing*,
2014; Robinson, "Sheaves are the canonical data structure for sensor integration", 2017).

An assignment gives values on some vertices and, optionally, some edges. For every
face relation ``v ◁ e`` with both ends assigned, the discrepancy is ``‖F_{v◁e} a(v) − a(e)‖``;
an edge with no value but both vertices assigned is completed optimally, which costs
``½‖F_{u◁e} a(u) − F_{v◁e} a(v)‖`` in every norm (the midpoint is optimal by the triangle
inequality). Relations touching an unassigned vertex are not counted. The consistency
radius is the largest discrepancy (or their ``p``-norm with ``combine=p``).

PySheaf's ``ComputeConsistencyRadius`` compares, at each cell, its own value with every
value propagated to it, and by default also compares the propagated values pairwise;
for a graph sheaf without edge values that counts ``‖F_{u◁e} a(u) − F_{v◁e} a(v)‖``
(twice ours). ``edge_completion="pairwise"`` gives that convention.
"""

import numpy as np

from .constructions import edge_maps
from .exceptions import SheafError
from .sheaves import edge_label, validate_sheaf

__all__ = ["consistency_radius"]


def _value(assignment, key, d, what):
    x = np.asarray(assignment[key], dtype=float).reshape(-1)
    if x.size != d:
        raise SheafError(f"consistency_radius: the value at {what} has {x.size} entries, "
                         f"its stalk has dimension {d}")
    if not np.all(np.isfinite(x)):
        raise SheafError(f"consistency_radius: the value at {what} is not finite")
    return x


def _norm(x, ord):
    return float(np.linalg.norm(x, ord=ord)) if x.size else 0.0


def consistency_radius(G, assignment, *, edge_values=None, norm=np.inf, combine=np.inf,
                       edge_completion="optimal", per_edge=False, dim="dim",
                       source_map="source_map", target_map="target_map"):
    """Return the consistency radius of a partial assignment to a sheaf.

    Parameters
    ----------
    G : networkx.DiGraph or MultiDiGraph
        A sheaf with constant maps.
    assignment : dict
        Node -> stalk value, for the vertices that carry data (others are left out).
    edge_values : dict, optional
        Edge -> edge-stalk value, for edges that carry data.
    norm : float, default inf
        The norm in each stalk (``ord`` of ``numpy.linalg.norm``): inf is Robinson's
        sup-norm setting, 2 the Euclidean one.
    combine : float, default inf
        How per-relation discrepancies combine: inf takes the largest (the consistency
        radius), 2 gives ``sqrt(Σ discrepancy²)``.
    edge_completion : {"optimal", "pairwise"}
        How an edge without a value counts: completed optimally (half the difference of
        its two ends' images) or, as PySheaf does, the full difference.
    per_edge : bool, default False
        Also return a dict edge -> the largest discrepancy among its relations.

    Returns
    -------
    float, or (float, dict) with ``per_edge=True``
        0.0 when nothing can be compared.

    Examples
    --------
    Two sensors on a constant sheaf reading 1.0 and 1.4:

    >>> import networkx as nx, graphsheaf as gs
    >>> F = gs.constant_sheaf(nx.path_graph(2))
    >>> round(gs.consistency_radius(F, {0: [1.0], 1: [1.4]}), 6)
    0.2
    >>> round(gs.consistency_radius(F, {0: [1.0], 1: [1.4]}, edge_values={(0, 1): [1.0]}), 6)
    0.4
    """
    if edge_completion not in ("optimal", "pairwise"):
        raise ValueError(f"edge_completion must be 'optimal' or 'pairwise', got {edge_completion!r}")
    validate_sheaf(G, dim=dim, source_map=source_map, target_map=target_map)
    unknown = [v for v in assignment if v not in G]
    if unknown:
        raise SheafError(f"consistency_radius: the assignment names {unknown[0]!r}, not a node")
    edge_values = {} if edge_values is None else \
        {(tuple(e) if not isinstance(e, tuple) else e): x for e, x in edge_values.items()}
    edges = set(G.edges)
    bad = [e for e in edge_values if e not in edges]
    if bad:
        raise SheafError(f"consistency_radius: edge_values names {bad[0]!r}, not an edge")
    node_val = {v: _value(assignment, v, int(G.nodes[v][dim]), f"node {v!r}") for v in assignment}
    half = 0.5 if edge_completion == "optimal" else 1.0
    discrepancies, worst = [], {}
    for e, _, A, B in edge_maps(G, source_map, target_map):  # state-dependent maps are refused
        u, v = e[0], e[1]
        seen = [A @ node_val[u] if u in node_val else None, B @ node_val[v] if v in node_val else None]
        if e in edge_values:
            val = _value(edge_values, e, A.shape[0], f"edge {edge_label(e)}")
            here = [_norm(s - val, norm) for s in seen if s is not None]
        elif seen[0] is not None and seen[1] is not None:
            here = [half * _norm(seen[0] - seen[1], norm)]
        else:
            here = []
        if here:
            discrepancies.extend(here)
            worst[e] = float(max(here))
    d = np.asarray(discrepancies, dtype=float)
    radius = float(np.linalg.norm(d, ord=combine)) if d.size else 0.0
    return (radius, worst) if per_edge else radius
