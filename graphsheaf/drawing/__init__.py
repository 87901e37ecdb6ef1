"""Drawing sheaves: Graphviz through pydot (always), matplotlib plots (optional)."""
from .dot import GraphvizNotFoundError, render, to_pydot, write_dot

__all__ = ["GraphvizNotFoundError", "render", "to_pydot", "write_dot"]
