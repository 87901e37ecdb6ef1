"""Shared doctest namespace: examples may use gs, nx and np without importing them."""
import networkx as nx
import numpy as np
import pytest

import graphsheaf as gs


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace.update(gs=gs, nx=nx, np=np)
