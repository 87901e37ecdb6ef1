"""Graphviz diagrams of sheaves, built with pydot.

The DOT graph is built fresh with opaque ids (``n0``, ``n1``, ...), so any hashable
node name works; names appear only inside quoted labels.
"""

import shutil
import subprocess

import numpy as np
import pydot

from .._files import atomic_path, atomic_write_text
from ..exceptions import SheafError
from ..linalg import boundary_coordinates, stalk_offsets
from ..maps import is_state_dependent
from ..sheaves import edge_label, iter_edges, validate_sheaf

__all__ = ["GraphvizNotFoundError", "render", "to_pydot", "write_dot"]

#: fill colours of the paper's pictures: pinned (red), partly fixed (yellow), free (green)
PINNED_COLOR = "#e8706a"
PARTIAL_COLOR = "#f5d76e"
FREE_COLOR = "#9fd89f"
KIND_STYLES = {
    "affine": {"color": "#2c5fa8", "style": "solid"},
    "relu": {"color": "#d9822b", "style": "dashed"},
    "output": {"color": "#7b3fa0", "style": "bold"},
}


class GraphvizNotFoundError(RuntimeError):
    """The Graphviz ``dot`` program is not installed."""


def _q(text):
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as \\n."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _shape_text(A):
    if is_state_dependent(A):
        return f"{type(A).__name__} {A.shape[0]}×{A.shape[1]}"
    r, c = np.shape(A) if not hasattr(A, "shape") else A.shape
    return f"{r}×{c}"


def _pin_status(G, pinned):
    """Node -> 'full' | 'partial' for pinned nodes."""
    if pinned is None:
        return {}
    b = boundary_coordinates(G, pinned)
    offsets = stalk_offsets(G)
    status = {}
    counts = {}
    for v, sl in offsets.items():
        k = int(np.count_nonzero((b.index >= sl.start) & (b.index < sl.stop)))
        if k:
            counts[v] = k
            status[v] = "full" if k == sl.stop - sl.start else "partial"
    return status


def _energy_scalar(value):
    v = np.asarray(value, dtype=float)
    return float(v.mean()) if v.ndim else float(v)


