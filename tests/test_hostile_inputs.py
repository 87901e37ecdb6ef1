"""Issue 17: inputs a careless or malicious user gives; each is one clear SheafError (or a
right answer), never a hang, a silent wrong number or data loss."""
import numpy as np
import networkx as nx
import pytest

import graphsheaf as gs
import graphsheaf.neural as gn


def test_spectral_gap_with_many_isolated_nodes():
    # 2,001 isolated nodes (a 2,001-dimensional kernel) and one edge: the gap is 2, not inf
    G = gs.constant_sheaf(nx.empty_graph(2001, create_using=nx.DiGraph))
    G.add_node("a", dim=1)
    G.add_node("b", dim=1)
    G.add_edge("a", "b", source_map=np.eye(1), target_map=np.eye(1))
    assert gs.spectral_gap(G) == pytest.approx(2.0)


@pytest.mark.parametrize("kw", [dict(dt=0.0), dict(alpha=0.0), dict(dt=-0.01), dict(dt=np.nan)])
def test_heat_equation_refuses_steps_that_cannot_converge(kw):
    S = gn.neural_sheaf(*gn.init_weights([2, 3, 1], rng=0))
    with pytest.raises(gs.SheafError, match="must be a finite number > 0"):
        gn.heat_equation(S, np.ones(2), steps=10, **kw)


def test_diverging_training_raises_naming_the_rate():
    d = gs.datasets.paraboloid(rng=0)
    for mode, opt, lr in (("exact", "sgd", 1e3), ("exact", "adam", 1e6)):
        S = gn.neural_sheaf(*gn.init_weights([2, 16, 1], rng=0))
        with pytest.raises(gs.DivergenceError, match="learning rate"):
            gn.SheafTrainer(S, mode=mode, optimizer=opt, learning_rate=lr).train(
                d.X_train, d.Y_train, epochs=50)
    S = gn.neural_sheaf(*gn.init_weights([2, 16, 1], rng=0))
    with pytest.raises(gs.DivergenceError, match="learning rate"):
        gn.train_backprop(S, d.X_train, d.Y_train, learning_rate=1e4, epochs=50)
    with pytest.raises(gs.DivergenceError, match="learning_rate_init"):
        gn.SheafRegressor((8,), solver="sgd", learning_rate_init=1e4, random_state=0).fit(
            d.X_train.T, d.Y_train[0])
    for bad in (0.0, -1.0, np.inf):
        with pytest.raises(gs.SheafError, match="learning_rate"):
            gn.SheafTrainer(S, mode="exact", learning_rate=bad)


def test_neural_inputs_that_do_not_fit():
    W, b = gn.init_weights([2, 3, 1], rng=0)
    with pytest.raises(gs.SheafError, match="2 weight matrices but 3 bias"):
        gn.neural_sheaf(W, b + [np.zeros(1)])  # extra biases were dropped silently
    with pytest.raises(gs.SheafError):
        gn.neural_sheaf([np.array([["a", "b"]])])
    S = gn.neural_sheaf(W, b)
    with pytest.raises(gs.SheafError):
        gn.forward(S, np.array(["x", "y"]))
    with pytest.raises(gs.SheafError, match="no value for node"):
        gn.heat_equation(S, np.ones(2), state0={"z1": np.zeros(3)}, steps=2)


def test_a_gate_of_infinite_size_in_a_file_is_refused(tmp_path):
    S = gn.neural_sheaf(*gn.init_weights([2, 3, 1], rng=0))
    gs.write_json(S, tmp_path / "s.json")
    text = (tmp_path / "s.json").read_text()
    assert '["n", 3]' in text
    (tmp_path / "bad.json").write_text(text.replace('["n", 3]', '["n", 1e400]', 1))
    with pytest.raises(gs.SheafError):
        gs.read_json(tmp_path / "bad.json")


def test_undetermined_extension_message_shows_a_few_directions():
    G = gs.constant_sheaf(nx.empty_graph(3000, create_using=nx.DiGraph))
    G.add_edge(0, 1, source_map=np.eye(1), target_map=np.eye(1))
    with pytest.raises(gs.NonUniqueExtensionError) as info:
        gs.harmonic_extension(G, {0: [1.0]}, method="dense")
    msg = str(info.value)
    assert "dimension 2998" in msg and msg.count("direction ") <= 5  # 2,998 isolated nodes


