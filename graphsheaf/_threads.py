"""Threads: BLAS kept to one thread in hot loops on small matrices, and a shared pool for
splitting large sparse kernels (which release the GIL) over the cores.

On small matrices OpenBLAS threading costs far more than it saves (a small MLP
training step can be 30x slower). threadpoolctl (``pip install graphsheaf[speed]``)
is used when installed; otherwise this is a no-op.
"""
import contextlib
import os

import numpy as np


def single_blas_thread():
    """Context manager limiting BLAS to one thread when threadpoolctl is available."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def available_workers():
    """Number of CPU cores this process may run on (the default ``workers`` of the solvers)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_POOLS = {}
# a forked child inherits the pools but not their threads: work submitted there would wait
# forever, so the child starts without pools (they are made again on first use)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOLS.clear)


def thread_pool(workers):
    """One shared thread pool per size, reused across products and solves."""
    if workers not in _POOLS:
        from concurrent.futures import ThreadPoolExecutor
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="graphsheaf")
    return _POOLS[workers]


def row_ranges(indptr, parts):
    """Split the rows of a CSR/BSR ``indptr`` into at most ``parts`` contiguous ranges of
    about equal stored entries; returns the range bounds (0, ..., n_rows)."""
    n_rows = len(indptr) - 1
    cuts = np.searchsorted(indptr, np.linspace(0, indptr[-1], parts + 1)[1:-1])
    return np.unique(np.concatenate([[0], np.minimum(cuts, n_rows), [n_rows]]))


def run_all(fn, items):
    """``fn(item)`` for every item: inline for one, else in the shared pool's threads (one
    per item), returning when all are done (an exception in one is raised here)."""
    if len(items) == 1:
        fn(items[0])
        return
    pool = thread_pool(len(items))
    for f in [pool.submit(fn, item) for item in items]:
        f.result()


def split_rows(fn, n, workers, *, at_least=1 << 18):
    """Run ``fn(rows)`` on ``workers`` contiguous slices covering ``range(n)`` in threads
    (one call on ``slice(0, n)`` when ``n`` is below ``at_least`` or ``workers`` is 1).
    For NumPy operations that release the GIL (``matmul``, ``take``) writing each slice
    of a preallocated result: the values do not depend on the split. (``np.take`` into
    ``out=`` is given ``mode="clip"`` by the callers: with the default "raise" NumPy
    buffers the whole result once more; their indices are in range by construction.)"""
    workers = max(1, int(workers))
    if workers == 1 or n < at_least:
        fn(slice(0, n))
        return
    cuts = np.linspace(0, n, workers + 1).astype(np.int64)
    run_all(fn, [slice(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])])
