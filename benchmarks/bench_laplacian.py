"""Sheaf Laplacian assembly against networkx, side by side in one run.

Target (issue 2): the constant-sheaf Laplacian of a 100,000-node, 300,000-edge random
digraph in at most 0.2x the time of ``nx.laplacian_matrix`` on the same graph.

    python benchmarks/bench_laplacian.py [--nodes N] [--edges M] [--threads T]
"""
import argparse
import sys
import tracemalloc

sys.path.insert(0, __import__("os").path.dirname(__file__))
from _common import best_of, machine, set_threads  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=100_000)
    p.add_argument("--edges", type=int, default=300_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    threads = set_threads(args.threads)
    import networkx as nx

    import graphsheaf as gs

    print(f"machine: {machine()}\nBLAS: {threads}")
    g = nx.gnm_random_graph(args.nodes, args.edges, seed=1, directed=True)
    S1 = gs.constant_sheaf(g, dim=1)
    S4 = gs.random_sheaf(g, dims=4, edge_dims=4, rng=0)
    t_nx = best_of(lambda: nx.laplacian_matrix(g), args.repeat)
    t1 = best_of(lambda: gs.sheaf_laplacian(S1), args.repeat)
    t1_nv = best_of(lambda: gs.sheaf_laplacian(S1, validate=False), args.repeat)
    t4 = best_of(lambda: gs.sheaf_laplacian(S4), max(1, args.repeat // 2))
    t_d1 = best_of(lambda: gs.coboundary_matrix(S1), args.repeat)
    print(f"graph: {args.nodes:,} nodes, {args.edges:,} edges; best of {args.repeat}")
    print(f"nx.laplacian_matrix                     {t_nx * 1e3:9.1f} ms   1.00x")
    print(f"gs.sheaf_laplacian, constant dim 1      {t1 * 1e3:9.1f} ms   {t1 / t_nx:.2f}x  "
          f"(target <= 0.20x) {'OK' if t1 / t_nx <= 0.2 else 'MISSED'}")
    print(f"   ... without validation               {t1_nv * 1e3:9.1f} ms   {t1_nv / t_nx:.2f}x")
    print(f"gs.coboundary_matrix, constant dim 1    {t_d1 * 1e3:9.1f} ms   {t_d1 / t_nx:.2f}x")
    print(f"gs.sheaf_laplacian, random 4x4 maps     {t4 * 1e3:9.1f} ms   {t4 / t_nx:.2f}x  "
          f"(16x the entries of dim 1)")
    L1 = gs.sheaf_laplacian(S1)
    ref = nx.laplacian_matrix(g.to_undirected(reciprocal=False), nodelist=list(g))
    # parallel opposite edges count twice in the sheaf Laplacian, once in the undirected graph
    print(f"check: constant-sheaf L is symmetric PSD-shaped, nnz {L1.nnz:,} "
          f"(undirected nx Laplacian nnz {ref.nnz:,})")
    tracemalloc.start()
    L4 = gs.sheaf_laplacian(S4)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    nz = L4.data.nbytes + L4.indices.nbytes + L4.indptr.nbytes
    print(f"memory, random 4x4 maps: peak {peak / 2**20:.1f} MiB while assembling, result "
          f"{nz / 2**20:.1f} MiB ({L4.nnz:,} nonzeros): peak/result {peak / nz:.1f}x")
    return t1 / t_nx


if __name__ == "__main__":
    main()
