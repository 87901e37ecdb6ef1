"""Exact-mode sheaf training of residual and convolutional networks against PyTorch (issue 13).

The networks of ``examples/residual_and_conv.py`` (a residual MLP with two residual blocks
and a CNN with two 3×3 convolutions, max pooling and a dense head) on scikit-learn's 8×8
digits, from the same initial weights, batches (32, the same order), optimiser (Adam,
lr 3e-3) and epochs; both record the training and test loss after every epoch; float64;
one thread for NumPy/SciPy and for PyTorch. Target: exact mode within 3× PyTorch's wall
time, test accuracy within 1 point.

    python benchmarks/bench_architectures.py [--epochs E] [--repeat R]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
from _common import machine, set_threads  # noqa: E402


def run_torch(torch, module, shape, Xtr, Ytr, Xte, Yte, epochs, lr, seed):
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    X, Y = torch.tensor(Xtr).reshape((-1,) + shape), torch.tensor(Ytr)
    Xt, Yt = torch.tensor(Xte).reshape((-1,) + shape), torch.tensor(Yte)
    order = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        perm = order.permutation(len(X))
        for start in range(0, len(X), 32):
            idx = torch.from_numpy(perm[start:start + 32])
            opt.zero_grad()
            loss = 0.5 * ((module(X[idx]) - Y[idx]) ** 2).sum() / len(idx)
            loss.backward()
            opt.step()
        with torch.no_grad():  # the same per-epoch record as the sheaf trainer's history
            losses.append((float(((module(X) - Y) ** 2).mean()), float(((module(Xt) - Yt) ** 2).mean())))
    with torch.no_grad():
        acc = float((module(Xt).argmax(1) == Yt.argmax(1)).double().mean())
    return acc, losses


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    libs = set_threads(1)
    import torch

    import graphsheaf.neural as gn
    from residual_and_conv import digits, networks
    torch.set_num_threads(1)
    Xtr, Xte, Ytr, Yte = digits()
    print(f"# {machine()}; {libs}; torch {torch.__version__}, 1 thread; float64")
    print(f"# digits: {len(Xtr)} train / {len(Xte)} test, batch 32, Adam lr 3e-3, {args.epochs} epochs, "
          f"γ = 1e-3; best of {args.repeat}")
    print(f"{'network':<14} {'exact (s)':>10} {'torch (s)':>10} {'ratio':>6}   accuracy exact / torch")
    for name, (cls, shape) in networks(torch).items():
        times_s, times_t = [], []
        for _ in range(args.repeat):
            torch.manual_seed(0)
            module = cls().double()
            S = gn.from_torch(module, torch.tensor(Xtr[:2]).reshape((2,) + shape))
            t = time.perf_counter()
            gn.SheafTrainer(S, mode="exact", optimizer="adam", learning_rate=3e-3, gamma=1e-3).train(
                Xtr.T, Ytr.T, Xte.T, Yte.T, epochs=args.epochs, batch_size=32, rng=0)
            times_s.append(time.perf_counter() - t)
            acc_s = float(np.mean(gn.predict(S, Xte.T).argmax(0) == Yte.argmax(1)))
            t = time.perf_counter()
            acc_t, _ = run_torch(torch, module, shape, Xtr, Ytr, Xte, Yte, args.epochs, 3e-3, 0)
            times_t.append(time.perf_counter() - t)
        ts, tt = min(times_s), min(times_t)
        print(f"{name:<14} {ts:10.2f} {tt:10.2f} {ts / tt:6.2f}   {acc_s:.4f} / {acc_t:.4f}")


if __name__ == "__main__":
    main()
