"""Graphviz diagrams of sheaves, built with pydot.

The DOT graph is built fresh with opaque ids (``n0``, ``n1``, ...), so any hashable
node name works; names appear only inside quoted labels.
"""

import shutil
import subprocess
from collections import Counter

import numpy as np
import pydot

from .._files import atomic_path, atomic_write_text
from ..exceptions import SheafError
from ..sheaves import edge_label, iter_edges, validate_sheaf
from .labels import MAX_SHOWN, energy_text, map_text, pin_status, space, structural_pins

__all__ = ["GraphvizNotFoundError", "render", "to_pydot", "write_dot"]

#: fill colours of the paper's pictures: pinned (red), partly fixed (yellow), free (green)
PINNED_COLOR = "#e8706a"
PARTIAL_COLOR = "#f5d76e"
FREE_COLOR = "#9fd89f"
KIND_STYLES = {
    "affine": {"color": "#2c5fa8", "style": "solid"},
    "relu": {"color": "#d9822b", "style": "dashed"},
    "output": {"color": "#7b3fa0", "style": "bold"},
    # operations of DAG sheaves (gn.dag_sheaf, gn.from_torch)
    "linear": {"color": "#2c5fa8", "style": "solid"},
    "conv1d": {"color": "#1b7f5f", "style": "bold"},
    "conv2d": {"color": "#1b7f5f", "style": "bold"},
    "batchnorm": {"color": "#2c5fa8", "style": "dotted"},
    "avgpool1d": {"color": "#6b6b6b", "style": "solid"},
    "avgpool2d": {"color": "#6b6b6b", "style": "solid"},
    "maxpool1d": {"color": "#d9822b", "style": "dotted"},
    "maxpool2d": {"color": "#d9822b", "style": "dotted"},
    "leaky_relu": {"color": "#d9822b", "style": "dashed"},
    "relu6": {"color": "#d9822b", "style": "dashed"},
    "hardtanh": {"color": "#d9822b", "style": "dashed"},
    "identity": {"color": "#d9822b", "style": "dashed"},
    "concat": {"color": "#9a9a9a", "style": "solid"},
    "add": {"color": "#b03060", "style": "bold"},
}
#: Graphviz layout engines :func:`render` accepts
ENGINES = ("dot", "neato", "fdp", "sfdp", "circo", "twopi", "osage", "patchwork")


class GraphvizNotFoundError(RuntimeError):
    """The Graphviz ``dot`` program is not installed."""


def _q(text):
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as \\n."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _unquote(text):
    return text[1:-1] if isinstance(text, str) and len(text) > 1 and text[0] == '"' else text


def _energy_scalar(value):
    v = np.asarray(value, dtype=float)
    return float(v.mean()) if v.ndim else float(v)


def _heat(share):
    """Grey (#b0b0b0) to red (#d62728) as share goes from 0 to 1."""
    lo, hi = np.array([0xB0, 0xB0, 0xB0]), np.array([0xD6, 0x27, 0x28])
    r, g, b = (lo + (hi - lo) * min(max(share, 0.0), 1.0)).round().astype(int)
    return f"#{r:02x}{g:02x}{b:02x}"


def _legend(dot, statuses, kinds, energies_shown):
    """One HTML-table node explaining the fills used, edge kinds and the energy colouring."""
    rows = []
    if statuses is not None:
        for key, text, color in (("full", "pinned", PINNED_COLOR),
                                 ("partial", "partly pinned", PARTIAL_COLOR),
                                 (None, "free", FREE_COLOR)):
            if key not in statuses:
                continue
            rows.append(f'<tr><td bgcolor="{color}" width="18"> </td><td align="left">{text}</td></tr>')
    for kind in kinds:
        style = KIND_STYLES[kind]
        dash = {"dashed": " (dashed)", "dotted": " (dotted)", "bold": " (bold)"}.get(style["style"], "")
        rows.append(f'<tr><td><font color="{style["color"]}">━━</font></td>'
                    f'<td align="left">{kind} edge{dash}</td></tr>')
    if energies_shown:
        rows.append(f'<tr><td><font color="{_heat(0.0)}">━</font><font color="{_heat(1.0)}">━</font>'
                    '</td><td align="left">edge energy: 0 → largest (also width)</td></tr>')
    if not rows:
        return
    html = '<<table border="0" cellborder="0" cellspacing="2">' + "".join(rows) + "</table>>"
    legend = pydot.Cluster("legend", label='"legend"', fontname="Helvetica", fontsize="10",
                           color='"#bbbbbb"', style="rounded")
    legend.add_node(pydot.Node('"legend"', shape="plaintext", label=html, fontsize="10",
                               fontname="Helvetica"))
    dot.add_subgraph(legend)


