"""Speed and scale (issue 7): assembly, harmonic extension, cohomology and diffusion on
large random sheaves, measured in one run.

    python benchmarks/bench_scale.py [--only assembly harmonic solvers cohomology diffusion]
                                     [--nodes N] [--series 1000 10000 100000 1000000]

Sheaves are built straight from NumPy arrays (random digraphs with 3 edges per node;
self-loops dropped), so the build is not what is timed. Peak memory is measured with
tracemalloc in a separate call (tracing slows allocation, so timed calls run untraced).
"""
import argparse
import gc
import os
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, set_threads  # noqa: E402


def random_sheaf_from_arrays(n, m, d, maps="gaussian", seed=0):
    """A DiGraph sheaf on n nodes with about m random edges and d×d maps."""
    import networkx as nx
    import numpy as np

    rng = np.random.default_rng(seed)
    u, v = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = u != v
    u, v = u[keep], v[keep]
    A = rng.standard_normal((len(u), d, d))
    B = rng.standard_normal((len(u), d, d))
    if maps == "orthogonal":  # a connection sheaf: random rotations/reflections
        A = np.linalg.qr(A)[0]
        B = np.linalg.qr(B)[0]
    G = nx.DiGraph()
    gc.disable()
    try:
        G.add_nodes_from(range(n), dim=d)
        G.add_edges_from(zip(u.tolist(), v.tolist(),
                             ({"source_map": a, "target_map": b} for a, b in zip(A, B))))
    finally:
        gc.enable()
    return G


