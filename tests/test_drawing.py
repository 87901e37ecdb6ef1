import shutil

import networkx as nx
import numpy as np
import pydot
import pytest

import graphsheaf as gs
import graphsheaf.neural as gn
from graphsheaf.drawing.labels import space


def parse(dot):
    g = pydot.graph_from_dot_data(dot.to_string())[0]
    nodes = {n.get_name(): n for n in g.get_nodes() if n.get_name().startswith('"n')}
    return g, nodes, g.get_edges()


def unquote(s):
    return s[1:-1].replace('\\"', '"').replace("\\\\", "\\") if s and s[0] == '"' else s


def awkward_sheaf():
    G = nx.MultiDiGraph()
    names = [("tuple", 1), "has: colon", "sp ace", 'quo"te', "ünïcødé", 7]
    for i, v in enumerate(names):
        G.add_node(v, dim=i % 3 + 1)
    for i, (u, v) in enumerate(zip(names, names[1:])):
        G.add_edge(u, v, key=f"k{i}", source_map=np.ones((2, G.nodes[u]["dim"])),
                   target_map=np.ones((2, G.nodes[v]["dim"])), kind="affine" if i % 2 else "relu")
    G.add_edge(names[0], names[1], key="second", source_map=np.ones((1, 1)),
               target_map=np.ones((1, 2)))
    return G, names


def test_any_hashable_name_survives_and_labels_show_stalks():
    G, names = awkward_sheaf()
    g, nodes, edges = parse(gs.to_pydot(G))
    assert len(nodes) == len(names) and len(edges) == G.number_of_edges()
    labels = [unquote(n.get("label")) for n in nodes.values()]
    for v in names:
        assert any(label.startswith(str(v) + "\\n" + space(G.nodes[v]["dim"])) for label in labels)
    tooltips = {unquote(n.get("tooltip")) for n in nodes.values()}
    assert tooltips == {repr(v) for v in names}


def test_edge_labels_show_edge_stalk_and_map_shapes_and_kind_styles():
    G, names = awkward_sheaf()
    _, _, edges = parse(gs.to_pydot(G))
    labels = [unquote(e.get("label")) for e in edges]
    # maps up to 3×3 are written out: ones((2, 1)) | ones((2, 2))
    assert any("ℝ²: [1; 1] | [1  1; 1  1]" in s for s in labels)
    assert any(s.startswith("[second]") for s in labels)  # parallel edges told apart by key
    styles = {e.get("style") for e in edges}
    assert "dashed" in styles  # relu
    _, _, plain = parse(gs.to_pydot(G, show_maps=False))
    assert not any("×" in (unquote(e.get("label") or "")) for e in plain)


def test_pinned_and_partly_pinned_colours():
    S = gn.neural_sheaf(*gn.init_weights([2, 3, 1], rng=0))
    _, nodes, _ = parse(gs.to_pydot(S))  # defaults to S.graph["pinned"]
    fills = {unquote(n.get("tooltip")): unquote(n.get("fillcolor")) for n in nodes.values()}
    from graphsheaf.drawing.dot import FREE_COLOR, PARTIAL_COLOR, PINNED_COLOR
    assert fills == {"'x'": PINNED_COLOR, "'z1'": FREE_COLOR, "'a1'": PARTIAL_COLOR,
                     "'z2'": FREE_COLOR}


def test_energies_colour_and_widen_edges():
    G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    E = gs.edge_energies(G, {0: [0.0], 1: [1.0], 2: [3.0]})
    _, _, edges = parse(gs.to_pydot(G, energies=E))
    width = {(e.get_source(), e.get_destination()): float(e.get("penwidth")) for e in edges}
    assert width[('"n1"', '"n2"')] == 5.0 and width[('"n0"', '"n1"')] < 5.0
    assert all("E = " in unquote(e.get("label")) for e in edges)


