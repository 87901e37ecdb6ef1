import json
from fractions import Fraction

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import graphsheaf as gs
import graphsheaf.neural as gn

from .strategies import random_sheaves


def assert_same(G, H):
    assert type(G) is type(H)
    assert list(G) == list(H)
    assert list(G.edges) == list(H.edges)
    assert G.graph == H.graph
    for v in G:
        assert G.nodes[v].keys() == H.nodes[v].keys()
        for k, x in G.nodes[v].items():
            assert_equal_value(x, H.nodes[v][k])
    for e in G.edges:
        assert G.edges[e].keys() == H.edges[e].keys()
        for k, x in G.edges[e].items():
            assert_equal_value(x, H.edges[e][k])


def assert_equal_value(x, y):
    if isinstance(x, np.ndarray):
        assert isinstance(y, np.ndarray) and x.shape == y.shape and x.dtype == y.dtype
        if x.dtype.kind == "O":
            assert x.tolist() == y.tolist()
        else:
            assert x.tobytes() == y.tobytes()  # bitwise identical
    elif sp.issparse(x):
        assert type(x) is type(y)  # format and matrix/array class kept
        assert (sp.csr_array(x) != sp.csr_array(y)).nnz == 0 and x.shape == y.shape
        assert x.dtype == y.dtype
    else:
        assert type(x) is type(y) and x == y


@settings(max_examples=50, deadline=None)
@given(random_sheaves(), st.sampled_from(["int", "tuple", "str"]),
       st.lists(st.sampled_from(["dense", "csr_array", "csr_matrix", "coo_array", "lil_matrix",
                                 "csc_array", "bigint"]), min_size=1, max_size=4))
def test_round_trip_is_lossless(tmp_path_factory, G, naming, kinds):
    rename = {"int": lambda v: v, "tuple": lambda v: ("n", v, (v % 2,)), "str": lambda v: f"v:{v} \"q\""}
    # every map type a user may store: sparse formats and classes, Python big integers
    convert = {"dense": lambda A: A, "csr_array": sp.csr_array, "csr_matrix": sp.csr_matrix,
               "coo_array": sp.coo_array, "lil_matrix": sp.lil_matrix, "csc_array": sp.csc_array,
               "bigint": lambda A: np.array([[int(round(v)) * 2**70 for v in row] for row in A],
                                            dtype=object).reshape(A.shape)}
    for i, e in enumerate(G.edges):
        G.edges[e]["source_map"] = convert[kinds[i % len(kinds)]](G.edges[e]["source_map"])
    G = nx.relabel_nodes(G, {v: rename[naming](v) for v in G})
    G.graph["note"] = {"seed": 3, "pair": (1, 2.5), "set": {1, 2}}
    path = tmp_path_factory.mktemp("rt") / "s.json"
    gs.write_json(G, path)
    assert_same(G, gs.read_json(path))


def test_dtypes_zero_sized_sparse_rational_and_state_maps(tmp_path):
    G = nx.MultiDiGraph(title="x", weights=[np.float32(1.5), np.int16(3), float("nan")])
    G.add_node((1, "a"), dim=2, tag=frozenset({1}))
    G.add_node(0, dim=0)
    G.add_edge((1, "a"), 0, key=("k", 1), source_map=np.zeros((0, 2), dtype=np.float32),
               target_map=np.zeros((0, 0), dtype=np.int64), kind="empty")
    G.add_edge((1, "a"), (1, "a"), key=2, source_map=gs.ReLUGate(2, strict=True),
               target_map=sp.csr_array(np.array([[1.0, 0.0], [0.0, 2.0]])))
    R = np.empty((1, 2), dtype=object)
    R[0] = [Fraction(1, 3), 2]
    G.add_edge(0, (1, "a"), key=3, source_map=np.zeros((1, 0)), target_map=R)
    G.add_edge(0, (1, "a"), key=4, source_map=np.zeros((1, 0), dtype=">f8"),
               target_map=np.array([[1.0, -0.0]]))
    gs.write_json(G, tmp_path / "s.json")
    H = gs.read_json(tmp_path / "s.json")
    assert H.edges[0, (1, "a"), 4]["source_map"].dtype == np.dtype(">f8").newbyteorder("=")
    G.edges[0, (1, "a"), 4]["source_map"] = G.edges[0, (1, "a"), 4]["source_map"].astype("<f8")
    assert np.isnan(H.graph["weights"][2])
    H.graph["weights"][2] = G.graph["weights"][2]
    assert_same(G, H)
    S = gn.neural_sheaf(*gn.init_weights([2, 3, 2], rng=0), output="softmax")
    gs.write_json(S, tmp_path / "n.json")
    T = gs.read_json(tmp_path / "n.json")
    assert_same(S, T)
    x = np.array([0.3, 0.1])
    np.testing.assert_array_equal(gn.predict(S, x), gn.predict(T, x))


