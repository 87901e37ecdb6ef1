"""SheafRegressor / SheafClassifier against MLPRegressor / MLPClassifier, side by side (issue 14).

Every estimator with default parameters (only ``random_state`` fixed), the same
preprocessing for all (standardised features; standardised targets for regression,
through ``TransformedTargetRegressor``), 5-fold cross-validation on the same folds.
Targets: mean R² within 0.02 of the MLP's and accuracy within 1 point on every set,
total wall time <= 1.5x the MLP's.

    python benchmarks/bench_estimators.py [--mode exact|paper|backprop-equivalent] [--threads T]

California housing is not bundled with scikit-learn (it is downloaded on first use, and
nothing here may download at run time), so Friedman #2 stands in for it.
"""
import argparse
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, set_threads  # noqa: E402


def datasets():
    import numpy as np
    from sklearn import datasets as skd
    rng = np.random.default_rng(0)
    reg, clf = {}, {}
    reg["diabetes"] = skd.load_diabetes(return_X_y=True)
    reg["friedman1"] = skd.make_friedman1(n_samples=1000, noise=1.0, random_state=0)
    reg["friedman2 (for california)"] = skd.make_friedman2(n_samples=2000, noise=10.0, random_state=0)
    x = rng.uniform(-3, 3, (600, 1))
    reg["noisy sine"] = (x, np.sin(2 * x[:, 0]) + 0.2 * rng.standard_normal(600))
    clf["breast cancer"] = skd.load_breast_cancer(return_X_y=True)
    clf["wine"] = skd.load_wine(return_X_y=True)
    clf["digits"] = skd.load_digits(return_X_y=True)
    clf["two moons"] = skd.make_moons(n_samples=600, noise=0.2, random_state=0)
    n = 200  # three interleaved spiral arms
    t = np.sqrt(rng.uniform(0, 1, (3, n))) * 3 * np.pi
    arms = [np.stack([t[k] * np.cos(t[k] + 2 * np.pi * k / 3), t[k] * np.sin(t[k] + 2 * np.pi * k / 3)], 1)
            for k in range(3)]
    clf["three spirals"] = (np.concatenate(arms) + 0.3 * rng.standard_normal((3 * n, 2)),
                            np.repeat(np.arange(3), n))
    return reg, clf


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mode", default="exact", choices=["exact", "paper", "backprop-equivalent"])
    p.add_argument("--folds", type=int, default=5)
    args = p.parse_args(argv)
    threads = set_threads(args.threads)
    import numpy as np
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import graphsheaf.neural as gn
    print(f"machine: {machine()}\nBLAS: {threads}\nmode: {args.mode}, {args.folds}-fold CV, "
          "default parameters (random_state=0)")
    reg, clf = datasets()
    extra = dict(mode=args.mode)
    if args.mode == "paper":  # the joint flow needs its own step budget: keep it affordable
        extra.update(max_iter=30, paper_steps=200)
    total = {"sheaf": 0.0, "mlp": 0.0}
    ok = True
    rows = []

    def run(kind, name, X, y):
        nonlocal ok
        if kind == "regression":
            make = lambda est: TransformedTargetRegressor(make_pipeline(StandardScaler(), est),
                                                          transformer=StandardScaler())
            ests = {"sheaf": make(gn.SheafRegressor(random_state=0, **extra)),
                    "mlp": make(MLPRegressor(random_state=0))}
            cv, metric = KFold(args.folds, shuffle=True, random_state=0), "r2"
        else:
            ests = {"sheaf": make_pipeline(StandardScaler(), gn.SheafClassifier(random_state=0, **extra)),
                    "mlp": make_pipeline(StandardScaler(), MLPClassifier(random_state=0))}
            cv, metric = StratifiedKFold(args.folds, shuffle=True, random_state=0), "accuracy"
        out = {}
        for key, est in ests.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = time.perf_counter()
                res = cross_validate(est, X, y, cv=cv, scoring=metric)
                out[key] = (float(np.mean(res["test_score"])), time.perf_counter() - t)
            total[key] += out[key][1]
        diff = out["sheaf"][0] - out["mlp"][0]
        limit = 0.02 if kind == "regression" else 0.01
        good = diff >= -limit
        ok &= good
        rows.append((kind, name, metric, out["sheaf"][0], out["mlp"][0], diff, out["sheaf"][1],
                     out["mlp"][1], good))

    for name, (X, y) in reg.items():
        run("regression", name, X, y)
    for name, (X, y) in clf.items():
        run("classification", name, X, y)
    print(f"\n{'data set':28s} {'score':>9s} {'sheaf':>8s} {'MLP':>8s} {'diff':>8s} "
          f"{'sheaf s':>8s} {'MLP s':>8s}")
    for _kind, name, metric, s, m, d, ts, tm, good in rows:
        print(f"{name:28s} {metric:>9s} {s:8.4f} {m:8.4f} {d:+8.4f} {ts:8.2f} {tm:8.2f}"
              f"{'' if good else '  MISSED'}")
    ratio = total["sheaf"] / total["mlp"]
    print(f"\ntotal wall time: sheaf {total['sheaf']:.1f} s, MLP {total['mlp']:.1f} s, ratio "
          f"{ratio:.2f}x (target <= 1.5x) {'OK' if ratio <= 1.5 else 'MISSED'}")
    print(f"scores: {'all within target' if ok else 'some MISSED'} (R² within 0.02, accuracy "
          "within 1 point, of the MLP's or better)")
    return ok, ratio


if __name__ == "__main__":
    main()
