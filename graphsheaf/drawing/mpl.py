"""Matplotlib pictures of sheaves, in networkx's style: ``gs.draw(S, pos)`` draws a sheaf
on node positions with stalk values and edge energies, ``gs.draw_neural(S, X)`` draws a
neural sheaf as the paper's figures do (layers left to right, one glyph per stalk
coordinate). matplotlib is an optional extra (``pip install graphsheaf[plot]``).
"""

import networkx as nx
import numpy as np

from ..exceptions import SheafError
from ..layout import boundary_coordinates, stalk_offsets, to_assignment
from ..sheaves import iter_edges, validate_sheaf
from .labels import map_text, pin_status, space, structural_pins

__all__ = ["draw", "draw_neural"]

PINNED_RING = "#c0392b"
PARTIAL_RING = "#e6a817"


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("drawing with matplotlib needs the 'plot' extra: "
                          "pip install graphsheaf[plot]") from None
    return plt


def _node_scalars(G, values, coordinate, dim):
    """Per node, the number that colours it: the value itself for 1-D stalks, else the
    chosen coordinate or the stalk's norm (mean over a batch)."""
    if values is None:
        return None, None
    if not isinstance(values, dict):
        values = to_assignment(G, values, dim=dim)
    out = {}
    for v in G:
        if v not in values:
            continue
        x = np.asarray(values[v])
        if x.ndim == 2:  # a batch: its mean
            x = x.mean(axis=1)
        if np.iscomplexobj(x):
            x = np.abs(x)
        if x.size == 0:
            continue
        if coordinate is not None:
            if coordinate >= x.size:
                raise SheafError(f"draw: node {v!r} has no coordinate {coordinate} (dim {x.size})")
            out[v] = float(x[coordinate])
        else:
            out[v] = float(x[0]) if x.size == 1 else float(np.linalg.norm(x))
    signed = coordinate is not None or all(
        np.asarray(values[v]).shape[:1] == (1,) for v in out)
    label = ("stalk value" if coordinate is None else f"coordinate {coordinate}") if signed \
        else "stalk norm ‖x_v‖"
    return out, label