def test_unsupported_values_are_refused_not_dropped(tmp_path):
    G = gs.constant_sheaf(nx.path_graph(2))
    G.nodes[0]["callback"] = print
    with pytest.raises(gs.SheafError, match=r"node 0, attribute 'callback': cannot store"):
        gs.write_json(G, tmp_path / "x.json")


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.update(format="other"), "not a graphsheaf file"),
    (lambda d: d.update(version=99), "unsupported version"),
    (lambda d: d["nodes"][0].update(id={"__pickle__": "x"}), r"nodes\[0\]\.id: unknown tag '__pickle__'"),
    (lambda d: d["edges"][0]["attrs"]["source_map"]["__ndarray__"].update(data="AAAA"),
     r"edges\[0\]\.attrs\.source_map.*bytes"),
    (lambda d: d["edges"][0]["attrs"]["source_map"]["__ndarray__"].update(dtype="O"),
     "not allowed"),
    (lambda d: d["edges"][0].update(target=12345), "not a node listed"),
    (lambda d: d["nodes"][1]["attrs"].update(dim=5), "has dim 5"),
    (lambda d: d["nodes"].append(d["nodes"][0]), "appears twice"),
])
def test_malformed_files_give_sheaf_errors(tmp_path, mutate, words):
    G = gs.random_sheaf(nx.path_graph(3), dims=2, edge_dims=1, rng=0)
    data = gs.io.to_json_data(G)
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(gs.SheafError, match=words) as err:
        gs.read_json(path)
    assert str(path) in str(err.value)


def test_truncated_and_missing_files(tmp_path):
    G = gs.random_sheaf(nx.path_graph(3), dims=2, edge_dims=1, rng=0)
    gs.write_json(G, tmp_path / "ok.json")
    text = (tmp_path / "ok.json").read_text()
    (tmp_path / "cut.json").write_text(text[: len(text) // 2])
    with pytest.raises(gs.SheafError, match="not valid JSON.*truncated"):
        gs.read_json(tmp_path / "cut.json")
    with pytest.raises(gs.SheafError, match="cannot read"):
        gs.read_json(tmp_path / "missing.json")


# ------------------------------------------- issue 17: no data loss, no hang, one clear error

def test_a_failed_write_leaves_the_existing_file_intact(tmp_path, monkeypatch):
    import os
    G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    path = tmp_path / "s.json"
    gs.write_json(G, path)
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(gs.SheafError, match="No space left.*unchanged"):
        gs.write_json(gs.constant_sheaf(nx.path_graph(50, create_using=nx.DiGraph)), path)
    with pytest.raises(gs.SheafError, match="No space left"):
        gs.write_dot(G, tmp_path / "s.json")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]  # no temporary left behind
    monkeypatch.undo()
    assert list(gs.read_json(path)) == [0, 1, 2]  # the old file, whole and readable


def test_reading_refuses_fifos_devices_and_oversized_files_without_hanging(tmp_path):
    import os
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(gs.SheafError, match="FIFO"):
        gs.read_json(fifo)  # used to block forever
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(gs.SheafError, match="device"):
        gs.read_json(link)
    with pytest.raises(gs.SheafError, match="directory"):
        gs.read_json(tmp_path)
    big = tmp_path / "big.json"
    big.write_text(" " * 5000)
    with pytest.raises(gs.SheafError, match="5,000 bytes is over the limit of 1,000 bytes"):
        gs.read_json(big, max_bytes=1000)
    with pytest.raises(gs.SheafError, match="not a file name"):
        gs.read_json(None)


def test_deep_nesting_and_huge_integers_are_one_clear_error(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(gs.SheafError, match="nested too deeply"):
        gs.read_json(deep)
    huge = tmp_path / "huge.json"
    huge.write_text('{"nodes": [' + "9" * 5000 + "]}")
    with pytest.raises(gs.SheafError, match="huge.json"):
        gs.read_json(huge)


def test_complex_maps_round_trip(tmp_path):
    F = gs.constant_sheaf(nx.cycle_graph(4))
    F.edges[0, 3]["target_map"] = np.array([[np.exp(0.3j)]], dtype=np.complex128)
    F.edges[0, 1]["source_map"] = np.array([[1 - 2j]], dtype=np.complex64)
    gs.write_json(F, tmp_path / "u1.json")
    G = gs.read_json(tmp_path / "u1.json")
    for e in F.edges:
        for k in ("source_map", "target_map"):
            a, b = F.edges[e][k], G.edges[e][k]
            assert a.dtype == b.dtype and np.array_equal(a, b)
