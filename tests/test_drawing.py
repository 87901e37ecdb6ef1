import shutil

import networkx as nx
import numpy as np
import pydot
import pytest

import graphsheaf as gs
import graphsheaf.neural as gn


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
        assert any(label.startswith(str(v) + "\\nℝ^" + str(G.nodes[v]["dim"])) for label in labels)
    tooltips = {unquote(n.get("tooltip")) for n in nodes.values()}
    assert tooltips == {repr(v) for v in names}


def test_edge_labels_show_edge_stalk_and_map_shapes_and_kind_styles():
    G, names = awkward_sheaf()
    _, _, edges = parse(gs.to_pydot(G))
    labels = [unquote(e.get("label")) for e in edges]
    assert any("ℝ^2" in s and "2×1 | 2×2" in s for s in labels)
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
