"""graphsheaf's paper-mode runs against the authors' own code, side by side in one run (issue 19).

The authors' implementation (github.com/vicenbosca/neural-sheaf, PyTorch) is not shipped
with graphsheaf; point ``--authors`` at a checkout of it. Both codes run the same
experiments of ``graphsheaf reproduce`` -- the same networks, data, random streams (the
authors' PyTorch generators: ``gn.TorchSeed``), step sizes and step counts -- each on one
thread, and the script prints both wall times, their ratio and both final test losses
(equal to the printed digits when the two compute the same flow).

    python benchmarks/bench_authors.py --authors PATH [--steps 20000] [--threads 1]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, set_threads  # noqa: E402


def theirs(kind, steps):
    """Train with the authors' SheafTrainer (their generate_figures.py recipes)."""
    from neural_sheaf.datasets import generate_circular_data, generate_regression_data, paraboloid
    from neural_sheaf.sheaf import NeuralSheaf
    from neural_sheaf.trainer import SheafTrainer
    if kind == "circles":
        data = generate_circular_data(n_train=300, n_test=100, seed=42)
        net = NeuralSheaf([2, 25, 1], output_activation="sigmoid", seed=0)
        trainer = SheafTrainer(net, alpha=1.0, beta=1.0 / 300, dt=0.005)
        kw = dict(warm_start=False, init_method="forward_pass")
    else:
        data = generate_regression_data(paraboloid, n_train=300, n_test=100, seed=42)
        dims, dt = ([2, 30, 1], 0.005) if kind == "paraboloid" else ([2, 12, 8, 6, 1], 0.05)
        net = NeuralSheaf(dims, output_activation="identity", seed=0)
        trainer = SheafTrainer(net, alpha=1.0, beta=1.0 / 300, dt=dt)
        kw = dict(warm_start=True, init_method="random")
    t = time.perf_counter()
    hist = trainer.train(*data, epochs=steps // 1000, steps_per_epoch=1000, seed=42, **kw)
    return time.perf_counter() - t, float(hist["test_loss"][-1])


def ours(kind, steps):
    """The same run with graphsheaf (graphsheaf/paper's recipes)."""
    import graphsheaf as gs
    import graphsheaf.neural as gn
    seed = gn.TorchSeed
    if kind == "circles":
        d = gs.datasets.circles(rng=seed(42))
        S = gn.neural_sheaf(*gn.init_weights([2, 25, 1], rng=seed(0)), output="sigmoid")
        trainer = gn.SheafTrainer(S, mode="paper", dt=0.005)
        kw = dict(warm_start=False, init="forward")
    else:
        d = gs.datasets.paraboloid(rng=seed(42))
        dims, dt = ([2, 30, 1], 0.005) if kind == "paraboloid" else ([2, 12, 8, 6, 1], 0.05)
        S = gn.neural_sheaf(*gn.init_weights(dims, rng=seed(0)))
        trainer = gn.SheafTrainer(S, mode="paper", dt=dt)
        kw = dict(warm_start=True, init="random")
    t = time.perf_counter()
    h = trainer.train(d.X_train, d.Y_train, d.X_test, d.Y_test, epochs=steps // 1000,
                      steps_per_epoch=1000, rng=seed(42), progress=False, **kw)
    return time.perf_counter() - t, float(h.test_loss[-1])


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--authors", required=True, help="a checkout of vicenbosca/neural-sheaf")
    p.add_argument("--steps", type=int, default=20_000, help="Euler steps per run (multiple of 1000)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=2, help="runs per code (the fastest is kept)")
    p.add_argument("--commit", default=None, help="the checkout's commit, if it has no .git")
    args = p.parse_args(argv)
    threads = set_threads(args.threads)
    import torch
    torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.abspath(args.authors))
    commit = args.commit or "unknown"
    head = os.path.join(args.authors, ".git", "HEAD")
    if os.path.exists(head):
        import subprocess
        commit = subprocess.run(["git", "-C", args.authors, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip() or commit
    print(f"machine: {machine()}\nBLAS: {threads}; torch {torch.__version__} with "
          f"{torch.get_num_threads()} thread(s)\nauthors' code: {args.authors} (commit {commit})")
    print(f"\npaper-mode training, {args.steps:,} joint Euler steps per run, best of {args.repeat}")
    print(f"  {'run':44s} {'authors (s)':>11s} {'graphsheaf (s)':>14s} {'speed-up':>8s}  "
          "test loss authors / graphsheaf")
    total = [0.0, 0.0]
    runs = [("paraboloid", "paraboloid [2,30,1], β = 1/300, Δt = 0.005"),
            ("circles", "circles [2,25,1] sigmoid, forward resets"),
            ("deep", "paraboloid [2,12,8,6,1], Δt = 0.05")]
    for kind, label in runs:
        a = min((theirs(kind, args.steps) for _ in range(args.repeat)), key=lambda x: x[0])
        o = min((ours(kind, args.steps) for _ in range(args.repeat)), key=lambda x: x[0])
        total[0] += a[0]
        total[1] += o[0]
        print(f"  {label:44s} {a[0]:11.2f} {o[0]:14.2f} {a[0] / o[0]:7.1f}x  {a[1]:.6g} / {o[1]:.6g}")
    print(f"  {'all three':44s} {total[0]:11.2f} {total[1]:14.2f} {total[0] / total[1]:7.1f}x  "
          "(target: >= 5x)")


if __name__ == "__main__":
    main()
