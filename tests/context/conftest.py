"""Fixtures for the context-language tests: real mock runs and a loader for snippets."""

from __future__ import annotations

import textwrap

import pytest

from runtable.context import Pipeline, Results

PROPOSAL = 1234


@pytest.fixture(scope="session")
def run1(mock_proposal):
    """Run 1 of the mock proposal, raw data, opened once for the session (read only)."""
    import extra_data

    return extra_data.RunDirectory(str(mock_proposal.raw_dir(1)))


def load(code: str, path: str = "context.py") -> Pipeline:
    """A pipeline from an indented code snippet."""
    return Pipeline.from_str(textwrap.dedent(code), path=path)


def run_code(code: str, data, run_number: int = 1, **context) -> Results:
    """Load ``code`` and execute it for ``data`` (a DataCollection or any object)."""
    pipeline = load(code).with_context(proposal=PROPOSAL, run_number=run_number, **context)
    return pipeline.execute(data=data)


HEADER = "import numpy as np\nfrom runtable.context import Variable, Cell, Skip, Group, Pipeline\n"
