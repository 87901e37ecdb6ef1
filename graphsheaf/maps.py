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

from .exceptions import SheafError

__all__ = ["PiecewiseLinearGate", "ReLUGate", "StateDependentMap", "is_state_dependent",
           "map_registry"]


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


class PiecewiseLinearGate(StateDependentMap):
    """An elementwise continuous piecewise-linear activation as a restriction map.

    ``g(z) = σ_r z + τ_r`` on region r, the regions being cut by ``breakpoints``
    ``t_0 < t_1 < ...``; g is continuous, with ``g(0) = offset``. Evaluated at a
    state it is the linear map ``diag(σ_r)`` -- or, when some region has an intercept
    τ_r ≠ 0 (hard-tanh, ReLU6), ``[diag(σ_r) | τ_r]`` acting on a stalk that carries
    a pinned 1 after its n coordinates, exactly as the biases ride on pinned ones.

    Parameters
    ----------
    n : int
        Number of neurons (the gate is n × n, or n × (n + 1) with intercepts).
    breakpoints : sequence of float
        Strictly increasing, finite; may be empty (a linear gate).
    slopes : array of shape (len(breakpoints) + 1,) or (n, len(breakpoints) + 1)
        Slope of each region, shared or per neuron (PReLU).
    offset : float, default 0
        ``g(0)``; with the slopes it fixes every intercept by continuity.
    strict : bool, default False
        Tie rule at a breakpoint: by default ``z = t_j`` belongs to the region above
        (the authors' ReLU rule ``z >= 0`` active); ``strict=True`` puts it below.

    Examples
    --------
    >>> g = gs.PiecewiseLinearGate(3, [-1.0, 1.0], [0.0, 1.0, 0.0])   # hard-tanh
    >>> g.value(np.array([-2.0, 0.5, 3.0])).tolist(), g.shape
    ([-1.0, 0.5, 1.0], (3, 4))
    >>> g.matrix(np.array([-2.0, 0.5, 3.0, 1.0])).tolist()
    [[0.0, 0.0, 0.0, -1.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    """

    type_name = "piecewise_linear_gate"

    def __init__(self, n, breakpoints, slopes, *, offset=0.0, strict=False, reads_one=False):
        try:
            n_int = int(n)
        except (TypeError, ValueError, OverflowError):
            raise SheafError(f"gate size must be an integer, got {n!r}") from None
        if n_int != n or n_int < 0:
            raise SheafError(f"gate size must be an integer >= 0, got {n!r}")
        bp = _finite_floats(breakpoints, "breakpoints").reshape(-1)
        if bp.size > 1 and not np.all(np.diff(bp) > 0):
            raise SheafError(f"gate breakpoints must be strictly increasing, got {bp.tolist()}")
        sl = _finite_floats(slopes, "slopes")
        if sl.shape not in ((bp.size + 1,), (n_int, bp.size + 1)):
            raise SheafError(f"gate slopes have shape {sl.shape}; expected ({bp.size + 1},) or "
                             f"({n_int}, {bp.size + 1}) for {bp.size} breakpoints")
        self.n, self.breakpoints, self.slopes = n_int, bp, sl
        self.offset = float(_finite_floats(offset, "offset"))
        self.strict = bool(strict)
        # intercepts by continuity from g(0) = offset: σ_{r-1} t + τ_{r-1} = σ_r t + τ_r at t_{r-1}
        r0 = int(np.searchsorted(bp, 0.0, side="left" if self.strict else "right"))
        tau = np.zeros(sl.shape)
        tau[..., r0] = self.offset
        for r in range(r0 + 1, bp.size + 1):
            tau[..., r] = tau[..., r - 1] + (sl[..., r - 1] - sl[..., r]) * bp[r - 1]
        for r in range(r0 - 1, -1, -1):
            tau[..., r] = tau[..., r + 1] + (sl[..., r + 1] - sl[..., r]) * bp[r]
        self.intercepts = tau
        self.has_intercept = bool(np.any(tau != 0))
        # reads_one: the stalk read carries a pinned 1 after its n coordinates even when no
        # region has an intercept (every vertex of a DAG sheaf does); its column is then 0
        self.reads_one = bool(reads_one) or self.has_intercept
        self.shape = (self.n, self.n + 1) if self.reads_one else (self.n, self.n)
        self._relu = (bp.size == 1 and bp[0] == 0 and sl.ndim == 1 and sl[0] == 0 and sl[1] == 1
                      and self.offset == 0)

    # -- elementwise evaluation (z has shape (n,) or (n, M)) ---------------------------------
    def region(self, z):
        """Index of the region of every entry of z (ties by the gate's rule), int array."""
        z = np.asarray(z, dtype=float)
        return np.searchsorted(self.breakpoints, z, side="left" if self.strict else "right")

    def _per_neuron(self, table, r):
        if table.ndim == 1:
            return table[r]
        rr = r.reshape(r.shape[0], -1)
        return np.take_along_axis(table, rr, axis=1).reshape(r.shape)

    def slope(self, z, out=None):
        """σ at z (the derivative the tie rule selects), same shape as z (``out=`` writes
        in place; ReLU's comparison is then written as floats directly)."""
        if self._relu:
            if out is None:
                return self._active(z).astype(float)
            return (np.greater if self.strict else np.greater_equal)(z, 0.0, out=out)
        res = self._per_neuron(self.slopes, self.region(z))
        if out is None:
            return res
        out[...] = res
        return out

    def _active(self, z):
        """ReLU's mask by the tie rule: z >= 0 (z > 0 when strict)."""
        z = np.asarray(z, dtype=float)
        return (z > 0) if self.strict else (z >= 0)

    def intercept(self, z):
        """τ at z, same shape as z."""
        return self._per_neuron(self.intercepts, self.region(z))

    def value(self, z, out=None):
        """g(z) elementwise (``out=`` writes in place)."""
        z = np.asarray(z, dtype=float)
        if self._relu:
            return np.maximum(z, 0.0, out=out)  # max(z, 0) whatever the tie rule
        r = self.region(z)
        res = self._per_neuron(self.slopes, r) * z
        if self.has_intercept:
            res += self._per_neuron(self.intercepts, r)
        if out is None:
            return res
        out[...] = res
        return out

    def slopes_of(self, r):
        """σ of given regions r (int array shaped like a state)."""
        return self._per_neuron(self.slopes, r)

    def intercepts_of(self, r):
        """τ of given regions r."""
        return self._per_neuron(self.intercepts, r)

    def values_at_breakpoints(self):
        """g(t_j), shape (J,) or (n, J)."""
        J = self.breakpoints.size
        return self.slopes[..., :J] * self.breakpoints + self.intercepts[..., :J]

    # -- the StateDependentMap protocol ----------------------------------------------------
    def _split(self, s):
        s = np.asarray(s, dtype=float)
        if s.shape[0] not in (self.n, self.shape[1]):
            raise SheafError(f"{self!r} reads a stalk of {self.shape[1]} coordinates, got {s.shape[0]}")
        return s[:self.n]

    def matrix(self, s):
        z = self._split(s)
        D = np.diag(self.slope(z))
        if self.reads_one:
            return np.hstack([D, (self.intercept(z) if self.has_intercept else np.zeros(self.n))[:, None]])
        return D

    def apply(self, s, x):
        z = self._split(s)
        x = np.asarray(x, dtype=float)
        y = self.slope(z) * x[:self.n]
        if self.has_intercept:
            y += self.intercept(z) * x[self.n]
        return y

    def rapply(self, s, y):
        z = self._split(s)
        y = np.asarray(y, dtype=float)
        top = self.slope(z) * y
        if not self.reads_one:
            return top
        last = np.sum(self.intercept(z) * y, axis=0, keepdims=True) if self.has_intercept else \
            np.zeros((1,) + top.shape[1:])
        return np.concatenate([top, last], axis=0)

    def envelope(self):
        s = np.abs(self.slopes).max(axis=-1) * np.ones(self.n)
        E = np.diag(s)
        if self.reads_one:
            return np.hstack([E, (np.abs(self.intercepts).max(axis=-1) * np.ones(self.n))[:, None]])
        return E

    def to_dict(self):
        out = {"n": self.n, "breakpoints": self.breakpoints.tolist(),
               "slopes": self.slopes.tolist(), "offset": self.offset, "strict": self.strict}
        if self.reads_one and not self.has_intercept:
            out["reads_one"] = True
        return out

    @classmethod
    def from_dict(cls, data):
        return cls(data["n"], data["breakpoints"], data["slopes"],
                   offset=data.get("offset", 0.0), strict=bool(data.get("strict", False)),
                   reads_one=bool(data.get("reads_one", False)))

    def _key(self):
        return (self.n, self.breakpoints.tobytes(), self.slopes.shape, self.slopes.tobytes(),
                self.offset, self.strict, self.reads_one)

    def __eq__(self, other):
        return isinstance(other, PiecewiseLinearGate) and self._key() == other._key()

    def __hash__(self):
        return hash((PiecewiseLinearGate,) + self._key())

    def __repr__(self):
        sl = self.slopes.tolist() if self.slopes.ndim == 1 else f"<{self.slopes.shape[0]} per-neuron>"
        extra = (f", offset={self.offset:g}" if self.offset else "") + \
            (", strict=True" if self.strict else "")
        return f"PiecewiseLinearGate({self.n}, {self.breakpoints.tolist()}, {sl}{extra})"


