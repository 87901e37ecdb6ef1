"""Every example runs (smoke test) and its main() returns something checkable."""
import importlib.util
import pathlib

import numpy as np
import pytest

import graphsheaf as gs

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.py"))


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(path, tmp_path, capsys):
    if path.stem == "dask_batched_training":
        pytest.importorskip("dask.array")
    if path.stem == "residual_and_conv":
        pytest.importorskip("torch")
        pytest.importorskip("sklearn")
    module = load(path)
    result = module.main(str(tmp_path))
    assert capsys.readouterr().out
    assert any(tmp_path.iterdir())
    if path.stem == "opinion_dynamics":
        traj, target = result
        last = gs.to_vector(traj._graph, traj.states[-1])
        assert np.abs(last - gs.to_vector(traj._graph, target)).max() < 1e-2
    if path.stem == "dask_batched_training":
        err, curve = result
        assert err < 1e-10 and curve[-1] < 0.5 * curve[0]
    if path.stem == "residual_and_conv":
        for _name, _epochs, acc_sheaf, acc_torch, _ts, _tt in result:
            assert acc_sheaf > 0.9 and abs(acc_sheaf - acc_torch) <= 0.01  # within 1 point
    if path.stem == "connection_sheaf_sync":
        exact = result[0]
        assert exact[1] == 3 and exact[2] < 1e-6 and exact[4] < 1e-6  # noiseless: exact frames
        assert all(r[2] < r[4] for r in result[1:])  # the spectral estimate beats tree chaining
    if path.stem == "custom_sheaf":
        G, H = result
        assert gs.cohomology(G).h0 == 0 and list(G.edges) == list(H.edges)
