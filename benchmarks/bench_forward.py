"""gn.forward (the harmonic extension by block forward substitution) against NumPy.

Target (issue 12): ``gn.forward`` on [784, 256, 256, 10] with a batch of 1024 no slower
than a plain NumPy forward pass (≤ 1.0x), measured side by side in one run -- with the
network compiled from the graph on every call (``gn.compile_network``).

    python benchmarks/bench_forward.py [--threads T] [--batch M]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import best_of, machine, set_threads  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args(argv)
    threads = set_threads(args.threads)
    import numpy as np

    import graphsheaf.neural as gn

    dims = [784, 256, 256, 10]
    W, b = gn.init_weights(dims, rng=0)
    b = [np.random.default_rng(1).standard_normal(len(v)) * 0.1 for v in b]
    S = gn.neural_sheaf(W, b)
    X = np.random.default_rng(2).standard_normal((784, args.batch))

    def numpy_forward():
        a = X
        for l in range(len(W)):
            z = W[l] @ a + b[l][:, None]
            if l < len(W) - 1:
                a = np.maximum(z, 0.0)
        return z

    ref = numpy_forward()
    out = gn.forward(S, X)[S.graph["output"]]
    err = np.abs(out - ref).max() / np.abs(ref).max()
    t_np = best_of(numpy_forward, args.repeat)
    t_fw = best_of(lambda: gn.forward(S, X), args.repeat)
    t_pr = best_of(lambda: gn.predict(S, X), args.repeat)
    work = gn.forward(S, X)
    t_out = best_of(lambda: gn.forward(S, X, out=work), args.repeat)
    print(f"machine: {machine()}\nBLAS: {threads}")
    print(f"network {dims}, batch {args.batch}, best of {args.repeat}; max relative difference {err:.1e}")
    print(f"NumPy forward pass            {t_np * 1e3:8.2f} ms   1.00x")
    print(f"gn.forward (all stalks)       {t_fw * 1e3:8.2f} ms   {t_fw / t_np:.2f}x  (target <= 1.00x) "
          f"{'OK' if t_fw / t_np <= 1.0 else 'MISSED'}")
    print(f"gn.forward(..., out=work)     {t_out * 1e3:8.2f} ms   {t_out / t_np:.2f}x  (buffers reused)")
    print(f"gn.predict (output only)      {t_pr * 1e3:8.2f} ms   {t_pr / t_np:.2f}x")
    t_plan = best_of(lambda: gn.compile_network(S), args.repeat, 10)
    print(f"of which compiling the graph  {t_plan * 1e3:8.3f} ms")
    print("gn.forward keeps every stalk (x̄ alone is 6 MB here) as views of one slab, a single\n"
          "allocation that the allocator reuses from call to call; one array per stalk measured 1.6x")
    return t_fw / t_np


if __name__ == "__main__":
    main()
