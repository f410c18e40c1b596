"""Read API for notebooks: a database folder as pandas / numpy / xarray objects.

It has the same meaning as the reference system's ``damnit.Damnit`` class, so a
notebook ports by changing one import (``Damnit`` is an alias of :class:`Database`)::

    from runtable import Database

    db = Database(1234)                  # proposal number, or a folder path
    df = db.table()                      # one row per run, one column per variable
    db[100].keys()                       # variables with data for run 100
    arr = db[100, "xgm_flux"].read()     # by name or by title
    db[100, "xgm_flux"].summary()        # the value shown in the table

``table()`` reads the store's columnar copy of the table (``table_copy/``, see
:mod:`runtable.store.tablecopy`) plus the runs changed since; a :class:`Database` held
open then reads only the runs that changed (see ``docs/performance.md`` for figures).
A folder without a copy is read from SQLite once, and a copy kept in the user's own
cache folder (:func:`cache_dir`).

Only the store, numpy and h5py are imported up front; pandas, xarray and plotly
are imported by the methods that return their objects, and matplotlib only by
:meth:`VariableData.preview`.

The package's modules: :mod:`.database` (:class:`Database`), :mod:`.variable` (one
run's variables and their data in the per-run HDF5 file), :mod:`.frame` (the table as a
pandas DataFrame, kept between calls).
"""

from __future__ import annotations

from ..store.tablecopy import cache_dir
from .database import Damnit, Database
from .variable import DataType, RunVariables, VariableData, VariableFailed

__all__ = ["Damnit", "DataType", "Database", "RunVariables", "VariableData", "VariableFailed",
           "cache_dir"]
