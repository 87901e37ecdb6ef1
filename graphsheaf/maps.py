"""Restriction maps that depend on the current state of a stalk.

A constant restriction map is any 2-D array-like. A *state-dependent* map is an
object following the small protocol of :class:`StateDependentMap`: it has a fixed
``shape`` and evaluates to a matrix once the value of the stalk it reads is known.
The ReLU gate ``R_z = diag(1[z >= 0])`` of Bosca & Ghrist's neural sheaf is the
standard example (:class:`ReLUGate`).

Generic functions (``coboundary_matrix``, ``sheaf_laplacian``, ``harmonic_extension``,
...) evaluate such maps at a ``state=`` assignment. The map attached to an edge end
reads the state of the node at that end.
"""

import numpy as np

__all__ = ["ReLUGate", "StateDependentMap", "is_state_dependent", "map_registry"]


class StateDependentMap:
    """Protocol for a restriction map evaluated at the state of its node.

    Subclasses set ``shape = (rows, cols)`` and implement :meth:`matrix`. They may
    override :meth:`apply` with a vectorised version and :meth:`envelope` with a
    tighter bound. To survive :func:`graphsheaf.write_json`, a subclass registers
    itself in :data:`map_registry` under ``type_name`` and implements
    :meth:`to_dict` / :meth:`from_dict`.
    """

    type_name = None
    shape = (0, 0)

    def matrix(self, s):
        """Return the (rows, cols) matrix of the map at stalk value ``s`` of shape (cols,)."""
        raise NotImplementedError

    def apply(self, s, x):
        """Return ``matrix(s) @ x``; ``s`` and ``x`` have shape (cols,) or (cols, M).

        With a batch of M states each column uses its own matrix.
        """
        s = np.asarray(s, dtype=float)
        x = np.asarray(x, dtype=float)
        if s.ndim == 1:
            return self.matrix(s) @ x
        return np.stack([self.matrix(s[:, m]) @ x[:, m] for m in range(s.shape[1])], axis=1)

    def rapply(self, s, y):
        """Return ``matrix(s).T @ y`` (the adjoint), batched like :meth:`apply`."""
        s = np.asarray(s, dtype=float)
        y = np.asarray(y, dtype=float)
        if s.ndim == 1:
            return self.matrix(s).T @ y
        return np.stack([self.matrix(s[:, m]).T @ y[:, m] for m in range(s.shape[1])], axis=1)

    def envelope(self):
        """An entrywise upper bound on ``abs(matrix(s))`` over all states (for step sizes)."""
        raise NotImplementedError

    def to_dict(self):
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data):
        raise NotImplementedError


class ReLUGate(StateDependentMap):
    """The ReLU gate ``R_z = diag(1[z >= 0])`` (Bosca & Ghrist, tie rule z = 0 active).

    Parameters
    ----------
    n : int
        Size of the square gate.
    strict : bool, default False
        Use the mask ``z > 0`` instead of the authors' ``z >= 0``.

    Examples
    --------
    >>> R = ReLUGate(3)
    >>> R.matrix(np.array([-1.0, 0.0, 2.0])).diagonal().tolist()
    [0.0, 1.0, 1.0]
    """

    type_name = "relu_gate"

    def __init__(self, n, *, strict=False):
        self.n = int(n)
        self.strict = bool(strict)
        self.shape = (self.n, self.n)

    def mask(self, s):
        s = np.asarray(s, dtype=float)
        return (s > 0) if self.strict else (s >= 0)

    def matrix(self, s):
        return np.diag(self.mask(s).astype(float))

    def apply(self, s, x):
        return self.mask(s) * np.asarray(x, dtype=float)

    rapply = apply  # a diagonal gate is its own transpose

    def envelope(self):
        return np.eye(self.n)

    def to_dict(self):
        return {"n": self.n, "strict": self.strict}

    @classmethod
    def from_dict(cls, data):
        return cls(int(data["n"]), strict=bool(data.get("strict", False)))

    def __eq__(self, other):
        return isinstance(other, ReLUGate) and (self.n, self.strict) == (other.n, other.strict)

    def __hash__(self):
        return hash((ReLUGate, self.n, self.strict))

    def __repr__(self):
        return f"ReLUGate({self.n}{', strict=True' if self.strict else ''})"


#: name -> class, used by the JSON reader to rebuild state-dependent maps safely.
map_registry = {ReLUGate.type_name: ReLUGate}


def is_state_dependent(A):
    """True when ``A`` follows the state-dependent map protocol."""
    return isinstance(A, StateDependentMap)
