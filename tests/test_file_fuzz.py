"""Fuzzing the file format and the command line (issue 17): corrupted files give a
SheafError or a sheaf, never another exception; the CLI answers in one line.

A longer run: ``GRAPHSHEAF_FUZZ_EXAMPLES=20000 python -m pytest tests/test_file_fuzz.py``.
"""
import json
import os

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphsheaf as gs
import graphsheaf.neural as gn
from graphsheaf.cli import main

from .strategies import random_sheaves

EXAMPLES = int(os.environ.get("GRAPHSHEAF_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

NEURAL = json.loads(json.dumps(gs.io.to_json_data(gn.neural_sheaf(*gn.init_weights([2, 3, 1], rng=0)))))


def _paths(x, here=()):
    """Every JSON path of a decoded document."""
    yield here
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _paths(v, here + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _paths(v, here + (i,))


def _replace(doc, path, value):
    if not path:
        return value
    doc = json.loads(json.dumps(doc))
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


WEIRD = st.sampled_from([None, True, -1, 0, 2**70, 1e308, -0.0, "x", "i4,(", "<f8", [], [True, 2],
                         [2**32, 2**32], {}, {"__range__": [0, 5, 0]}, {"__npscalar__": ["int8", 1000]},
                         {"__npscalar__": ["uint64", -1]}, {"__npscalar__": ["float64", None]},
                         {"__float__": "nan"}, {"__ndarray__": {"dtype": None, "shape": [1], "data": ""}},
                         {"__statemap__": {"type": "relu_gate", "params": {"__dict__": [["n", 1e400]]}}},
                         [[[[[[]]]]]]])


def _must_be_clean(path):
    try:
        G = gs.read_json(path)
    except gs.SheafError:
        return None
    return G


@FUZZ
@given(data=st.data())
def test_every_json_path_swapped_for_nonsense(tmp_path, data):
    doc = NEURAL
    paths = list(_paths(doc))
    path = data.draw(st.sampled_from(paths))
    value = data.draw(WEIRD)
    f = tmp_path / "f.json"
    f.write_text(json.dumps(_replace(doc, path, value)))
    _must_be_clean(f)


@FUZZ
@given(G=random_sheaves(max_nodes=5, max_dim=3), cut=st.floats(0, 1), flips=st.lists(
    st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4))
def test_truncated_and_bit_flipped_files(tmp_path, G, cut, flips):
    f = tmp_path / "g.json"
    gs.write_json(G, f)
    raw = bytearray(f.read_bytes())
    for where, byte in flips:
        raw[int(where * (len(raw) - 1))] = byte
    raw = raw[:max(0, int(cut * len(raw)))] if cut < 0.98 else raw
    f.write_bytes(bytes(raw))
    _must_be_clean(f)


@pytest.mark.parametrize("content", [b"", b"[" * 100_000, b"\xff\xfe\x00", b'{"format": 1}',
                                     b"nul\x00l", b"9" * 6000])
@pytest.mark.parametrize("command", [["info"], ["cohomology", "--json"], ["dot"]])
def test_cli_answers_hostile_files_in_one_line(tmp_path, capsys, content, command):
    f = tmp_path / "bad.json"
    f.write_bytes(content)
    code = main([command[0], str(f)] + command[1:])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("graphsheaf: error: ")


def test_round_trip_keeps_every_map_type(tmp_path):
    import scipy.sparse as sp
    from fractions import Fraction
    G = nx.DiGraph()
    G.add_nodes_from([0, 1], dim=2)
    G.add_edge(0, 1, source_map=sp.csr_array(np.eye(2)), target_map=np.array(
        [[Fraction(1, 3), 2], [0, Fraction(-5, 7)]], dtype=object))
    gs.write_json(G, tmp_path / "m.json")
    H = gs.read_json(tmp_path / "m.json")
    assert sp.issparse(H.edges[0, 1]["source_map"])
    assert H.edges[0, 1]["target_map"][0, 0] == Fraction(1, 3)