class ReLUGate(PiecewiseLinearGate):
    """The ReLU gate ``R_z = diag(1[z >= 0])`` (Bosca & Ghrist, tie rule z = 0 active).

    The piecewise-linear gate with one breakpoint at 0 and slopes (0, 1).

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
        super().__init__(n, [0.0], [0.0, 1.0], strict=strict)

    def mask(self, s):
        return self._active(s)

    def apply(self, s, x):
        return self.mask(self._split(s)) * np.asarray(x, dtype=float)

    rapply = apply  # a diagonal gate is its own transpose

    def to_dict(self):
        return {"n": self.n, "strict": self.strict}

    @classmethod
    def from_dict(cls, data):
        return cls(data["n"], strict=bool(data.get("strict", False)))

    def __repr__(self):
        return f"ReLUGate({self.n}{', strict=True' if self.strict else ''})"


def _finite_floats(x, what):
    try:
        arr = np.array(x, dtype=float)
    except (TypeError, ValueError):
        raise SheafError(f"gate {what} must be real numbers, got {x!r}") from None
    if not np.all(np.isfinite(arr)):
        raise SheafError(f"gate {what} must be finite, got {arr.tolist()}")
    return arr


#: name -> class, used by the JSON reader to rebuild state-dependent maps safely.
map_registry = {ReLUGate.type_name: ReLUGate,
                PiecewiseLinearGate.type_name: PiecewiseLinearGate}


def is_state_dependent(A):
    """True when ``A`` follows the state-dependent map protocol."""
    return isinstance(A, StateDependentMap)
