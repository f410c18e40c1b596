"""The context-file language: ``Variable``, ``Cell``, ``Skip``, ``Group``, ``Pipeline``.

A context file is a Python file of ``@Variable`` functions; each is one column of the
run table, computed for each run::

    from runtable.context import Variable, Cell

    @Variable(title="Trains")
    def n_trains(run):
        return len(run.train_ids)

    @Variable(title="Mean flux", units="µJ")
    def flux(run, n: "var#n_trains"):
        return Cell(run["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].ndarray(),
                    summary="mean")

Files written for DAMNIT (``from damnit_ctx import ...``) load unchanged. Importing
this package is cheap: numpy only; plotting, xarray, pandas and extra_data load when
used.
"""

from .cell import Cell
from .errors import ContextFileErrors, DependencyError, GroupError, Problem
from .execution import Results
from .group import Group
from .metadata import set_metadata_provider
from .pipeline import Pipeline
from .tracking import progress, set_progress
from .variable import RunData, Skip, Variable

__all__ = [
    "Cell",
    "ContextFileErrors",
    "DependencyError",
    "Group",
    "GroupError",
    "Pipeline",
    "Problem",
    "Results",
    "RunData",
    "Skip",
    "Variable",
    "progress",
    "set_metadata_provider",
    "set_progress",
]