def to_pydot(G, *, pinned=None, energies=None, rankdir=None, show_maps=True, name="sheaf",
             engine=None, pos=None, legend=True, max_shown=MAX_SHOWN, dim="dim",
             source_map="source_map", target_map="target_map", validate=True):
    """Return a ``pydot.Dot`` diagram of a sheaf.

    Parameters
    ----------
    G : sheaf
    pinned : boundary spec, optional
        Pinned nodes or coordinates, joined with the sheaf's own structural pins
        (``G.graph["pinned"]``, set by the neural builder). Fully pinned nodes are filled
        red, partly pinned yellow, the rest green; without any pins nodes are not filled.
    energies : dict edge -> float, optional
        Per-edge discrepancies (e.g. from :func:`graphsheaf.edge_energies`; batched
        values are averaged). Edges are coloured from grey to red and widened by their
        share of the largest one; values below 1e-12 of the largest print as 0.
    rankdir : str, optional
        Graphviz rank direction: "LR" (left to right) by default, "TB" (top to bottom) for
        DAG network sheaves, whose chains of operations are long.
    show_maps : bool, default True
        Edge labels show the edge stalk and both maps: written out with their signs up to
        ``max_shown`` × ``max_shown`` (``I`` and ``−I`` by name), else their shapes.
        Parallel edges of a multigraph are labelled with their keys.
    engine : str, optional
        Graphviz layout engine (one of :data:`ENGINES`), stored as the graph's ``layout``
        attribute, which :func:`render` and Graphviz honour. Defaults to "dot", or "neato"
        when ``pos`` is given.
    pos : dict node -> (x, y), optional
        Fixed positions (e.g. from ``nx.spring_layout``), in layout units scaled to 3
        inches.
    legend : bool, default True
        Add a legend of the fills, edge kinds and energy colours used.

    Examples
    --------
    >>> import networkx as nx, graphsheaf as gs
    >>> G = gs.constant_sheaf(nx.path_graph(2, create_using=nx.DiGraph), dim=3)
    >>> dot = gs.to_pydot(G, pinned=[0])
    >>> [n.get("fillcolor") for n in dot.get_nodes() if n.get_name().startswith('"n')]
    ['"#e8706a"', '"#9fd89f"']
    """
    if validate:
        validate_sheaf(G, dim=dim, source_map=source_map, target_map=target_map)
    if engine is None:
        engine = "neato" if pos is not None else "dot"
    if rankdir is None:
        rankdir = "TB" if G.graph.get("architecture") == "dag" else "LR"
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    status = pin_status(G, pinned, dim)
    show_status = pinned is not None or structural_pins(G) is not None
    dot = pydot.Dot(_q(name), graph_type="digraph", rankdir=rankdir, layout=engine)
    dot.set_node_defaults(shape="box", style='"rounded"', fontname="Helvetica")
    dot.set_edge_defaults(fontname="Helvetica", fontsize="10")
    ids = {v: f'"n{i}"' for i, v in enumerate(G)}
    for v, data in G.nodes(data=True):
        text = f"{v}\n{space(data[dim])}"
        if "kind" in data:
            text += f"\n{data['kind']}" + (f" {data['layer']}" if "layer" in data else "")
        attrs = {"label": _q(text), "tooltip": _q(repr(v))}
        if show_status:
            color = {"full": PINNED_COLOR, "partial": PARTIAL_COLOR}.get(status.get(v), FREE_COLOR)
            attrs.update(style='"rounded,filled"', fillcolor=_q(color))
        if pos is not None and v in pos:
            x, y = (float(c) * 3.0 for c in pos[v][:2])
            attrs["pos"] = _q(f"{x:.4f},{y:.4f}!")
        dot.add_node(pydot.Node(ids[v], **attrs))
    top = 0.0
    if energies:
        finite = [v for v in (_energy_scalar(x) for x in energies.values()) if np.isfinite(v)]
        top = max(finite, default=0.0)
    parallel = Counter((e[0], e[1]) for e, _ in iter_edges(G))
    kinds_used = []
    for e, data in iter_edges(G):
        A, B = data[source_map], data[target_map]
        parts = []
        if len(e) == 3 and parallel[(e[0], e[1])] > 1:
            parts.append(f"[{e[2]}]")
        if "kind" in data:
            parts.append(f"{data['kind']}" + (f" {data['layer']}" if "layer" in data else ""))
        if "weight_index" in data:  # a convolution: one kernel shared by every position
            shape = "×".join(str(int(k)) for k in data.get("weight_shape", ()))
            parts.append(f"shared kernel {shape}")
        if show_maps:
            rows = A.shape[0] if hasattr(A, "shape") else np.shape(A)[0]
            parts.append(f"{space(rows)}: {map_text(A, max_shown)} | {map_text(B, max_shown)}")
        attrs = {"label": _q("\n".join(parts))} if parts else {}
        attrs["tooltip"] = _q(edge_label(e))
        kind = data.get("kind")
        style = KIND_STYLES.get(kind) if isinstance(kind, str) else None
        if style:
            attrs.update(color=_q(style["color"]), style=style["style"])
            if kind not in kinds_used:
                kinds_used.append(kind)
        if energies is not None:
            value = _energy_scalar(energies.get(e, 0.0))
            # an infinite or NaN energy is drawn at full strength (it wrote penwidth=nan)
            share = value / top if top > 0 and np.isfinite(value) else \
                (1.0 if not np.isfinite(value) else 0.0)
            attrs.update(color=_q(_heat(share)), penwidth=f"{1 + 4 * share:.2f}")
            attrs["label"] = _q("\n".join(parts + [f"E = {energy_text(value, top)}"]))
        if len(e) == 3:
            attrs["key"] = _q(e[2])
        dot.add_edge(pydot.Edge(ids[e[0]], ids[e[1]], **attrs))
    if legend:
        used = {status.get(v) for v in G} if show_status else None
        _legend(dot, used, kinds_used, energies is not None)
    return dot


