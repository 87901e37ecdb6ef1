"""Drawing sheaves: Graphviz through pydot (always), matplotlib pictures (optional extra)."""
from .dot import GraphvizNotFoundError, render, to_pydot, write_dot
from .mpl import draw, draw_neural

__all__ = ["GraphvizNotFoundError", "draw", "draw_neural", "render", "to_pydot", "write_dot"]
