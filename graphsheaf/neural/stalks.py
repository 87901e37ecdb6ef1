"""The free stalks of a neural sheaf (and their forces) as views of one buffer."""

import numpy as np

__all__ = ["Stalks"]


class Stalks:
    """The free stalks of a network as views of one buffer, in cochain order.

    ``buf`` (shape (free coordinates, M)) holds z_1, a_1, z_2, ..., a_k, z_{k+1} (and y)
    in the order of the computation -- the free coordinates of the cochain vector of
    :func:`graphsheaf.to_vector` -- and ``z`` (k + 1 views), ``a`` (``a[0]`` is the pinned
    input, then k views) and ``y`` (or None) are views of it, so a whole step is one
    array operation on ``buf`` (``buf=`` supplies that array). With ``ones`` (a number) each
    a_ℓ block also carries the
    stalk's pinned constant coordinate as a row of that value after it (1 in a state, 0
    in a force, so that a step leaves it alone), and ``a_aug`` lists ``[a_ℓ; 1]`` (the
    input's as a new array): one product with ``[W_ℓ | b_ℓ]`` then applies the affine map.
    """

    def __init__(self, plan, X, with_y, ones=None, buf=None):
        k = plan.k
        sizes = [plan.dims[(i + 2) // 2] for i in range(2 * k + 1)]  # z1, a1, z2, ..., z_{k+1}
        if ones is not None:  # each a_ℓ block carries its pinned constant as a last row
            sizes = [s + i % 2 for i, s in enumerate(sizes)]
        if with_y:
            sizes.append(plan.dims[-1])
        self.buf = np.empty((sum(sizes), X.shape[1])) if buf is None else buf
        views = np.split(self.buf, np.cumsum(sizes)[:-1])
        self.z = views[0:2 * k + 1:2]
        blocks = views[1:2 * k:2]
        self.a_aug = None
        if ones is not None:
            for v in blocks:
                v[-1] = ones
            X_aug = np.empty((X.shape[0] + 1, X.shape[1]))
            X_aug[:-1], X_aug[-1] = X, 1.0
            self.a_aug = [X_aug] + blocks
            blocks = [v[:-1] for v in blocks]
        self.a = [X] + blocks
        self.y = views[-1] if with_y else None
        self.plan = plan

    def node(self, node):
        kind, l = self.plan.locate(node)
        if kind == "y":
            return self.y
        return self.z[l] if kind == "z" else self.a[l]

    def load(self, z, a, y):
        for v, x in zip(self.z + self.a[1:], list(z) + list(a[1:])):
            v[...] = x
        if self.y is not None:
            self.y[...] = y