def to_pydot(G, *, pinned=None, energies=None, rankdir="LR", show_maps=True, name="sheaf",
             dim="dim", source_map="source_map", target_map="target_map", validate=True):
    """Return a ``pydot.Dot`` diagram of a sheaf.

    Parameters
    ----------
    G : sheaf
    pinned : boundary spec, optional
        Pinned nodes or coordinates. Fully pinned nodes are filled red, partly pinned
        yellow, the rest green. Defaults to ``G.graph["pinned"]`` when present (the
        neural builder sets it); without any, nodes are not filled.
    energies : dict edge -> float, optional
        Per-edge discrepancies (e.g. from :func:`graphsheaf.edge_energies`; batched
        values are averaged). Edges are coloured from grey to red and widened by
        their share of the largest one.
    rankdir : str, default "LR"
    show_maps : bool, default True
        Edge labels show the edge stalk and both map shapes.

    Examples
    --------
    >>> G = gs.constant_sheaf(nx.path_graph(2, create_using=nx.DiGraph), dim=3)
    >>> dot = gs.to_pydot(G, pinned=[0])
    >>> [n.get("fillcolor") for n in dot.get_nodes() if n.get_name().startswith('"n')]
    ['"#e8706a"', '"#9fd89f"']
    """
    if validate:
        validate_sheaf(G, dim=dim, source_map=source_map, target_map=target_map)
    if pinned is None:
        pinned = G.graph.get("pinned")
    status = _pin_status(G, pinned)
    dot = pydot.Dot(_q(name), graph_type="digraph", rankdir=rankdir)
    dot.set_node_defaults(shape="box", style='"rounded"', fontname="Helvetica")
    dot.set_edge_defaults(fontname="Helvetica", fontsize="10")
    ids = {v: f'"n{i}"' for i, v in enumerate(G)}
    for v, data in G.nodes(data=True):
        text = f"{v}\nℝ^{data[dim]}"
        if "kind" in data:
            text += f"\n{data['kind']}" + (f" {data['layer']}" if "layer" in data else "")
        attrs = {"label": _q(text), "tooltip": _q(repr(v))}
        if pinned is not None:
            color = {"full": PINNED_COLOR, "partial": PARTIAL_COLOR}.get(status.get(v), FREE_COLOR)
            attrs.update(style='"rounded,filled"', fillcolor=_q(color))
        dot.add_node(pydot.Node(ids[v], **attrs))
    top = 0.0
    if energies:
        finite = [v for v in (_energy_scalar(x) for x in energies.values()) if np.isfinite(v)]
        top = max(finite, default=0.0)
    for e, data in iter_edges(G):
        A, B = data[source_map], data[target_map]
        parts = []
        if "kind" in data:
            parts.append(f"{data['kind']}" + (f" {data['layer']}" if "layer" in data else ""))
        if show_maps:
            parts.append(f"ℝ^{np.shape(A)[0] if not hasattr(A, 'shape') else A.shape[0]}")
            parts.append(f"{_shape_text(A)} | {_shape_text(B)}")
        attrs = {"label": _q("\n".join(parts))} if parts else {}
        attrs["tooltip"] = _q(edge_label(e))
        kind = data.get("kind")
        style = KIND_STYLES.get(kind) if isinstance(kind, str) else None
        if style:
            attrs.update(color=_q(style["color"]), style=style["style"])
        if energies is not None:
            value = _energy_scalar(energies.get(e, 0.0))
            # an infinite or NaN energy is drawn at full strength (it wrote penwidth=nan)
            share = value / top if top > 0 and np.isfinite(value) else \
                (1.0 if not np.isfinite(value) else 0.0)
            attrs.update(color=_q(_heat(share)), penwidth=f"{1 + 4 * share:.2f}")
            attrs["label"] = _q("\n".join(parts + [f"E = {value:.3g}"]))
        if len(e) == 3:
            attrs["key"] = _q(e[2])
        dot.add_edge(pydot.Edge(ids[e[0]], ids[e[1]], **attrs))
    return dot


def _heat(share):
    """Grey (#b0b0b0) to red (#d62728) as share goes from 0 to 1."""
    lo, hi = np.array([0xB0, 0xB0, 0xB0]), np.array([0xD6, 0x27, 0x28])
    r, g, b = (lo + (hi - lo) * min(max(share, 0.0), 1.0)).round().astype(int)
    return f"#{r:02x}{g:02x}{b:02x}"


def write_dot(G, path, **kw):
    """Write the diagram of :func:`to_pydot` to ``path`` as DOT text (no Graphviz needed).

    Examples
    --------
    >>> import tempfile, os
    >>> G = gs.constant_sheaf(nx.path_graph(2, create_using=nx.DiGraph))
    >>> path = os.path.join(tempfile.mkdtemp(), "s.dot")
    >>> gs.write_dot(G, path)
    >>> open(path).read().startswith("digraph")
    True
    """
    atomic_write_text(path, to_pydot(G, **kw).to_string())  # a failure keeps an old file


def render(G, path, format="svg", **kw):
    """Render the diagram to ``path`` with the Graphviz ``dot`` program.

    Parameters
    ----------
    format : {"svg", "png", "pdf"}

    Raises
    ------
    GraphvizNotFoundError
        When ``dot`` is not installed (the message says how to install it).
    """
    if format not in ("svg", "png", "pdf"):
        raise ValueError(f"format must be 'svg', 'png' or 'pdf', got {format!r}")
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFoundError(
            "rendering needs the Graphviz 'dot' program, which was not found on PATH. Install "
            "Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
            "conda: conda install graphviz), or use gs.write_dot, which needs no Graphviz")
    text = to_pydot(G, **kw).to_string()
    with atomic_path(path) as tmp:  # an interrupted or failing renderer keeps an old file
        done = subprocess.run([exe, f"-T{format}", "-o", tmp], input=text.encode("utf-8"),
                              capture_output=True)
        if done.returncode != 0:
            raise SheafError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
