"""Every random source of graphsheaf: NumPy seeds and Generators, and the authors' PyTorch stream.

``random_source(rng)`` turns a seed, a NumPy Generator or a :class:`TorchSeed` into a
``draw(shape)`` of N(0, 1) numbers; the datasets, the weight initialisation and the
heat equation's random starts all draw through it, so one ``TorchSeed`` reproduces
the authors' runs digit for digit.
"""

import numpy as np

__all__ = ["TorchSeed", "random_source"]


class TorchSeed:
    """Draw N(0, 1) numbers with PyTorch's CPU generator, as the authors' code does.

    ``TorchSeed(42)`` calls ``torch.manual_seed(42)`` once and then serves
    ``torch.randn(shape, dtype=float64)`` in order, so data, weights and stalks can
    match the authors' runs digit for digit. Needs ``pip install graphsheaf[torch]``.
    """

    def __init__(self, seed):
        try:
            import torch
        except ImportError as err:
            raise ImportError("TorchSeed needs PyTorch: pip install graphsheaf[torch]") from err
        self.torch = torch
        self.seed = int(seed)
        torch.manual_seed(self.seed)

    def normal(self, shape):
        return self.torch.randn(*shape, dtype=self.torch.float64).numpy().copy()

    def uniform(self, shape):
        return self.torch.rand(*shape, dtype=self.torch.float64).numpy().copy()

    def permutation(self, n):
        return self.torch.randperm(n).numpy().copy()


def random_source(rng):
    """Return ``draw(shape) -> N(0, 1) array`` for a seed, a Generator or a TorchSeed.

    Examples
    --------
    >>> from graphsheaf._random import random_source
    >>> random_source(0)((2,)).shape
    (2,)
    """
    if isinstance(rng, TorchSeed):
        return rng.normal
    gen = np.random.default_rng(rng)
    return gen.standard_normal
