"""Shared helpers for the benchmark scripts: thread control, timing, machine facts."""
import os
import platform
import sys
import time


def set_threads(n):
    """Limit BLAS/OpenMP threads to n; call before heavy numpy work. Returns a description."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
        threadpool_limits(n)
        libs = ", ".join(f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads)"
                         for i in threadpool_info())
        return libs or f"{n} thread(s)"
    except ImportError:
        return f"{n} thread(s) via environment (threadpoolctl not installed)"


def best_of(fn, repeat=5, number=1):
    """Minimum wall time of ``number`` calls, over ``repeat`` rounds (seconds per call).

    Each call's return value is kept until the clock stops, so the time measured is the
    time to produce the result, not to free the previous one.
    """
    times = []
    for _ in range(repeat):
        results = []
        t = time.perf_counter()
        for _ in range(number):
            results.append(fn())
        times.append((time.perf_counter() - t) / number)
        del results  # results are freed after the clock stops, for every contender alike
    return min(times)


def best_of_alternating(fns, repeat=5, number=1):
    """Minimum wall time per call of each of ``fns``, over ``repeat`` rounds in which the
    functions take turns (``number`` calls each), so that load on the machine and first
    touches of memory fall on every contender alike. Returns one time per function."""
    times = [[] for _ in fns]
    for _ in range(repeat):
        for t, fn in zip(times, fns):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            t.append((time.perf_counter() - start) / number)
    return [min(t) for t in times]


def machine():
    return (f"python {sys.version.split()[0]}, {platform.machine()}, "
            f"{os.cpu_count()} cores, {platform.platform()}")
