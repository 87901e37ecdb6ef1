"""The README's example runs as written."""
import os
import pathlib

README = pathlib.Path(__file__).parent.parent / "README.md"


def test_readme_example_runs(tmp_path, monkeypatch):
    code = README.read_text(encoding="utf-8").split("```python")[1].split("```")[0]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["c"].h0 == 0 and namespace["heat"].converged
    assert os.path.exists(tmp_path / "network.dot")


def test_every_readme_python_block_runs_in_order(tmp_path, monkeypatch):
    blocks = [b.split("```")[0] for b in README.read_text(encoding="utf-8").split("```python")[1:]]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for code in blocks:
        exec(compile(code, "README.md", "exec"), namespace)
    gs = namespace["gs"]
    assert (gs.cohomology(namespace["M"]).h0, gs.cohomology(namespace["M"], field=2).h0) == (0, 1)
    assert gs.cohomology(namespace["S"]).h0 == 3


def test_readme_names_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    first_block = text.split("```bash")[1].split("```")[0]
    assert "graphsheaf demo" in first_block and "pytest" in first_block
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]"' in ci and "python -m pytest" in ci
