"""The output maps φ of a neural sheaf, and the one copy of sigmoid and softmax.

Potentials (:mod:`.losses`) and the output edge both evaluate φ through
:func:`sigmoid` and :func:`softmax` here.
"""

import numpy as np

from ..exceptions import SheafError
from ..maps import StateDependentMap, map_registry

__all__ = ["OutputActivation", "sigmoid", "softmax"]


def sigmoid(z):
    """1 / (1 + e^{-z}) elementwise, as ½(1 + tanh(z/2)): one vectorised call, no overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=float)))


def softmax(z):
    """Softmax over the first axis (the output coordinates; columns are samples)."""
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


class OutputActivation(StateDependentMap):
    """Nonlinear output map φ (sigmoid or softmax) on the output edge.

    ``value(z)`` is φ(z). As a state-dependent map its ``matrix(s)`` is the Jacobian
    ``J_φ(s)``: linear tools evaluated at a state see the tangent (linearised) sheaf,
    which has the same unitriangular structure. Energies use φ itself.
    """

    type_name = "output_activation"

    def __init__(self, kind, n):
        if kind not in ("sigmoid", "softmax"):
            raise SheafError(f"output activation must be 'sigmoid' or 'softmax', got {kind!r}")
        self.kind, self.n = kind, int(n)
        self.shape = (self.n, self.n)

    def value(self, z):
        z = np.asarray(z, dtype=float)
        if self.kind == "sigmoid":
            return sigmoid(z)
        return softmax(z)

    def matrix(self, s):
        p = self.value(np.asarray(s, dtype=float))
        if self.kind == "sigmoid":
            return np.diag(p * (1 - p))
        return np.diag(p) - np.outer(p, p)

    def jvp_t(self, z, y):
        """``J_φ(z)ᵀ y`` batched over columns (J is symmetric for both activations)."""
        p = self.value(z)
        if self.kind == "sigmoid":
            return p * (1 - p) * y
        return p * y - p * np.sum(p * y, axis=0, keepdims=True)

    def envelope(self):
        return np.full(self.shape, 0.25 if self.kind == "sigmoid" else 1.0)

    def to_dict(self):
        return {"kind": self.kind, "n": self.n}

    @classmethod
    def from_dict(cls, data):
        return cls(data["kind"], int(data["n"]))

    def __eq__(self, other):
        return isinstance(other, OutputActivation) and (self.kind, self.n) == (other.kind, other.n)

    def __hash__(self):
        return hash((OutputActivation, self.kind, self.n))

    def __repr__(self):
        return f"OutputActivation({self.kind!r}, {self.n})"


map_registry[OutputActivation.type_name] = OutputActivation
