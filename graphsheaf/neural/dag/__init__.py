"""Residual, skip-connection and convolutional networks as sheaves (DAG sheaves).

:func:`dag_sheaf` builds one from a list of operations, :func:`from_torch` from any
``torch.fx``-traceable module, :func:`to_torch` goes back. The algorithms of
:mod:`graphsheaf.neural` accept DAG sheaves and compute with the compiled
:class:`DagPlan`; ``docs/architectures.md`` states what of the paper carries over.
"""
from .api import (dag_backprop_gradients, dag_boundary, dag_forward, dag_local_gradients,
                  dag_predict)
from .build import dag_sheaf
from .plan import DagPlan, is_dag_sheaf

__all__ = ["DagPlan", "dag_backprop_gradients", "dag_boundary", "dag_forward",
           "dag_local_gradients", "dag_predict", "dag_sheaf", "is_dag_sheaf"]