def draw(S, pos=None, *, values=None, energies=None, pinned=None, ax=None, coordinate=None,
         cmap="viridis", edge_cmap="Reds", node_size=420, with_labels=True, show_maps=False,
         arrows=True, legend=True, colorbar=True, title=None, dim="dim", source_map="source_map",
         target_map="target_map"):
    """Draw a sheaf with matplotlib on node positions, like ``nx.draw(G, pos)``.

    Parameters
    ----------
    S : networkx.DiGraph or MultiDiGraph
        A sheaf.
    pos : dict node -> (x, y), optional
        Positions, e.g. from ``nx.spring_layout``; by default a spring layout (seed 0).
    values : dict node -> value or a 0-cochain vector, optional
        Stalk values (an assignment, a harmonic extension, a diffusion state). Nodes are
        coloured by the value (1-D stalks), by ``coordinate``, or by the stalk norm.
    energies : dict edge -> float, optional
        Per-edge energies (e.g. :func:`graphsheaf.edge_energies`); edges are coloured
        with ``edge_cmap`` and widened by their share of the largest.
    pinned : boundary spec, optional
        Pinned nodes or coordinates (joined with ``S.graph["pinned"]``): fully pinned nodes
        get a red ring, partly pinned ones an amber ring.
    ax : matplotlib Axes, optional
    show_maps : bool, default False
        Label edges with their maps ("A | B", written out up to 3 × 3, with signs), so a
        −1 twist is visible.
    arrows : bool, default True
        Draw the edge orientation (it fixes the sign of δ, not L).
    legend, colorbar : bool, default True

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import networkx as nx, graphsheaf as gs
    >>> S = gs.constant_sheaf(nx.cycle_graph(5))
    >>> x = gs.harmonic_extension(S, {0: [1.0], 2: [-1.0]})
    >>> ax = gs.draw(S, values=x, energies=gs.edge_energies(S, x), pinned=[0, 2])
    >>> len(ax.patches) == S.number_of_edges()    # one arrow per edge
    True
    """
    plt = _pyplot()
    validate_sheaf(S, dim=dim, source_map=source_map, target_map=target_map)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    if pos is None:
        pos = nx.spring_layout(S.to_undirected(as_view=True), seed=0)
    missing = [v for v in S if v not in pos]
    if missing:
        raise SheafError(f"draw: pos has no position for node {missing[0]!r}")
    scalars, value_label = _node_scalars(S, values, coordinate, dim)
    nodes = list(S)
    colors = None
    vmin = vmax = None
    if scalars:
        colors = [scalars.get(v, np.nan) for v in nodes]
        finite = np.array([c for c in colors if np.isfinite(c)])
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if value_label != "stalk norm ‖x_v‖" and vmin < 0 < vmax:  # signed: centre zero
            vmin, vmax = -max(-vmin, vmax), max(-vmin, vmax)
    status = pin_status(S, pinned, dim)
    ring = [PINNED_RING if status.get(v) == "full" else PARTIAL_RING if status.get(v) == "partial"
            else "#333333" for v in nodes]
    width = [3.0 if v in status else 0.8 for v in nodes]
    art = nx.draw_networkx_nodes(S, pos, nodelist=nodes, node_color=colors if colors else "#dddddd",
                                 cmap=cmap if colors else None, vmin=vmin, vmax=vmax,
                                 node_size=node_size, edgecolors=ring, linewidths=width, ax=ax)
    edges = [e for e, _ in iter_edges(S)]
    multi = S.is_multigraph()
    e_colors, e_widths, top = "#555555", 1.5, 0.0
    if energies is not None:
        vals = np.array([float(np.mean(energies.get(e, 0.0))) for e in edges])
        top = float(np.nanmax(vals)) if vals.size and np.isfinite(vals).any() else 0.0
        share = vals / top if top > 0 else np.zeros_like(vals)
        e_colors = [plt.get_cmap(edge_cmap)(0.25 + 0.75 * s) for s in share]
        e_widths = list(1.0 + 4.0 * share)
    kw = dict(ax=ax, arrows=arrows, node_size=node_size, edge_color=e_colors, width=e_widths)
    if arrows:
        kw.update(arrowstyle="-|>", arrowsize=12)
    if multi:  # parallel edges bend apart
        kw["connectionstyle"] = [f"arc3,rad={r}" for r in (0.0, 0.25, -0.25, 0.45, -0.45)]
        nx.draw_networkx_edges(S, pos, edgelist=edges, **kw)
    else:
        nx.draw_networkx_edges(S, pos, edgelist=edges, **kw)
    if with_labels:
        from matplotlib import patheffects
        texts = nx.draw_networkx_labels(S, pos, labels={v: str(v) for v in nodes}, font_size=8,
                                        font_color="white", ax=ax)
        for t in texts.values():  # readable on light and dark fills alike
            t.set_path_effects([patheffects.withStroke(linewidth=2.2, foreground="black")])
    if show_maps:
        text = {(e[0], e[1]): f"{map_text(d[source_map])} | {map_text(d[target_map])}"
                for e, d in iter_edges(S)}
        nx.draw_networkx_edge_labels(S if not multi else nx.DiGraph(S), pos, edge_labels=text,
                                     font_size=7, ax=ax, rotate=False)
    if colorbar and colors:
        ax.figure.colorbar(art, ax=ax, shrink=0.75, label=value_label)
    if colorbar and energies is not None and top > 0:
        sm = plt.cm.ScalarMappable(cmap=edge_cmap, norm=plt.Normalize(0, top))
        ax.figure.colorbar(sm, ax=ax, shrink=0.6, pad=0.02, orientation="horizontal",
                           label="edge energy ½‖(δx)_e‖²")
    if legend and status:
        from matplotlib.lines import Line2D
        kinds = set(status.values())
        handles = [Line2D([], [], marker="o", ls="", mfc="white", mec=color, mew=3, markersize=10,
                          label=text)
                   for kind, color, text in (("full", PINNED_RING, "pinned"),
                                             ("partial", PARTIAL_RING, "partly pinned"))
                   if kind in kinds]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, 1.0), fontsize=8,
                  frameon=False)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def _neural_columns(S):
    """The vertices of a neural sheaf in network order (input, then z/a per layer, output)."""
    order = list(nx.topological_sort(S))
    layer = {v: S.nodes[v].get("layer", 0) for v in order}
    return sorted(order, key=lambda v: (layer[v], order.index(v)))


