"""Text for diagrams, shared by the Graphviz and matplotlib drawings: stalk names (ℝ²),
small maps written out (with their signs), energies rounded to what is meaningful, and
which coordinates are pinned."""

import numpy as np
import scipy.sparse as sp

from ..layout import boundary_coordinates, stalk_offsets
from ..maps import is_state_dependent

__all__ = ["energy_text", "map_text", "pin_status", "space", "structural_pins"]

_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
#: maps with at most this many rows and columns are written out entry by entry
MAX_SHOWN = 3


def space(d, field="ℝ"):
    """``ℝ²``-style name of a stalk of dimension d."""
    return field + str(int(d)).translate(_SUPERSCRIPT)


def _number(x):
    if np.iscomplexobj(x):
        return f"{complex(x):.3g}".strip("()").replace("-", "−")
    x = float(x)
    if x == int(x) and abs(x) < 1e6:
        return str(int(x)).replace("-", "−")
    return f"{x:.3g}".replace("-", "−")


def map_text(A, max_shown=MAX_SHOWN):
    """A restriction map as text: "I", "−I", its entries (up to max_shown × max_shown, rows
    separated by ";"), or its shape."""
    if is_state_dependent(A):
        name = {"PiecewiseLinearGate": "gate", "ReLUGate": "ReLU gate", "MaxPoolMap": "max-select",
                "OutputActivation": "output φ"}.get(type(A).__name__, type(A).__name__)
        return f"{name} {A.shape[0]}×{A.shape[1]}"
    M = A.toarray() if sp.issparse(A) else np.asarray(A)
    r, c = M.shape
    if r == c and r > 0 and M.dtype.kind in "biufc":
        if np.array_equal(M, np.eye(r)):
            return "I" if r > 1 else "1"
        if np.array_equal(M, -np.eye(r)):
            return "−I" if r > 1 else "−1"
    if 0 < r <= max_shown and 0 < c <= max_shown and M.dtype.kind in "biufc":
        rows = ["  ".join(_number(x) for x in row) for row in M]
        return "[" + "; ".join(rows) + "]"
    return f"{r}×{c}"


def energy_text(value, top):
    """An edge energy to 3 significant digits; "0" below 1e-12 of the largest (rounding
    noise such as 2.5e-32 beside 0), "inf"/"nan" as such."""
    if not np.isfinite(value):
        return str(value)
    if value <= 1e-12 * max(top, 1e-300) or value == 0:
        return "0"
    return f"{value:.3g}"


def structural_pins(G):
    """The coordinates a sheaf pins by construction (``G.graph["pinned"]``), or None."""
    return G.graph.get("pinned")


def pin_status(G, pinned, dim="dim"):
    """Node -> "full" | "partial" for nodes with pinned coordinates.

    ``pinned`` (any boundary spec) is joined with the sheaf's own structural pins (the
    neural builder pins the constant-1 coordinates), so passing extra pins keeps the
    partly fixed colouring of those constants.
    """
    specs = [p for p in (structural_pins(G), pinned) if p is not None]
    if not specs:
        return {}
    index = np.unique(np.concatenate([boundary_coordinates(G, p, dim=dim).index for p in specs]))
    status = {}
    for v, sl in stalk_offsets(G, dim=dim).items():
        k = int(np.count_nonzero((index >= sl.start) & (index < sl.stop)))
        if k:
            status[v] = "full" if k == sl.stop - sl.start else "partial"
    return status
