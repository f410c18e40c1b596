"""Executing a context file for one run and writing the result fragment.

- :func:`execute_run` runs a context for one run and returns a :class:`RunOutcome`
  (jobs call it in a warm parent's forked child, the service's and each Slurm
  array task's; ``python -m runtable.execute`` runs one run in a new interpreter:
  :func:`.subprocess.command`);
- :func:`write_fragment` / :func:`read_fragment` write and read the per-execution
  HDF5 fragment the store merges;
- :func:`summarise` computes the table's summary of a cell.

Heavy libraries (matplotlib, plotly, xarray, pandas) are imported only when a value
needs them.
"""

from .fragment import FragmentContents, read_fragment, write_fragment
from .runner import RunOutcome, execute_run
from .summary import Summary, summarise

__all__ = [
    "FragmentContents",
    "RunOutcome",
    "Summary",
    "execute_run",
    "read_fragment",
    "summarise",
    "write_fragment",
]
