"""graphsheaf reproduce: the quick run works, writes its report, and matches the paper."""
import csv
import subprocess
import sys

import pytest

from graphsheaf.reproduce import EXPERIMENTS, Row, run


def test_row_tolerance_respects_printed_digits():
    r = Row("x", "q", 0.0281, 0.02805, 1e-3)
    assert r.tolerance == pytest.approx(0.5e-4 / 0.0281) and r.ok
    assert not Row("x", "q", 0.0281, 0.0283, 1e-3).ok
    assert Row("x", "q", 50, 50, 0).ok and not Row("x", "q", 50, 51, 0).ok


def test_quick_run_with_numpy_streams_writes_report(tmp_path):
    rows = run(out=str(tmp_path), quick=True, only=["pinning", "spectral_depth"], rng="numpy",
               log=lambda *a: None)
    assert rows and {r.experiment for r in rows} == {"pinning", "spectral_depth"}
    text = (tmp_path / "report.md").read_text()
    assert "| experiment | quantity | paper | ours |" in text and "numpy" in text.lower()
    with open(tmp_path / "report.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)


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
    assert "within tolerance" in done.stdout and (tmp_path / "report.md").exists()
    bad = subprocess.run([sys.executable, "-m", "graphsheaf", "reproduce", "--only", "nope",
                          "--out", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 1 and "unknown experiment" in bad.stderr
