import json
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest

import graphsheaf as gs
from graphsheaf.cli import main


@pytest.fixture
def sheaf_file(tmp_path):
    G = gs.constant_sheaf(nx.cycle_graph(5), dim=2)
    path = tmp_path / "cycle.json"
    gs.write_json(G, path)
    return str(path)


def test_info(sheaf_file, capsys):
    assert main(["info", sheaf_file, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["nodes"] == 5 and info["dim_C0"] == 10 and info["h0"] == 2 and info["h1"] == 2
    assert abs(info["spectral_gap"] - (2 - 2 * np.cos(2 * np.pi / 5))) < 1e-9
    assert main(["info", sheaf_file]) == 0
    assert "h0" in capsys.readouterr().out


def test_cohomology_relative_and_exact(sheaf_file, capsys):
    assert main(["cohomology", sheaf_file, "--relative-to", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["h0"] == 0 and out["pinned"] == 2
    assert main(["cohomology", sheaf_file, "--exact"]) == 0
    assert "H^0: 2" in capsys.readouterr().out


def test_dot_and_render(sheaf_file, tmp_path, capsys):
    assert main(["dot", sheaf_file]) == 0
    assert capsys.readouterr().out.startswith("digraph")
    out = tmp_path / "d.dot"
    assert main(["dot", sheaf_file, "-o", str(out)]) == 0 and out.read_text().startswith("digraph")
    import shutil
    if shutil.which("dot"):
        assert main(["dot", sheaf_file, "--render", "svg", "-o", str(tmp_path / "d.svg")]) == 0
        assert (tmp_path / "d.svg").exists()


def test_extend(sheaf_file, tmp_path, capsys):
    bpath = tmp_path / "b.json"
    bpath.write_text(json.dumps({"0": [1.0, 2.0], "2": {"1": 5.0}}))
    assert main(["extend", sheaf_file, "--boundary", str(bpath), "-o", str(tmp_path / "x.json")]) == 0
    result = json.loads((tmp_path / "x.json").read_text())
    values = {r["node"]: r["value"] for r in result["values"]}
    assert values[0] == [1.0, 2.0] and values[2][1] == 5.0 and result["undetermined"] == 0


def test_bad_input_is_one_line_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "graphsheaf", "version": 1, "multigraph": false, "nodes": [')
    assert main(["info", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "not valid JSON" in err
    assert main(["cohomology", str(tmp_path / "missing.json")]) == 1
    good = tmp_path / "g.json"
    gs.write_json(gs.constant_sheaf(nx.path_graph(3)), good)
    assert main(["cohomology", str(good), "--relative-to", "nope"]) == 1
    assert "no node named 'nope'" in capsys.readouterr().err
    b = tmp_path / "b.json"
    b.write_text('{"0": [1.0, 2.0]}')
    assert main(["extend", str(good), "--boundary", str(b)]) == 1
    assert "value has shape (2,)" in capsys.readouterr().err


def test_usage_errors_exit_2_and_help_everywhere():
    for argv in (["info"], ["frobnicate"], ["cohomology", "x", "--bogus"]):
        done = subprocess.run([sys.executable, "-m", "graphsheaf"] + argv, capture_output=True)
        assert done.returncode == 2
    for sub in ("info", "cohomology", "dot", "extend", "demo"):
        done = subprocess.run([sys.executable, "-m", "graphsheaf", sub, "--help"], capture_output=True, text=True)
        assert done.returncode == 0 and "usage:" in done.stdout


def test_demo_runs_and_writes_files(tmp_path):
    done = subprocess.run([sys.executable, "-m", "graphsheaf", "demo", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Lemma 3.2" in done.stdout and "det = 1" in done.stdout
    assert (tmp_path / "neural_sheaf.json").exists() and (tmp_path / "pinned_output.dot").exists()
    S = gs.read_json(tmp_path / "neural_sheaf.json")
    assert S.graph["dims"] == [2, 4, 1]


def test_json_output_is_strict_json(sheaf_file, capsys):
    # issue 17: gap = inf was printed as Infinity, which is not JSON
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    for cmd in (["cohomology", sheaf_file, "--json"], ["info", sheaf_file, "--json"]):
        assert main(cmd) == 0
        out = json.loads(capsys.readouterr().out, parse_constant=refuse)
        assert out["h0"] == 2


def test_a_closed_pipe_ends_quietly(tmp_path):
    G = gs.constant_sheaf(nx.path_graph(5000, create_using=nx.DiGraph))
    gs.write_json(G, tmp_path / "p.json")
    (tmp_path / "b.json").write_text('{"0": [1.0], "4999": [2.0]}')
    cmd = [sys.executable, "-m", "graphsheaf", "extend", str(tmp_path / "p.json"), "--boundary",
           str(tmp_path / "b.json")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()  # like `| head -c 10`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and err == ""


def test_every_file_the_cli_writes_can_be_read_by_every_command(tmp_path, capsys):
    # issue 17: `info` could not open the demo's neural_sheaf.json ("pass state="), and the
    # output of `extend` was not accepted as --boundary
    import graphsheaf.neural as gn
    S = gn.neural_sheaf(*gn.init_weights([2, 4, 1], rng=0))
    f = tmp_path / "net.json"
    gs.write_json(S, f)
    assert main(["info", str(f)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--forward" in err and "--state" in err
    assert main(["info", str(f), "--forward", "0.5,-1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["h0"] >= 0
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"x": [0.5, -1, 1, 1, 1, 1], "a1": {"4": 1.0}}))
    out = tmp_path / "ext.json"
    assert main(["extend", str(f), "--boundary", str(b), "--forward", "0.5,-1", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["cohomology", str(f), "--state", str(out)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["extend", str(f), "--boundary", str(out), "--state", str(out)]) == 0
    ext = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose([v["value"] for v in ext["values"] if v["node"] == "z2"][0],
                               gn.predict(S, np.array([0.5, -1.0])), atol=1e-10)


def test_cli_advice_names_flags_and_render_names_stay_beside_the_input(tmp_path, capsys,
                                                                         monkeypatch):
    G = gs.constant_sheaf(nx.disjoint_union(nx.path_graph(3), nx.path_graph(3)))
    f = tmp_path / "two.json"
    gs.write_json(G, f)
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"0": [1.0]}))
    assert main(["extend", str(f), "--boundary", str(b)]) == 1
    err = capsys.readouterr().err
    assert "--allow-nonunique" in err and "allow_nonunique=True" not in err
    import graphsheaf.drawing as drawing
    seen = []
    monkeypatch.setattr(drawing, "render", lambda G, path, **kw: seen.append(str(path)))
    folder = tmp_path / "run.v2"
    folder.mkdir()
    gs.write_json(G, folder / "sheaf")
    assert main(["dot", str(folder / "sheaf"), "--render", "svg"]) == 0
    assert seen == [str(folder / "sheaf") + ".svg"]  # not run.svg beside the folder


def test_cohomology_over_a_finite_field(tmp_path, capsys):
    # the Möbius band on one vertex: δ = −2 (issue example), (0, 0) over Q, (1, 1) over GF(2)
    M = nx.DiGraph()
    M.add_node(0, dim=1)
    M.add_edge(0, 0, source_map=np.eye(1), target_map=-np.eye(1))
    path = str(tmp_path / "mobius.json")
    gs.write_json(M, path)
    assert main(["cohomology", path, "--field", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["h0"], out["h1"], out["field"]) == (1, 1, "GF(2)")
    assert main(["cohomology", path, "--exact", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["h0"] == 0
    assert main(["cohomology", path, "--field", "6"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "prime" in err[0]
