"""Drawing sheaves: Graphviz through pydot (always), matplotlib plots (optional)."""
from .dot import GraphvizNotFoundError, render, to_pydot, write_dot

__all__ = ["to_pydot", "write_dot", "render", "GraphvizNotFoundError"]