def clock(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def peak_memory(fn, *args):
    gc.collect()
    tracemalloc.start()
    out = fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, out


def nbytes(M):
    return M.data.nbytes + M.indices.nbytes + M.indptr.nbytes


def assembly(args):
    import networkx as nx

    import graphsheaf as gs

    n, m = args.nodes, 3 * args.nodes
    print(f"\n== assembly: {n:,} nodes, {m:,} random edges, 2-dim stalks, random 2×2 maps")
    t_build, G = clock(random_sheaf_from_arrays, n, m, 2)
    print(f"build the networkx graph (not part of the target)   {t_build:8.1f} s")
    t_val, _ = clock(gs.validate_sheaf, G)
    t_d, D = clock(gs.coboundary_matrix, G)
    del D
    t_L, L = clock(gs.sheaf_laplacian, G)
    size = nbytes(L)
    nnz = L.nnz
    del L
    peak_d, D = peak_memory(gs.coboundary_matrix, G)
    size_d = nbytes(D)
    del D
    peak_L, L = peak_memory(gs.sheaf_laplacian, G)
    del L
    print(f"validate_sheaf (reads every map once)               {t_val:8.1f} s")
    print(f"coboundary_matrix                                   {t_d:8.1f} s   peak "
          f"{peak_d / 2**20:7.0f} MiB = {peak_d / size_d:.1f}x the result ({size_d / 2**20:.0f} MiB)")
    print(f"sheaf_laplacian                                     {t_L:8.1f} s   peak "
          f"{peak_L / 2**20:7.0f} MiB = {peak_L / size:.1f}x the result ({size / 2**20:.0f} MiB, "
          f"{nnz:,} nonzeros)")
    print("   (peaks include the stacked input maps, 2 × E × 4 doubles)")
    del G
    gc.collect()
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    H = random_sheaf_from_arrays(n, m, 1)
    g.add_edges_from(H.edges)
    del H
    S1 = gs.constant_sheaf(g, dim=1)
    t_nx = min(clock(nx.laplacian_matrix, g)[0] for _ in range(2))  # best of 2 each
    t_1 = min(clock(gs.sheaf_laplacian, S1)[0] for _ in range(2))
    print(f"nx.laplacian_matrix, same graph                     {t_nx:8.1f} s   1.00x")
    print(f"gs.sheaf_laplacian, constant sheaf dim 1            {t_1:8.1f} s   {t_1 / t_nx:.2f}x "
          f"(target <= 0.20x) {'OK' if t_1 / t_nx <= 0.2 else 'MISSED'}")


def harmonic(args):
    import networkx as nx
    import numpy as np

    import graphsheaf as gs

    print("\n== harmonic extension: 3-dim stalks, random orthogonal maps (a connection sheaf), "
          "3 edges per node, 1% of nodes pinned (plus one node in each component that has none)")
    print(f"{'nodes':>10} {'method':>7} {'CG its':>7} {'fill est.':>12} {'seconds':>9} "
          f"{'µs/node':>8} {'energy':>10}")
    for n in args.series:
        G = random_sheaf_from_arrays(n, 3 * n, 3, maps="orthogonal", seed=1)
        rng = np.random.default_rng(2)
        pins = {int(v): rng.standard_normal(3) for v in rng.choice(n, max(1, n // 100), replace=False)}
        for comp in nx.weakly_connected_components(G):
            if not any(v in pins for v in comp):  # a component without a pin is undetermined
                pins[next(iter(comp))] = np.zeros(3)
        t, x = clock(gs.harmonic_extension, G, pins)
        print(f"{n:>10,} {x.method:>7} {x.iterations or '':>7} {x.fill_estimate or 0:>12,} "
              f"{t:9.2f} {1e6 * t / n:8.1f} {x.energy:10.4g}", flush=True)
        if n <= 1_000:  # at 10^4 nodes the LU of this expander did not finish in 10 minutes
            t_lu, _ = clock(gs.harmonic_extension, G, pins, method="sparse")
            t_cg, _ = clock(gs.harmonic_extension, G, pins, method="cg")
            print(f"{'':>10} forced: sparse LU {t_lu:.2f} s, cg {t_cg:.2f} s")
        del G, x
        gc.collect()


def solvers(args):
    """Harmonic extension against what a user would assemble by hand, in one run (issue 15)."""
    import networkx as nx
    import numpy as np
    import pyamg
    import scipy.sparse.linalg as spla

    import graphsheaf as gs

    def alternatives(G, pins, label, classical=False):
        def by_hand(kind):
            L = gs.sheaf_laplacian(G)
            n = L.shape[0]
            mask = np.zeros(n, dtype=bool)
            vals = np.zeros(n)
            for v, x in pins.items():
                d = len(x)
                mask[d * v:d * v + d] = True  # nodes are 0..n-1 with equal stalks here
                vals[d * v:d * v + d] = x
            free = np.flatnonzero(~mask)
            L_f = L[free]
            A, b = L_f[:, free], -(L_f[:, np.flatnonzero(mask)] @ vals[mask])
            if kind == "cg":
                w = 1 / A.diagonal()
                M = spla.LinearOperator(A.shape, matvec=lambda r: w * r)
                return spla.cg(A, b, rtol=1e-10, maxiter=20000, M=M)[0]
            if kind == "rs":  # PyAMG's classical AMG (the first example of its README)
                ml = pyamg.ruge_stuben_solver(A)
            else:
                ml = pyamg.smoothed_aggregation_solver(A, symmetry="symmetric")
            return ml.solve(b, tol=1e-10, accel="cg")
        # best of two rounds, the contenders alternating: the first call in a process pays for
        # first touches of memory and imports, and used to be charged to whoever went first
        t_gs = t_cg = t_amg = t_rs = float("inf")
        for _ in range(2):
            t, x = clock(gs.harmonic_extension, G, pins)
            t_gs = min(t_gs, t)
            t_cg = min(t_cg, clock(by_hand, "cg")[0])
            t_amg = min(t_amg, clock(by_hand, "amg")[0])
            if classical:
                t_rs = min(t_rs, clock(by_hand, "rs")[0])
            gc.collect()
        rs = (f"; assemble L + PyAMG Ruge-Stüben {t_rs:.2f} s ({t_gs / t_rs:.2f}x)"
              if classical else "")
        print(f"{label}: gs.harmonic_extension {t_gs:.2f} s ({x.method}"
              f"{', ' + x.multigrid if x.multigrid else ''}, {x.iterations} iterations, "
              f"uniqueness {x.uniqueness}); assemble L + SciPy cg + Jacobi {t_cg:.2f} s "
              f"({t_gs / t_cg:.2f}x); assemble L + PyAMG smoothed aggregation {t_amg:.2f} s "
              f"({t_gs / t_amg:.2f}x){rs}", flush=True)
        return t_gs, t_cg, min(t_amg, t_rs)

    print("\n== harmonic extension against the hand-assembled alternatives (issue 15)")
    n = args.nodes
    G = random_sheaf_from_arrays(n, 3 * n, 3, maps="orthogonal", seed=1)
    rng = np.random.default_rng(2)
    pins = {int(v): rng.standard_normal(3) for v in rng.choice(n, max(1, n // 100), replace=False)}
    for comp in nx.weakly_connected_components(G):
        if not any(v in pins for v in comp):
            pins[next(iter(comp))] = np.zeros(3)
    t_gs, t_cg, _ = alternatives(G, pins, f"random O(3) connection, {n:,} nodes, 1% pinned")
    print(f"   targets: <= 15 s {'OK' if t_gs <= 15 else 'MISSED'}, <= 0.8x the CG alternative "
          f"{'OK' if t_gs <= 0.8 * t_cg else 'MISSED'}")
    del G
    gc.collect()
    k = int(round(np.sqrt(n)))
    g = nx.convert_node_labels_to_integers(nx.grid_2d_graph(k, k))
    G = gs.constant_sheaf(nx.DiGraph(list(g.edges)))
    pins = {int(v): [float(x)] for v, x in zip(rng.choice(k * k, max(2, k * k // 1000),
                                                          replace=False), rng.standard_normal(k * k))}
    t_gs, _, t_amg = alternatives(G, pins, f"{k}x{k} grid, constant sheaf, 0.1% pinned",
                                  classical=True)
    print(f"   target: <= 1.2x PyAMG (the faster of its two solvers) "
          f"{'OK' if t_gs <= 1.2 * t_amg else 'MISSED'}")
    x0 = np.random.default_rng(3).standard_normal(k * k)
    t_e, _ = clock(gs.heat_diffusion, G, x0, 1.0, method="euler")
    print(f"Euler heat diffusion on the same {k * k:,}-node constant sheaf, t = 1: {t_e:.2f} s "
          "(λ_max from a random start; the all-ones start was a global section)")


def cohomology(args):
    import networkx as nx
    import numpy as np

    import graphsheaf as gs

    print("\n== cohomology at scale (issue 15): dimensions checked against their derivation")
    cases = []
    n = 1_000_000  # a path: one component, a tree
    cases.append((f"path, {n:,} nodes, constant sheaf", lambda: gs.constant_sheaf(
        nx.path_graph(n, create_using=nx.DiGraph)), (1, 0)))
    n2 = 100_000  # a cycle with a -1 twist: no section survives the loop, and no H^1 either

    def twisted():
        G = gs.constant_sheaf(nx.cycle_graph(n2, create_using=nx.DiGraph))
        G.edges[n2 - 1, 0]["target_map"] = -np.eye(1)
        return G
    cases.append((f"cycle with a -1 twist, {n2:,} nodes", twisted, (0, 0)))
    k = 1000  # grid: h0 = 1, h1 = 1 - (nodes - edges)

    def grid():
        g = nx.convert_node_labels_to_integers(nx.grid_2d_graph(k, k))
        return gs.constant_sheaf(nx.DiGraph(list(g.edges)))
    cases.append((f"{k}x{k} grid, constant sheaf", grid, (1, 1 - (k * k - 2 * k * (k - 1)))))
    n3 = 100_000  # random 3-regular with random 2x2 maps: generic h0 = 0, h1 = -(2n - 2·1.5n)

    def regular():
        g = nx.random_regular_graph(3, n3, seed=0)
        rng = np.random.default_rng(0)
        G = nx.DiGraph()
        G.add_nodes_from(g, dim=2)
        maps = rng.standard_normal((g.number_of_edges(), 2, 2, 2))
        G.add_edges_from((u, v, {"source_map": m[0], "target_map": m[1]})
                         for (u, v), m in zip(g.edges, maps))
        return G
    cases.append((f"random 3-regular, {n3:,} nodes, random 2x2 maps", regular, (0, n3)))
    for label, build, expected in cases:
        G = build()
        t, c = clock(gs.cohomology, G)
        ok = (c.h0, c.h1) == expected
        print(f"{label}: h0 = {c.h0}, h1 = {c.h1} (expected {expected}: "
              f"{'right' if ok else 'WRONG'}), method {c.method}, {t:.2f} s "
              f"(target <= 30 s {'OK' if t <= 30 and ok else 'MISSED'})")
        if "path" in label:
            g = nx.Graph(G)
            t_nx, comps = clock(nx.number_connected_components, g)
            print(f"   networkx for the same numbers: {comps} component(s), cycle rank "
                  f"{g.number_of_edges() - g.number_of_nodes() + comps}, {t_nx:.2f} s")
        del G
    n = 10_000
    g = nx.gnm_random_graph(n, 3 * n, seed=1, directed=True)
    comps = nx.number_weakly_connected_components(g)
    for label, G in (("constant sheaf, dim 3", gs.constant_sheaf(g, dim=3)),
                     ("random 3×3 maps", gs.random_sheaf(g, dims=3, edge_dims=3, rng=0))):
        t, c = clock(gs.cohomology, G, bases=False)
        print(f"{n:,} nodes, {g.number_of_edges():,} edges ({comps} components), {label}: "
              f"h0 = {c.h0}, h1 = {c.h1}, method {c.method}, {t:.2f} s")
    rng = np.random.default_rng(0)
    n = 1_000
    g = nx.gnm_random_graph(n, 3 * n, seed=2, directed=True)
    G = nx.DiGraph()
    G.add_nodes_from(g, dim=3)
    for u, v in g.edges:
        G.add_edge(u, v, source_map=rng.integers(-2, 3, (3, 3)), target_map=rng.integers(-2, 3, (3, 3)))
    t, c = clock(gs.cohomology, G, method="exact", bases=False)
    t_f, cf = clock(gs.cohomology, G, bases=False)
    print(f"exact rational mode, {n:,}-node integer sheaf (3×3 maps in -2..2): h0 = {c.h0}, "
          f"h1 = {c.h1}, {t:.2f} s (floating point: h0 = {cf.h0}, h1 = {cf.h1}, {t_f:.2f} s)")


def diffusion(args):
    import numpy as np

    import graphsheaf as gs

    n = 100_000
    print(f"\n== heat diffusion: {n:,} nodes, 3-dim stalks, random orthogonal maps, t = 1")
    G = random_sheaf_from_arrays(n, 3 * n, 3, maps="orthogonal", seed=3)
    x0 = {v: np.ones(3) for v in G}
    pins = {0: np.zeros(3)}
    t_e, x = clock(gs.heat_diffusion, G, x0, 1.0, boundary=pins, method="expm")
    t_u, y = clock(gs.heat_diffusion, G, x0, 1.0, boundary=pins, method="euler")
    diff = max(float(np.abs(x[v] - y[v]).max()) for v in G)
    print(f"expm_multiply action   {t_e:7.2f} s")
    print(f"explicit Euler         {t_u:7.2f} s   (step 1/λ_max; in-place CSR products, no "
          f"allocation per step); max |Euler - exact| = {diff:.1e}")


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--only", nargs="*",
                   default=["assembly", "harmonic", "solvers", "cohomology", "diffusion"])
    p.add_argument("--nodes", type=int, default=1_000_000)
    p.add_argument("--series", type=int, nargs="*", default=[1_000, 10_000, 100_000, 1_000_000])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    threads = set_threads(args.threads)
    print(f"machine: {machine()}\nBLAS: {threads}")
    for name in args.only:
        {"assembly": assembly, "harmonic": harmonic, "solvers": solvers,
         "cohomology": cohomology, "diffusion": diffusion}[name](args)


if __name__ == "__main__":
    main()