def test_write_dot_and_render(tmp_path):
    G = gs.constant_sheaf(nx.cycle_graph(3))
    gs.write_dot(G, tmp_path / "c.dot")
    assert len(pydot.graph_from_dot_file(str(tmp_path / "c.dot"))[0].get_edges()) == 3
    if shutil.which("dot") is None:
        with pytest.raises(gs.GraphvizNotFoundError, match="apt-get install graphviz"):
            gs.render(G, tmp_path / "c.svg")
        pytest.skip("Graphviz dot not installed")
    gs.render(G, tmp_path / "c.svg")
    assert (tmp_path / "c.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    gs.render(G, tmp_path / "c.png", format="png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_render_without_dot_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(gs.GraphvizNotFoundError, match="Graphviz"):
        gs.render(gs.constant_sheaf(nx.path_graph(2)), tmp_path / "x.svg")


# ------------------------------------------------------------------ issue 18 additions

def twisted_cycle():
    S = gs.constant_sheaf(nx.cycle_graph(4))
    S.edges[0, 3]["target_map"] = -np.eye(1)
    return S


def test_dot_writes_small_maps_with_signs_and_rounds_energies():
    S = twisted_cycle()
    labels = [unquote(e.get("label")) for e in parse(gs.to_pydot(S))[2]]
    assert "ℝ¹: 1 | −1" in labels and labels.count("ℝ¹: 1 | 1") == 3
    R = gs.constant_sheaf(nx.path_graph(2), dim=2)
    R.edges[0, 1]["source_map"] = np.array([[0.0, -1.0], [1.0, 0.0]])
    R.edges[0, 1]["target_map"] = np.eye(2)
    labels = [unquote(e.get("label")) for e in parse(gs.to_pydot(R))[2]]
    assert labels == ["ℝ²: [0  −1; 1  0] | I"]
    big = gs.constant_sheaf(nx.path_graph(2), dim=4)
    assert [unquote(e.get("label")) for e in parse(gs.to_pydot(big))[2]] == ["ℝ⁴: I | I"]
    big.edges[0, 1]["source_map"] = np.ones((4, 4))
    assert [unquote(e.get("label")) for e in parse(gs.to_pydot(big))[2]] == ["ℝ⁴: 4×4 | I"]
    # rounding noise beside a real energy prints as 0
    G = gs.constant_sheaf(nx.path_graph(3))
    labels = [unquote(e.get("label")) for e in parse(gs.to_pydot(G, energies={(0, 1): 2.47e-32,
                                                                             (1, 2): 0.5}))[2]]
    assert any(s.endswith("E = 0") for s in labels) and any(s.endswith("E = 0.5") for s in labels)


def test_dot_engine_positions_and_legend():
    S = twisted_cycle()
    pos = nx.circular_layout(S)
    dot = gs.to_pydot(S, pos=pos, pinned=[0])
    assert unquote(dot.get("layout")) == "neato"
    _, nodes, _ = parse(dot)
    assert unquote(nodes['"n0"'].get("pos")).endswith("!")
    x, y = (float(t) for t in unquote(nodes['"n0"'].get("pos")).rstrip("!").split(","))
    assert np.allclose([x, y], 3 * pos[0], atol=1e-3)
    assert unquote(gs.to_pydot(S, engine="circo").get("layout")) == "circo"
    with pytest.raises(ValueError, match="engine"):
        gs.to_pydot(S, engine="nope")
    text = dot.to_string()
    assert "cluster_legend" in text and "pinned" in text and "partly pinned" not in text
    assert "cluster_legend" not in gs.to_pydot(S, legend=False).to_string()


def test_extra_pins_keep_the_partly_fixed_constants():
    # passing pinned= used to replace the builder's pins, losing a1's yellow constant 1
    S = gn.neural_sheaf(*gn.init_weights([2, 3, 1], rng=0))
    _, nodes, _ = parse(gs.to_pydot(S, pinned={"z2": None}))
    fills = {unquote(n.get("tooltip")): unquote(n.get("fillcolor")) for n in nodes.values()}
    assert fills["'a1'"] == "#f5d76e" and fills["'z2'"] == "#e8706a" and fills["'z1'"] == "#9fd89f"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")
def test_render_png_with_an_engine(tmp_path):
    S = twisted_cycle()
    gs.render(S, tmp_path / "c.png", format="png", engine="circo", pinned=[0])
    data = (tmp_path / "c.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def _mpl():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def test_draw_colours_nodes_by_value_and_edges_by_energy():
    plt = _mpl()
    from matplotlib.collections import PathCollection
    S = gs.constant_sheaf(nx.path_graph(4))
    x = {0: [0.0], 1: [1.0], 2: [3.0], 3: [3.0]}
    en = gs.edge_energies(S, x)
    ax = gs.draw(S, nx.spring_layout(S, seed=1), values=x, energies=en, pinned=[0], cmap="viridis")
    ax.figure.canvas.draw()
    nodes = [c for c in ax.collections if isinstance(c, PathCollection)][0]
    cm = plt.get_cmap("viridis")
    face = nodes.get_facecolors()
    expect = [cm(v / 3.0) for v in (0.0, 1.0, 3.0, 3.0)]
    assert np.allclose(face, expect, atol=1e-6)
    assert np.allclose(nodes.get_linewidths(), [3.0, 0.8, 0.8, 0.8])  # the pinned ring
    widths = [p.get_linewidth() for p in ax.patches]
    # edge widths follow the energies 0.5, 2, 0 (share of the largest)
    assert np.allclose(sorted(widths), sorted(1 + 4 * np.array([0.25, 1.0, 0.0])))
    labels = [a.get_label() for a in ax.figure.axes]
    assert len(ax.figure.axes) == 3 and "<colorbar>" in labels  # node and energy colour bars
    plt.close("all")


def test_draw_shows_maps_and_parallel_edges():
    plt = _mpl()
    S = twisted_cycle()
    ax = gs.draw(S, nx.circular_layout(S), show_maps=True)
    texts = {t.get_text() for t in ax.texts}
    assert "1 | −1" in texts and "1 | 1" in texts
    M = nx.MultiDiGraph()
    M.add_nodes_from([0, 1], dim=1)
    M.add_edge(0, 1, source_map=np.eye(1), target_map=np.eye(1))
    M.add_edge(0, 1, source_map=np.eye(1), target_map=-np.eye(1))
    ax = gs.draw(M, {0: (0, 0), 1: (1, 0)})
    paths = [p.get_path().vertices for p in ax.patches]
    assert len(paths) == 2 and not np.allclose(paths[0], paths[1])  # bent apart
    with pytest.raises(gs.SheafError, match="no position for node 1"):
        gs.draw(M, {0: (0, 0)})
    plt.close("all")


def test_draw_neural_one_glyph_per_coordinate_and_discord():
    plt = _mpl()
    from matplotlib.collections import PathCollection
    S = gn.neural_sheaf(*gn.init_weights([2, 4, 1], rng=0))
    ax = gs.draw_neural(S, X=np.array([0.5, -1.0]))
    glyphs = [c for c in ax.collections if isinstance(c, PathCollection)][0]
    assert len(glyphs.get_offsets()) == sum(d for _, d in S.nodes(data="dim"))
    f = gn.forward(S, np.array([[0.5], [-1.0]]))
    values = np.concatenate([f[v].ravel() for v in sorted(S, key=lambda v: list(S).index(v))])
    assert np.allclose(sorted(glyphs.get_array()), sorted(values))
    eq = gn.equilibrium(S, np.array([0.5, -1.0]), pins={"z2": {0: 3.0}})
    ax = gs.draw_neural(S, state=eq.state, pinned={"z2": {0: 3.0}})
    assert any("discord" in (a.get_ylabel() or "") for a in ax.figure.axes)
    plt.close("all")
