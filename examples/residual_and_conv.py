"""A residual MLP and a small CNN as sheaves, trained on scikit-learn's 8×8 digits without
a backward pass (exact mode), beside the same networks trained by PyTorch's backpropagation
from the same initial weights, batches and optimiser.

Both networks are written in PyTorch and turned into sheaves by ``gn.from_torch`` (traced
with torch.fx): one vertex per tensor, one edge per operation; a residual add gathers its
inputs in a concatenation vertex, a convolution is a sparse restriction map whose entries
share one kernel, max pooling is a gate chosen by the state. Exact mode moves the cochain
to the equilibrium with the output tied to the label by a stiff edge (γ = 1e-3) and
updates every weight from its own edge's residual, summed over the positions sharing it.

    python examples/residual_and_conv.py [OUT_DIR]

Needs PyTorch (pip install graphsheaf[torch]) and scikit-learn.
"""
import os
import sys
import time

import numpy as np

import graphsheaf.neural as gn


def digits(seed=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    X = d.data / 16.0
    Y = np.eye(10)[d.target]
    Xtr, Xte, Ytr, Yte = train_test_split(X, Y, test_size=0.25, random_state=seed, stratify=d.target)
    return Xtr, Xte, Ytr, Yte


def networks(torch):
    nn = torch.nn

    class ResidualMLP(nn.Module):
        """64 → 32, two residual blocks h ← relu(h + W₂ relu(W₁ h)), → 10."""

        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(64, 32)
            self.block1 = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32))
            self.block2 = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32))
            self.head = nn.Linear(32, 10)

        def forward(self, x):
            h = torch.relu(self.inp(x))
            h = torch.relu(h + self.block1(h))
            h = torch.relu(h + self.block2(h))
            return self.head(h)

    class SmallCNN(nn.Module):
        """Two 3×3 convolutions (8 channels), 2×2 max pooling, a dense head."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.head = nn.Linear(8 * 4 * 4, 10)

        def forward(self, x):
            x = torch.relu(self.conv1(x))
            x = self.pool(torch.relu(self.conv2(x)))
            return self.head(torch.flatten(x, 1))

    return {"residual MLP": (ResidualMLP, (64,)), "CNN": (SmallCNN, (1, 8, 8))}


def train_torch(torch, module, Xtr, Ytr, epochs, batch_size, lr, seed):
    """Backpropagation with Adam on ½‖output − y‖² (batch mean), the sheaf's batches."""
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    X, Y = torch.tensor(Xtr), torch.tensor(Ytr)
    order = np.random.default_rng(seed)
    for _ in range(epochs):
        perm = order.permutation(len(X))
        for start in range(0, len(X), batch_size):
            idx = torch.from_numpy(perm[start:start + batch_size])
            opt.zero_grad()
            loss = 0.5 * ((module(X[idx]) - Y[idx]) ** 2).sum() / len(idx)
            loss.backward()
            opt.step()
    return module


def accuracy(outputs, Y):
    return float(np.mean(outputs.argmax(axis=0) == Y.argmax(axis=1)))


def main(out=".", epochs=None):
    import torch
    torch.set_num_threads(1)
    Xtr, Xte, Ytr, Yte = digits()
    settings = {k: 10 if epochs is None else epochs for k in ("residual MLP", "CNN")}
    rows = []
    for name, (cls, shape) in networks(torch).items():
        torch.manual_seed(0)
        module = cls().double()
        x_example = torch.tensor(Xtr[:2]).reshape((2,) + shape)
        S = gn.from_torch(module, x_example)          # the sheaf reads the initial weights
        X, Y = Xtr.T, Ytr.T                           # samples as columns, (C, H, W) flattened
        t = time.perf_counter()
        gn.SheafTrainer(S, mode="exact", optimizer="adam", learning_rate=3e-3, gamma=1e-3).train(
            X, Y, epochs=settings[name], batch_size=32, rng=0)
        t_sheaf = time.perf_counter() - t
        t = time.perf_counter()
        trained = train_torch(torch, _Reshaped(module, shape, torch), Xtr, Ytr, settings[name], 32, 3e-3, 0)
        t_torch = time.perf_counter() - t
        acc_sheaf = accuracy(gn.predict(S, Xte.T), Yte)
        with torch.no_grad():
            acc_torch = accuracy(trained(torch.tensor(Xte)).numpy().T, Yte)
        rows.append((name, settings[name], acc_sheaf, acc_torch, t_sheaf, t_torch))
    lines = ["network        epochs  test accuracy: exact mode / backprop   seconds: exact / torch"]
    lines += [f"{n:<14} {e:>6}   {a:.4f} / {b:.4f}  (Δ {100 * (a - b):+.2f} points)   {ts:6.1f} / {tt:5.1f}"
              for n, e, a, b, ts, tt in rows]
    text = "\n".join(lines)
    print(text)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "residual_and_conv.txt"), "w") as fh:
        fh.write(text + "\n")
    return rows


class _Reshaped:
    """The module reading flat rows (the sheaf's convention) as images."""

    def __init__(self, module, shape, torch):
        self.module, self.shape = module, shape

    def __call__(self, x):
        return self.module(x.reshape((-1,) + self.shape))

    def parameters(self):
        return self.module.parameters()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
