"""Shared doctest namespace: examples may use gs, gn, nx and np without importing them."""
import networkx as nx
import numpy as np
import pytest

import graphsheaf as gs
import graphsheaf.neural as gn


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace.update(gs=gs, gn=gn, nx=nx, np=np)
