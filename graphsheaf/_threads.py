"""Keep BLAS to one thread inside hot loops on small matrices.

On small matrices OpenBLAS threading costs far more than it saves (a small MLP
training step can be 30x slower). threadpoolctl (``pip install graphsheaf[speed]``)
is used when installed; otherwise this is a no-op.
"""
import contextlib


def single_blas_thread():
    """Context manager limiting BLAS to one thread when threadpoolctl is available."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