def draw_neural(S, X=None, *, state=None, pinned=None, ax=None, discord=True, cmap="coolwarm",
                edge_cmap="Reds", title=None):
    """Draw a neural sheaf as the paper's figures do: vertices left to right in network
    order, each a column of small glyphs (one per stalk coordinate) coloured by its value.

    Parameters
    ----------
    S : neural sheaf (``gn.neural_sheaf``, ``gn.from_torch``, ...)
    X : array_like, optional
        One input (shape (n_in,) or (n_in, 1)); the glyphs then show the forward pass.
    state : dict node -> value, optional
        Any assignment instead (e.g. a pinned equilibrium's ``state``); edges are then
        coloured by their discord ‖(δc)_e‖² when ``discord`` is True.
    pinned : boundary spec, optional
        Coordinates pinned besides the constant ones (e.g. the ``pins`` given to
        ``gn.equilibrium``): red rings. What the builder fixes (the input and the constant
        1s that carry the biases) gets amber rings.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, graphsheaf as gs, graphsheaf.neural as gn
    >>> S = gn.neural_sheaf(*gn.init_weights([2, 4, 1], rng=0))
    >>> ax = gs.draw_neural(S, X=np.array([0.5, -1.0]))
    >>> len(ax.collections[-1].get_offsets()) == sum(d for _, d in S.nodes(data="dim"))
    True
    """
    plt = _pyplot()
    from ..neural import discord as neural_discord
    from ..neural import forward

    if X is not None and state is None:
        state = forward(S, np.asarray(X, dtype=float).reshape(-1, 1))
    cols = _neural_columns(S)
    pins = structural_pins(S)
    fixed = set(boundary_coordinates(S, pins).index.tolist()) if pins is not None else set()
    held = set(boundary_coordinates(S, pinned).index.tolist()) if pinned is not None else set()
    offsets = stalk_offsets(S)
    if ax is None:
        tallest = max(int(S.nodes[v]["dim"]) for v in cols)
        _, ax = plt.subplots(figsize=(1.3 * len(cols) + 1.5, 0.35 * tallest + 1.6))
    centre = {}
    values = []
    glyphs = []
    for i, v in enumerate(cols):
        d = int(S.nodes[v]["dim"])
        ys = (np.arange(d) - (d - 1) / 2)[::-1]
        centre[v] = (float(i), 0.0, (ys.min() if d else 0.0), (ys.max() if d else 0.0))
        val = None if state is None else np.asarray(state[v]).reshape(d, -1)[:, 0]
        for j in range(d):
            k = offsets[v].start + j
            glyphs.append((i, ys[j], None if val is None else float(val[j]),
                           "pin" if k in held else "const" if k in fixed else None))
        if val is not None:
            values.extend(val.tolist())
        kind = S.nodes[v].get("kind", "")
        ax.text(i, (ys.max() if d else 0) + 0.9, f"{v}\n{space(d)}", ha="center", va="bottom",
                fontsize=8)
        if kind:
            ax.text(i, (ys.min() if d else 0) - 0.8, kind, ha="center", va="top", fontsize=7,
                    color="#555555")
    energies = None
    if state is not None and discord:
        energies = neural_discord(S, state).edges
    top = max(energies.values(), default=0.0) if energies else 0.0
    cm = plt.get_cmap(edge_cmap)
    for e, _ in iter_edges(S):
        (x0, _, lo0, hi0), (x1, _, lo1, hi1) = centre[e[0]], centre[e[1]]
        share = (energies.get(e, 0.0) / top) if (energies and top > 0) else 0.0
        color = cm(0.25 + 0.75 * share) if energies else "#888888"
        ax.fill_between([x0 + 0.12, x1 - 0.12], [lo0 - 0.3, lo1 - 0.3], [hi0 + 0.3, hi1 + 0.3],
                        color=color, alpha=0.18 + 0.5 * share, lw=0)
        ax.annotate("", xy=(x1 - 0.14, 0), xytext=(x0 + 0.14, 0),
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=1 + 3 * share))
    ring = {"pin": PINNED_RING, "const": PARTIAL_RING, None: "#333333"}
    xs = [g[0] for g in glyphs]
    ys = [g[1] for g in glyphs]
    if state is not None:
        bound = max(abs(min(values)), abs(max(values)), 1e-12)
        sc = ax.scatter(xs, ys, c=[g[2] for g in glyphs], cmap=cmap, vmin=-bound, vmax=bound,
                        s=90, edgecolors=[ring[g[3]] for g in glyphs],
                        linewidths=[2.2 if g[3] else 0.6 for g in glyphs], zorder=3)
        ax.figure.colorbar(sc, ax=ax, shrink=0.7, label="stalk value")
    else:
        ax.scatter(xs, ys, c="#dddddd", s=90, zorder=3, edgecolors=[ring[g[3]] for g in glyphs],
                   linewidths=[2.2 if g[3] else 0.6 for g in glyphs])
    from matplotlib.lines import Line2D
    used = {g[3] for g in glyphs} - {None}
    names = (("pin", "pinned"), ("const", "fixed by the builder (input, constant 1s)"))
    handles = [Line2D([], [], marker="o", ls="", mfc="white", mec=ring[k], mew=2.2, markersize=8,
                      label=text) for k, text in names if k in used]
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=7,
                  frameon=False)
    if energies and top > 0:
        sm = plt.cm.ScalarMappable(cmap=edge_cmap, norm=plt.Normalize(0, top))
        ax.figure.colorbar(sm, ax=ax, shrink=0.7, label="edge discord ‖(δc)_e‖²")
    ax.set_xlim(-0.7, len(cols) - 0.3)
    lo = min(c[2] for c in centre.values()) - 1.6
    hi = max(c[3] for c in centre.values()) + 1.8
    ax.set_ylim(lo, hi)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax
