"""The run table as a pandas DataFrame: columns from :class:`~runtable.store.table.
TableColumns`, and :class:`HeldFrame`, the frame a :class:`~.database.Database` keeps
between calls and patches where runs changed."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from ..store.columns import column_order
from ..store.table import (
    KIND_ERROR,
    KIND_MISSING,
    KIND_NONE,
    KIND_VALUE,
    PLACEHOLDERS,
    TableColumns,
)

if TYPE_CHECKING:
    import pandas as pd

# Columns of run_info that the table shows; variables can't take these names.
FIXED = ("proposal", "run", "start_time", "added_at")

# Kinds of cells a numeric column may hold and stay numeric (None becomes NaN).
_NUMBER_OR_NONE = np.zeros(256, dtype=bool)
_NUMBER_OR_NONE[[KIND_VALUE, KIND_NONE, KIND_ERROR]] = True
_NUMBER_OR_MISSING = _NUMBER_OR_NONE.copy()
_NUMBER_OR_MISSING[KIND_MISSING] = True


@functools.cache
def copy_on_write() -> bool:
    """Whether pandas copies data a frame shares before changing it (always from 3)."""
    import pandas as pd

    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    return pd.get_option("mode.copy_on_write") is True


def _start_times(table: TableColumns, rows: np.ndarray, timezone: str) -> pd.Series:
    import pandas as pd

    return pd.to_datetime(pd.Series(table.start_time[rows], dtype=float),
                          unit="s", utc=True).dt.tz_convert(timezone)


def _frame_series(table: TableColumns, timezone: str) -> dict[str, pd.Series]:
    """The columns of the DataFrame of :meth:`Database.table`, in order, from the
    table's columns, times in ``timezone`` (the folder's setting: every view of the
    table shows the same times).

    Dtypes are those pandas infers for the cells as Python objects (the
    reference reader's rule): a column of numbers with failed cells (None)
    becomes float64; one with never-computed cells (pd.NA) stays object.
    The common cases are built from numpy arrays directly.
    """
    import pandas as pd

    rows = np.flatnonzero(~np.isnan(table.start_time))  # runs the DAQ has taken
    n_rows = len(rows)
    start = _start_times(table, rows, timezone)
    columns: dict[str, Any] = {
        "proposal": pd.Series(table.proposal[rows].tolist(), dtype=object).infer_objects(),
        "run": pd.Series(table.run[rows].tolist(), dtype=object).infer_objects(),
        "start_time": start,
    }
    unset = []
    # By name, as the reference's reader orders them.
    for name, column in sorted(table.columns.items()):
        if name in FIXED:
            continue
        if not column.present().any():
            unset.append(name)  # declared but never computed: a column of None
            continue
        meta = table.variables.get(name)
        columns[name] = _frame_column(column.kind[rows], column.values[rows],
                                      meta.type if meta is not None else None)
    for name in unset:
        columns[name] = pd.Series([None] * n_rows, dtype=object)
    if "comment" not in columns:
        columns["comment"] = pd.Series([None] * n_rows, dtype=object)
    ordered = ["proposal", "run", "start_time", "comment"]
    ordered += [c for c in column_order(table.variables.values(), columns) if c in columns]
    ordered += [c for c in columns if c not in ordered]
    return {c: columns[c] for c in ordered}


def _frame_column(kind: np.ndarray, values: np.ndarray, user_type: str | None = None
                  ) -> pd.Series:
    import pandas as pd

    shown = kind == KIND_VALUE
    # Booleans (a typed column a person fills, or a variable that returned bools) and a
    # person's integers: their own nullable dtype, not SQLite's 0/1, nor object or
    # float64 for a column with gaps.
    boolean = values.dtype == np.bool_ or user_type == "boolean"
    if (boolean or user_type == "integer") and _NUMBER_OR_MISSING[kind].all() and (
            values.dtype.kind in "biu" or (values.dtype == object and all(
                isinstance(v, int) for v in values[shown].tolist()))):
        data = np.zeros(len(values), np.int64)
        data[shown] = values[shown]
        if boolean:
            return pd.Series(pd.arrays.BooleanArray(data != 0, ~shown))
        return pd.Series(pd.arrays.IntegerArray(data, ~shown))
    if values.dtype != object and _NUMBER_OR_NONE[kind].all():
        if shown.all():
            return pd.Series(values)
        # Numbers and None: pandas makes that float64 with NaN.
        floats = values.astype(np.float64)
        floats[~shown] = np.nan
        return pd.Series(floats)
    cells = values.astype(object)
    cells[kind == KIND_MISSING] = pd.NA
    cells[(kind == KIND_NONE) | (kind == KIND_ERROR)] = None
    for code, placeholder in PLACEHOLDERS.items():
        cells[kind == code] = placeholder
    return pd.Series(cells, dtype=object, copy=False).infer_objects()


class HeldFrame:
    """The DataFrame of a held :class:`Database` and its block layout, so that a
    refresh that changed a few runs costs those rows, not a new frame of every column
    (0.35 s of CPU at 20,000 x 500, most of it pandas inferring the types of object
    columns and copying every column into its blocks).

    The frame is made of blocks as pandas makes them (one 2D array per numpy dtype,
    one array per column of another dtype) through ``create_dataframe_from_blocks``;
    a patch copies the blocks it changes (frames handed out keep the old ones) and
    gives every column what :func:`_frame_series` gives: a column whose type could
    change (an object column, one whose changed cells alone have another dtype) is
    made whole again, and anything else (rows added or removed, columns added,
    removed or reordered, a dtype changed) builds the frame anew.
    """

    def __init__(self, table: TableColumns, timezone: str) -> None:
        import pandas as pd

        self.timezone = timezone
        self.rows = np.flatnonzero(~np.isnan(table.start_time))
        series = _frame_series(table, timezone)
        self.names = list(series)
        self.dtypes = {name: s.dtype for name, s in series.items()}
        self.unset = {name for name in self.names
                      if name not in FIXED and (table.columns.get(name) is None
                                                 or not table.columns[name].present().any())}
        if _create_from_blocks() is None:
            self.blocks: list[tuple[Any, np.ndarray]] | None = None
            self.frame = pd.DataFrame(series)
            return
        # (Columns of one numpy dtype in one 2D block, in column order: as pandas
        # consolidates them.)
        groups: dict[np.dtype, list[int]] = {}
        self.blocks = []
        self.where: dict[str, tuple[int, int]] = {}
        arrays = list(series.values())
        for j, (name, column) in enumerate(series.items()):
            if isinstance(column.dtype, np.dtype):
                groups.setdefault(column.dtype, []).append(j)
            else:
                self.where[name] = (len(self.blocks), -1)
                self.blocks.append((column.array, np.array([j], np.intp)))
        for dtype, positions in groups.items():
            values = np.empty((len(positions), len(self.rows)), dtype)
            for k, j in enumerate(positions):
                values[k] = arrays[j].to_numpy()
                self.where[self.names[j]] = (len(self.blocks), k)
            self.blocks.append((values, np.array(positions, np.intp)))
        self.frame = self._assemble()

    def _assemble(self) -> pd.DataFrame:
        import pandas as pd

        assert self.blocks is not None
        return _create_from_blocks()(self.blocks, pd.RangeIndex(len(self.rows)),
                                     pd.Index(self.names))

    def patch(self, table: TableColumns, changes: Any) -> bool:
        """Bring the frame up to *table*, which *changes* (a :class:`TableChanges`)
        made from the table the frame was made of; False if it must be made anew."""
        if self.blocks is None or changes.full or changes.variables_changed:
            return False
        if not np.array_equal(np.flatnonzero(~np.isnan(table.start_time)), self.rows):
            return False
        positions = np.flatnonzero(np.isin(self.rows, changes.rows))
        rows = self.rows[positions]
        blocks = list(self.blocks)
        copied: set[int] = set()

        def put(name: str, series: pd.Series, whole: bool) -> None:
            """Column *name* whole (*whole*) or its changed rows."""
            b, k = self.where[name]
            values, placement = blocks[b]
            if k < 0:
                if not whole:
                    values = values.copy()
                    values[positions] = series.array
                else:
                    values = series.array
                blocks[b] = (values, placement)
                return
            if b not in copied:
                values = values.copy()
                blocks[b] = (values, placement)
                copied.add(b)
            if not whole:
                values[k, positions] = series.to_numpy()
            else:
                values[k] = series.to_numpy()

        for name in changes.names:
            if name in FIXED:
                continue
            column = table.columns.get(name)
            shown = column is not None and bool(column.present().any())
            if name not in self.where or shown == (name in self.unset):
                return False  # a column added, removed, set or emptied
            if column is None or not shown or not len(rows):
                continue
            meta = table.variables.get(name)
            user_type = meta.type if meta is not None else None
            dtype = self.dtypes[name]
            part = None
            if dtype != np.dtype(object):
                part = _frame_column(column.kind[rows], column.values[rows], user_type)
                if part.dtype != dtype:
                    part = None
            if part is not None:
                put(name, part, whole=False)
                continue
            # (Whether the type of an object column changes depends on every cell.)
            full = _frame_column(column.kind[self.rows], column.values[self.rows], user_type)
            if full.dtype != dtype:
                return False
            put(name, full, whole=True)
        if len(rows):
            put("start_time", _start_times(table, self.rows, self.timezone), whole=True)
        self.blocks = blocks
        self.frame = self._assemble()
        return True


@functools.cache
def _create_from_blocks() -> Any:
    """pandas' ``create_dataframe_from_blocks`` (pandas 3), or None."""
    try:
        from pandas.api.internals import create_dataframe_from_blocks
    except ImportError:
        return None
    return create_dataframe_from_blocks
