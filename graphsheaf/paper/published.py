"""The paper's published numbers, as printed, with their sources (``published.json``).

Every number an experiment compares with lives in that one file, keyed by experiment,
with the section of Bosca & Ghrist (arXiv 2603.14831) and of our account of it
(``docs/paper-spec.md``) it comes from. Values are strings as the paper prints them:
their last digit sets the rounding tolerance of a row (see :class:`~.report.Row`).
"""

import functools
import json
from importlib import resources

__all__ = ["published", "source"]


@functools.lru_cache(maxsize=1)
def _all():
    return json.loads(resources.files(__package__).joinpath("published.json").read_text("utf-8"))


def published(experiment):
    """The published values of one experiment (a dict, keyed as its rows are labelled)."""
    return _all()[experiment]["values"]


def source(experiment):
    """Where the experiment's published values come from."""
    return _all()[experiment]["source"]