def test_generic_tools_refuse_what_they_used_to_coerce(tmp_path):
    G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    with pytest.raises(gs.SheafError, match="coordinate 0.7 is not an integer"):
        gs.harmonic_extension(G, {0: {0.7: 1.0}, 2: [0.0]})  # became coordinate 0
    with pytest.raises(gs.SheafError, match="node 0 is not finite"):
        gs.dirichlet_energy(G, {0: [np.nan], 1: [0.0], 2: [0.0]})  # returned nan
    with pytest.raises(gs.SheafError, match="x0 at node 0 is not finite"):
        gs.heat_diffusion(G, {0: [np.nan], 1: [0.0], 2: [0.0]}, 1.0)  # returned all-NaN
    with pytest.raises(gs.SheafError, match="not in G: \\[7\\]"):
        gs.sheaf_laplacian(G, nodelist=[0, 1, 7])  # KeyError
    huge = nx.DiGraph()
    huge.add_node("a", dim=10**12)
    with pytest.raises(gs.SheafError, match="more than this machine's memory"):
        gs.cohomology(huge)  # tried to allocate 931 GiB
    nan_named = nx.relabel_nodes(G, {0: float("nan")})
    with pytest.raises(gs.SheafError, match="NaN"):
        gs.write_json(nan_named, tmp_path / "n.json")  # written, then unreadable
    dot = gs.to_pydot(G, energies={(0, 1): float("inf"), (1, 2): 1.0}).to_string()
    assert "nan" not in dot and "#-" not in dot  # was penwidth=nan and a colour #-8000...


def test_neural_pins_that_repeat_or_cannot_be_reached():
    S = gn.neural_sheaf(*gn.init_weights([2, 3, 1], rng=0), output="sigmoid")
    x = np.ones(2)
    with pytest.raises(gs.SheafError, match="pinned twice"):
        gn.equilibrium(S, x, pins={"z1": {0: 1.0, "0": 2.0}})
    with pytest.raises(gs.SheafError, match="never reaches"):
        gn.equilibrium(S, x, pins={"y": {0: 1.5}})  # used to run the heat equation forever
    eq = gn.equilibrium(S, x, pins={"y": {0: 0.75}})
    assert abs(eq.state["y"][0] - 0.75) < 1e-12


def test_round_trips_keep_sparse_formats_and_big_integers(tmp_path):
    import scipy.sparse as sp
    G = nx.DiGraph()
    G.add_nodes_from(range(4), dim=2)
    maps = [sp.csr_matrix(np.eye(2)), sp.coo_array(np.eye(2)), sp.lil_matrix(np.eye(2)),
            np.array([[2**70, 1], [3, -4]], dtype=object)]
    for i, M in enumerate(maps):
        G.add_edge(i, (i + 1) % 4, source_map=M, target_map=np.eye(2))
    gs.write_json(G, tmp_path / "rt.json")
    H = gs.read_json(tmp_path / "rt.json")
    for (u, v), M in zip(G.edges, maps):
        got = H.edges[u, v]["source_map"]
        assert type(got) is type(M)  # came back as csr_array
    big = H.edges[3, 0]["source_map"][0, 0]
    assert big == 2**70 and type(big) is int  # came back as a Fraction