def write_dot(G, path, **kw):
    """Write the diagram of :func:`to_pydot` to ``path`` as DOT text (no Graphviz needed).

    Examples
    --------
    >>> import tempfile, os
    >>> import networkx as nx, graphsheaf as gs
    >>> G = gs.constant_sheaf(nx.path_graph(2, create_using=nx.DiGraph))
    >>> path = os.path.join(tempfile.mkdtemp(), "s.dot")
    >>> gs.write_dot(G, path)
    >>> open(path).read().startswith("digraph")
    True
    """
    atomic_write_text(path, to_pydot(G, **kw).to_string())  # a failure keeps an old file


def render(G, path, format="svg", *, dpi=150, **kw):
    """Render the diagram to ``path`` with Graphviz, using the layout engine of ``engine=``.

    Parameters
    ----------
    format : {"svg", "png", "pdf"}
    dpi : int, default 150
        Resolution of PNG output.
    **kw
        Passed to :func:`to_pydot` (``pinned``, ``energies``, ``engine``, ``pos``, ...).

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
    dot = to_pydot(G, **kw)
    engine = _unquote(dot.get("layout") or "dot")
    text = dot.to_string()
    with atomic_path(path) as tmp:  # an interrupted or failing renderer keeps an old file
        done = subprocess.run([exe, f"-K{engine}", f"-T{format}", f"-Gdpi={int(dpi)}", "-o", tmp],
                              input=text.encode("utf-8"), capture_output=True)
        if done.returncode != 0:
            raise SheafError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
