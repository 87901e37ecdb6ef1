"""graphsheaf reproduce: the package's structure, an honest report on any streams, and the
quick run matching the paper with the authors' streams."""
import csv
import json
import pathlib
import subprocess
import sys

import pytest

import graphsheaf.paper as paper
from graphsheaf.paper import EXPERIMENTS, Row, run
from graphsheaf.paper.context import Context
from graphsheaf.paper.report import NEEDS_TORCH, summary
from graphsheaf.paper.shared import spectral_runs

PACKAGE = pathlib.Path(paper.__file__).parent


def test_row_tolerance_respects_printed_digits():
    r = Row("x", "q", 0.0281, 0.02805, 1e-3)
    assert r.tolerance == pytest.approx(0.5e-4 / 0.0281) and r.ok
    assert not Row("x", "q", 0.0281, 0.0283, 1e-3).ok
    assert Row("x", "q", 50, 50, 0).ok and not Row("x", "q", 50, 51, 0).ok


def test_package_modules_are_small_and_published_numbers_cite_sources():
    for module in PACKAGE.glob("*.py"):
        assert len(module.read_text().splitlines()) <= 300, module.name
    data = json.loads((PACKAGE / "published.json").read_text())
    assert set(data) <= set(EXPERIMENTS)
    for name, entry in data.items():
        assert "§" in entry["source"] or "Table" in entry["source"], name
        assert entry["values"], name


def test_exact_rows_are_not_failures_on_other_streams():
    exact = Row("x", "q", 1.0, 2.0, 0.0)
    band = Row("x", "q", 1.0, 2.0, 0.0, "band")
    assert exact.status("numpy") == NEEDS_TORCH and exact.status("torch") == "no"
    assert band.status("numpy") == "no"
    line = summary([exact, band, Row("x", "q", 1.0, 1.0, 0.0, "band")], "numpy")
    assert line.startswith("1 of 2 numbers within tolerance; 1 more depend")


def test_quick_run_with_numpy_streams_writes_an_honest_report(tmp_path):
    rows = run(out=str(tmp_path), quick=True, only=["pinning", "spectral_depth", "convergence"],
               rng="numpy", log=lambda *a: None)
    assert rows and {r.experiment for r in rows} == {"pinning", "spectral_depth", "convergence"}
    text = (tmp_path / "report.md").read_text()
    assert "Random streams: **numpy**" in text and "| experiment | quantity | paper | ours |" in text
    assert "**no**" not in text  # nothing that only differs by the streams is called a failure
    assert text.count(NEEDS_TORCH) == sum(r.kind == "exact" for r in rows)
    assert all(r.ok for r in rows if r.kind == "band")  # every stream-free row passes
    with open(tmp_path / "report.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)


def test_experiments_do_not_depend_on_each_other(tmp_path):
    # residual_stages reads E.5's networks: it trains them by name when run alone, and a
    # second reader in the same run gets the same objects
    ctx = Context(quick=True, rng="numpy", log=lambda *a: None)
    assert spectral_runs(ctx) is spectral_runs(ctx)
    rows = run(out=str(tmp_path), quick=True, only=["residual_stages"], rng="numpy", log=lambda *a: None)
    assert rows and all(r.experiment == "residual_stages" for r in rows)


def test_quick_run_matches_the_paper_with_the_authors_streams(tmp_path):
    pytest.importorskip("torch")
    rows = run(out=str(tmp_path), quick=True, rng="torch", log=lambda *a: None)
    bad = [(r.experiment, r.quantity, r.paper, r.ours) for r in rows if not r.ok]
    assert not bad
    assert {r.experiment for r in rows} == set(EXPERIMENTS)


def test_command_line_and_errors(tmp_path):
    done = subprocess.run([sys.executable, "-m", "graphsheaf", "reproduce", "--quick", "--only",
                           "pinning", "--out", str(tmp_path), "--rng", "numpy"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "within tolerance" in done.stdout and "[1/1 pinning]" in done.stdout
    assert (tmp_path / "report.md").exists()
    bad = subprocess.run([sys.executable, "-m", "graphsheaf", "reproduce", "--only", "nope",
                          "--out", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 1 and "unknown experiment" in bad.stderr


def test_rng_torch_without_pytorch_is_one_line(monkeypatch, capsys, tmp_path):
    from graphsheaf.cli import main
    from graphsheaf.paper.runner import resolve_rng
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(ImportError, match="pip install graphsheaf\\[torch\\]"):
        resolve_rng("torch")
    assert resolve_rng(None) == "numpy"
    assert main(["reproduce", "--rng", "torch", "--only", "pinning", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--rng numpy" in err[0]
