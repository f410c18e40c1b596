"""Executing a context file for one run and writing the result fragment.

- :func:`execute_run` (in this process) and :func:`run_in_subprocess` (in the
  user's chosen Python) run a context for one run and return a :class:`RunOutcome`;
- :func:`write_fragment` / :func:`read_fragment` write and read the per-execution
  HDF5 fragment the store merges;
- :func:`summarise` computes the table's summary of a cell.

Heavy libraries (matplotlib, plotly, xarray, pandas) are imported only when a value
needs them.
"""

from .fragment import FragmentContents, read_fragment, write_fragment
from .runner import RunOutcome, execute_run
from .subprocess import run_in_subprocess
from .summary import Summary, summarise

__all__ = [
    "FragmentContents",
    "RunOutcome",
    "Summary",
    "execute_run",
    "read_fragment",
    "run_in_subprocess",
    "summarise",
    "write_fragment",
]