def test_more_inputs_that_used_to_end_in_tracebacks(tmp_path, capsys):
    from graphsheaf.cli import main
    with pytest.raises(gs.SheafError, match="real"):
        gn.neural_sheaf([np.ones((2, 2)) * (1 + 1j)])  # lost the imaginary part
    S = gn.neural_sheaf(*gn.init_weights([2, 3, 1], rng=0))
    with pytest.raises(gs.SheafError, match="no samples"):
        gn.SheafTrainer(S, mode="exact").train(np.zeros((2, 0)), np.zeros((1, 0)), epochs=1)
    G = gs.constant_sheaf(nx.path_graph(3))
    gs.write_json(G, tmp_path / "g.json")
    for name, content in (("latin1.json", "{\"0\": [1.0]}".encode("utf-16")),
                          ("string.json", b'{"0": "one"}'), ("object.json", b'{"0": {"0": {}}}')):
        (tmp_path / name).write_bytes(content)
        assert main(["extend", str(tmp_path / "g.json"), "--boundary", str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("graphsheaf: error:")


def test_reproduce_with_torch_streams_but_no_torch_is_one_line(tmp_path):
    import subprocess
    import sys
    code = ("import sys; sys.modules['torch'] = None\n"
            "from graphsheaf.cli import main\n"
            f"sys.exit(main(['reproduce', '--quick', '--rng', 'torch', '--only', 'convergence', "
            f"'--out', {str(tmp_path)!r}]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert "graphsheaf[torch]" in out.stderr


def test_odd_attribute_values_reach_the_diagram_safely():
    G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    G.edges[0, 1]["kind"] = ["a", "list"]
    G.edges[1, 2]["kind"] = {"a": 1}
    text = gs.to_pydot(G).to_string()
    assert text.startswith("digraph")


def test_last_coercions_and_attribute_shapes():
    huge = nx.DiGraph()
    huge.add_node("a", dim=10**30)
    with pytest.raises(gs.SheafError, match="stalk dimensions must be integers"):
        gs.cohomology(huge)  # OverflowError
    G = gs.constant_sheaf(nx.path_graph(2, create_using=nx.DiGraph))
    G.edges[0, 1]["source_map"] = [[1.0]]  # a list where an array was expected
    assert gs.to_pydot(G).to_string().startswith("digraph")
    S = gn.neural_sheaf(*gn.init_weights([2, 3, 1], rng=0))
    for pins in ({"z1": {0: "a"}}, {"z1": "abc"}):
        with pytest.raises(gs.SheafError, match="values must be numbers"):
            gn.heat_equation(S, np.ones(2), pins=pins, steps=3)


def test_tuple_node_names_on_the_command_line(tmp_path, capsys):
    from graphsheaf.cli import main
    T = gs.constant_sheaf(nx.DiGraph([((0, 0), (0, 1)), ((0, 1), (1, 1))]))
    gs.write_json(T, tmp_path / "t.json")
    assert main(["cohomology", str(tmp_path / "t.json"), "--relative-to", "[0, 0]", "--json"]) == 0
    out = __import__("json").loads(capsys.readouterr().out)
    assert (out["h0"], out["pinned"]) == (0, 1)


def test_cli_with_stdout_closed_or_a_newline_in_the_file_name(tmp_path):
    import subprocess
    import sys
    G = gs.constant_sheaf(nx.cycle_graph(4))
    odd = tmp_path / "two\nlines.json"
    gs.write_json(G, odd)
    run = lambda args, **kw: subprocess.run([sys.executable, "-m", "graphsheaf"] + args,
                                            capture_output=True, text=True, timeout=120, **kw)
    out = run(["info", str(tmp_path / "missing\nfile.json")])
    assert out.returncode == 1 and out.stderr.count("\n") == 1  # the name's newline is escaped
    assert run(["info", str(odd), "--json"]).returncode == 0
    closed = subprocess.run([sys.executable, "-m", "graphsheaf", "info", str(odd)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            timeout=120, preexec_fn=lambda: __import__("os").close(1))
    assert closed.returncode in (0, 1) and closed.stderr.count("\n") <= 1


def test_heat_equation_convergence_is_judged_by_distance_to_the_limit():
    # the worked example of the spec (λ_min = 0.0329): with dt = 0.01 a step of 1e-9 is
    # still 3e-6 from the forward pass
    W = [np.array([[1., -1.], [2., 0.], [-1., 1.]]), np.array([[1., -2., 3.]])]
    b = [np.array([0., -1., .5]), np.array([.5])]
    S = gn.neural_sheaf(W, b)
    x = np.array([1.0, 2.0])
    f = gn.forward(S, x)
    for criterion, bound in (("distance", 1e-8), ("step", None)):
        r = gn.heat_equation(S, x, rng=0, tol=1e-9, criterion=criterion, record=False)
        err = max(np.abs(r.state[v] - f[v]).max() for v in f)
        assert r.converged
        assert r.distance == pytest.approx(err, rel=0.2)  # the estimate is the true distance
        if bound:
            assert err < bound
        else:
            assert err > 1e-6  # the authors' rule stops far from the limit


@pytest.mark.parametrize("payload", [
    {"__sparse__": {"format": "csr", "shape": [1, 1], "data": {"dtype": "<f8", "shape": [1],
                                                                "data": "AAAAAAAA8D8="},
                    "indices": {"dtype": "<i8", "shape": [1], "data": "BQAAAAAAAAA="},
                    "indptr": {"dtype": "<i8", "shape": [2], "data": "AAAAAAAAAAABAAAAAAAAAA=="}}},
    {"__ndarray__": {"dtype": "<f8", "shape": [2**32, 2**32], "data": ""}},
    {"__ndarray__": {"dtype": "<f8", "shape": [True, 1], "data": "AAAAAAAA8D8="}},
    {"__ndarray__": {"dtype": None, "shape": [1, 1], "data": "AAAAAAAA8D8="}},
    {"__ndarray__": {"dtype": "i4,(", "shape": [1, 1], "data": "AAAAAA=="}},
    {"__npscalar__": ["float64", {"__tuple__": [1.0]}]},
    {"__range__": [0, 5, 0]}])
def test_hostile_map_payloads_in_files(tmp_path, payload):
    import json
    G = gs.constant_sheaf(nx.path_graph(2, create_using=nx.DiGraph))
    doc = gs.io.to_json_data(G)
    doc["edges"][0]["attrs"]["source_map"] = payload  # an out-of-range index, a wrapping shape...
    (tmp_path / "h.json").write_text(json.dumps(doc))
    with pytest.raises(gs.SheafError, match="h.json"):
        gs.read_json(tmp_path / "h.json")


def test_ragged_weights_are_refused():
    with pytest.raises(gs.SheafError):
        gn.neural_sheaf([np.ones((2, 2)), [[1.0, 2.0], [3.0]]])


def test_stalk_dimensions_are_integers_and_present():
    G = gs.constant_sheaf(nx.path_graph(3, create_using=nx.DiGraph))
    G.nodes[1]["dim"] = 1.5
    with pytest.raises(gs.SheafError, match="node 1"):
        gs.sheaf_laplacian(G)  # was read as 1
    del G.nodes[1]["dim"]
    with pytest.raises(gs.SheafError, match="node 1 has no 'dim'"):
        gs.cohomology(G)  # was counted as 0


def test_new_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    import networkx as nx

    import graphsheaf as gs
    path = tmp_path / "s.json"
    gs.write_json(gs.constant_sheaf(nx.path_graph(2)), path)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask  # not mkstemp's 0600
