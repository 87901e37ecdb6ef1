"""Short reprs for result objects: sizes and key numbers, never whole arrays."""

import dataclasses

import numpy as np

#: lists, tuples and dicts longer than this are summarised by their length
MAX_ITEMS = 6


def _brief(value):
    if isinstance(value, np.ndarray):
        return f"<array {value.shape}>" if value.size > 1 else repr(value.ravel()[0].item()) \
            if value.size else "<array (0,)>"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, (np.integer, np.bool_)):
        return repr(value.item())
    if isinstance(value, dict):
        if len(value) > MAX_ITEMS or any(isinstance(v, (np.ndarray, list, dict)) for v in value.values()):
            return f"<{len(value)} entries>"
        return "{" + ", ".join(f"{k!r}: {_brief(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS or any(isinstance(v, (np.ndarray, list, dict)) for v in value):
            return f"<{len(value)} items>"
        inner = ", ".join(_brief(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if hasattr(value, "nodes") and hasattr(value, "edges"):  # a graph
        return f"<graph: {value.number_of_nodes()} nodes, {value.number_of_edges()} edges>"
    text = repr(value)
    return text if len(text) <= 60 else f"<{type(value).__name__}>"


def short_repr(obj, fields=None):
    """``Name(field=value, ...)`` with arrays as shapes and long containers as counts.

    ``fields`` defaults to the dataclass fields (those with ``repr=True``)."""
    if fields is None:
        fields = [f.name for f in dataclasses.fields(obj) if f.repr and not f.name.startswith("_")]
    parts = [f"{name}={_brief(getattr(obj, name))}" for name in fields]
    return f"{type(obj).__name__}({', '.join(parts)})"
