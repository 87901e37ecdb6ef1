"""Exceptions and warnings raised by graphsheaf."""

__all__ = ["ConvergenceWarning", "DivergenceError", "NonUniqueExtensionError", "RankDecisionWarning",
           "SheafError"]


class SheafError(ValueError):
    """A sheaf, cochain or boundary is malformed.

    The message names the node or edge at fault and the shapes involved.
    """


class NonUniqueExtensionError(SheafError):
    """The harmonic extension is not unique: H^0(G, B; F) is not zero.

    Attributes
    ----------
    basis : ndarray of shape (dim C^0, h)
        Orthonormal basis (columns, in C^0 order, zero on pinned coordinates) of the
        relative global sections: the directions the boundary leaves undetermined.
    directions : list of str
        A short human-readable description of the nodes each direction touches.
    """

    def __init__(self, message, basis=None, directions=()):
        super().__init__(message)
        self.basis = basis
        self.directions = list(directions)


class DivergenceError(SheafError, FloatingPointError):
    """An explicit time-stepping scheme blew up (step too large for the spectrum)."""


class ConvergenceWarning(UserWarning):
    """An iterative method stopped before reaching its tolerance."""


class RankDecisionWarning(UserWarning):
    """A rank (a cohomology dimension) was decided close to its threshold.

    The smallest singular value counted as nonzero is less than 100 times the largest
    counted as zero (``Cohomology.gap`` < 100): the dimensions may change with ``tol``.
    """
