"""One run's variables (:class:`RunVariables`) and one variable's data
(:class:`VariableData`), read from the per-run HDF5 file and the database.

This is the second reader of the per-run file beside :mod:`runtable.store.celldata`,
and stays one: that one reads a cell for display (downsampled, in the web page's
forms), this one gives the whole object as the reference's API does (xarray, pandas,
plotly); both read the format :mod:`runtable.execute.fragment` writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from ..execute.fragment import OBJTYPE_ATTR

if TYPE_CHECKING:
    import pandas as pd

    from ..store import DatabaseFolder

# Titles of the two variables that have no row in the `variables` table.
_SPECIAL_TITLES = {"start_time": "Timestamp", "comment": "Comment"}


class DataType(Enum):
    """What kind of object a variable's data is, from its ``_damnit_objtype`` attribute."""

    DataArray = "dataarray"
    DataFrame = "dataframe"
    Dataset = "dataset"
    Image = "image"
    PlotlyFigure = "PlotlyFigure"
    Series = "series"
    Timestamp = "timestamp"


def _decode_attr(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _type_hint(obj: h5py.Group | h5py.Dataset) -> DataType | None:
    hint = _decode_attr(obj.attrs.get(OBJTYPE_ATTR, ""))
    return DataType(hint) if hint else None


def _open_h5(path: Path) -> h5py.File:
    # Default locking, like xarray's h5netcdf backend: HDF5 refuses to reopen a
    # file (which read() does for NetCDF groups) with different locking flags.
    # The store never rewrites a per-run file in place, it replaces it atomically.
    return h5py.File(path, "r")


class VariableData:
    """One variable of one run. Get it by indexing a :class:`Database` or
    :class:`RunVariables`, not by creating it::

        var = db[100, "xgm_flux"]
        var.read(), var.summary(), var.units
    """

    def __init__(self, name: str, title: str, proposal: int, run: int, h5_path: Path,
                 db: DatabaseFolder, db_only: bool) -> None:
        self._name = name
        self._title = title
        self._proposal = proposal
        self._run = run
        self._h5_path = h5_path
        self._db = db
        self._db_only = db_only

    @property
    def name(self) -> str:
        """The variable's name (its function name in the context file)."""
        return self._name

    @property
    def title(self) -> str:
        """The variable's title (its name when no title was given)."""
        return self._title

    @property
    def proposal(self) -> int:
        return self._proposal

    @property
    def run(self) -> int:
        return self._run

    @property
    def file(self) -> Path:
        """The run's HDF5 file (user-editable variables and comments are not in it)."""
        return self._h5_path

    @property
    def units(self) -> str | None:
        """Physical units recorded with the summary, if any."""
        return (self._db.get_attributes(self._proposal, self._run, self._name) or {}).get(
            "units")

    def type_hint(self) -> DataType | None:
        """The :class:`DataType` of the stored data, or None for plain arrays/scalars."""
        if self._db_only:
            return None
        with self._group() as group:
            return _type_hint(group) if group is not None else None

    @contextmanager
    def _group(self) -> Iterator[h5py.Group | None]:
        if not self._h5_path.is_file():
            yield None
            return
        with _open_h5(self._h5_path) as f:
            yield f.get(self._name)

    def _read_xarray(self, group: str, one_array: bool) -> Any:
        import xarray as xr

        load = xr.load_dataarray if one_array else xr.load_dataset
        obj = load(self._h5_path, group=group, engine="h5netcdf")
        # Our bookkeeping attributes are not the user's metadata.
        obj.attrs = {k: v for k, v in obj.attrs.items() if not k.startswith("_damnit_")}
        return obj

    @staticmethod
    def _read_parquet(dset: h5py.Dataset) -> Any:
        import pandas as pd

        return pd.read_parquet(BytesIO(dset[()].tobytes()), engine="pyarrow")

    def read(self, deserialize_plotly: bool = True) -> Any:
        """The variable's full data: an ndarray, scalar, string, xarray object,
        pandas object, or plotly figure (its JSON text with ``deserialize_plotly=False``).

        Variables that live only in the database (comments, user-editable
        variables) return their value, like :meth:`summary`.

            >>> db[100, "camera_mean"].read().shape   # doctest: +SKIP
            (256, 256)
        """
        if self._db_only:
            return self.summary()
        with self._group() as group:
            if group is None:
                # Only a summary was saved (e.g. Cell(None, summary_value=...)).
                return self.summary()
            if isinstance(group, h5py.Dataset):
                return group[()]
            hint = _type_hint(group)
            if hint is DataType.Dataset:
                return self._read_xarray(self._name, one_array=False)
            if hint is DataType.DataArray:
                return self._read_xarray(self._name, one_array=True)
            dset = group["data"]
            if hint is DataType.Series:
                return self._read_parquet(dset).iloc[:, 0]
            if hint is DataType.DataFrame:
                return self._read_parquet(dset)
            if hint is DataType.PlotlyFigure:
                raw = dset[()].tobytes()
                if not deserialize_plotly:
                    return raw.decode()
                import plotly.io as pio

                return pio.from_json(raw)
            if h5py.check_string_dtype(dset.dtype) is not None:
                if dset.ndim == 0:
                    value = dset[()]
                    return value.decode("utf-8", "surrogateescape") \
                        if isinstance(value, bytes) else str(value)
                strings = dset.asstr("utf-8", "surrogateescape")[()]
                # One string stored as a 1-element array (older writers) reads as
                # that string; the reference returns only the first element of
                # any string array, we return all of them.
                return strings.ravel()[0] if strings.size == 1 else strings
            return dset[()]

    def summary(self) -> Any:
        """The summary value shown in the table: a number, string, complex, ndarray
        (arrays and trendlines) or PNG ``bytes`` (thumbnails); None if there is none
        (``start_time`` has no summary row).

            >>> db[100, "xgm_flux"].summary()   # doctest: +SKIP
            1523.5
        """
        return self._db.get_value(self._proposal, self._run, self._name, as_written=True)

    def history(self) -> pd.DataFrame:
        """Every version of this cell that was kept, oldest first, the current one last:
        what the value was before each reprocessing or edit, and where each came from.

        Columns: ``kind`` (``value``, ``error``, ``cleared``), ``value`` (the summary, as
        :meth:`summary` gives it), ``error_cls``/``error``, ``written_at`` and
        ``replaced_at`` (times in the folder's ``timezone``), ``current``, ``origin``
        (``context file``, ``typed``, ``external``, ``another program``...),
        ``context_sha256`` (the context file's text that computed it, kept in
        ``context_history/texts/``), ``code_hash`` (of this variable's code in that
        text), ``job`` (in words), ``job_id``, ``executor``, ``slurm_job_id``, ``host``,
        ``user``, ``runtable`` (version) and ``fragment``. See docs/history.md.

            >>> db[100, "xgm_flux"].history()[["written_at", "value", "job"]]  # doctest: +SKIP
        """
        import pandas as pd

        from ..store.history import ROW_FIELDS, cell_history

        rows = [e.row() for e in cell_history(self._db, self._proposal, self._run,
                                              self._name)]
        df = pd.DataFrame(rows, columns=list(ROW_FIELDS))
        zone = self._db.get_setting("timezone")
        for column in ("written_at", "replaced_at"):
            df[column] = pd.to_datetime(df[column].astype("float64"), unit="s",
                                        utc=True).dt.tz_convert(zone)
        return df

    def preview_data(self, *, data_fallback: bool = True,
                     deserialize_plotly: bool = True) -> Any:
        """What the GUI plots for this cell: the explicit ``Cell(preview=...)`` if
        there is one, else (with *data_fallback*) the data itself when it is a 1D/2D
        numeric array or an RGB(A) image. Returns an ndarray, DataArray, pandas
        Series, plotly figure (or JSON text), or None.
        """
        if self._db_only or not self._h5_path.is_file():
            return None
        with _open_h5(self._h5_path) as f:
            xr_group: str | None = None
            dset: h5py.Dataset | None = None
            explicit = f.get(f".preview/{self._name}")
            if explicit is not None:
                hint = _type_hint(explicit)
                if isinstance(explicit, h5py.Group):
                    xr_group = explicit.name
                else:
                    dset = explicit
            elif data_fallback and self._name in f:
                group = f[self._name]
                hint = _type_hint(group)
                if hint in (DataType.Dataset, DataType.DataFrame):
                    return None
                if hint is DataType.DataArray:
                    xr_group = self._name
                elif isinstance(group, h5py.Group) and "data" in group:
                    dset = group["data"]
            else:
                return None

            if xr_group is not None:
                for obj in f[xr_group].values():
                    if isinstance(obj, h5py.Dataset) and (
                            obj.ndim > 3 or (obj.ndim == 3 and obj.shape[-1] not in (3, 4))):
                        return None  # too many dimensions: don't load it at all
                arr = self._read_xarray(xr_group, one_array=True)
                if arr.ndim and (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
                    return arr
                return None
            if dset is None:
                return None
            if hint is DataType.Series:
                return self._read_parquet(dset).iloc[:, 0]
            numeric = np.issubdtype(dset.dtype, np.number) or dset.dtype == bool
            if numeric and (dset.ndim in (1, 2) or (dset.ndim == 3 and dset.shape[-1] in (3, 4))):
                value = dset[()]
                if hint is DataType.PlotlyFigure:
                    raw = value.tobytes()
                    if not deserialize_plotly:
                        return raw.decode()
                    import plotly.io as pio

                    return pio.from_json(raw)
                return value
        return None

    def preview(self) -> Any:
        """Plot :meth:`preview_data` (for notebooks). Raises ValueError if there is none."""
        obj = self.preview_data()
        if obj is None:
            raise ValueError(f"No preview available for {self._name!r} in run {self._run}")
        if type(obj).__module__.startswith("plotly"):
            obj.show()
            return obj
        if hasattr(obj, "plot") and not isinstance(obj, np.ndarray):
            return obj.plot()  # pandas / xarray choose the right plot
        import matplotlib.pyplot as plt
        from matplotlib.image import AxesImage
        from matplotlib.lines import Line2D

        arr = np.asarray(obj).squeeze()
        fig, ax = plt.subplots()
        res: AxesImage | list[Line2D]
        if arr.ndim == 3:
            res = ax.imshow(arr)
            ax.set_axis_off()
            return res
        if arr.ndim == 2:
            res = ax.imshow(arr)
            res.set_clim(np.nanquantile(arr, 0.01), np.nanquantile(arr, 0.99))
            fig.colorbar(res, ax=ax)
        elif arr.ndim == 1:
            res = ax.plot(arr, "o")
            ax.set_ylabel(self._title)
        else:
            plt.close(fig)
            return None
        ax.set_title(f"{self._title} (run {self._run})")
        return res

    def __repr__(self) -> str:
        return f"<VariableData for {self._name!r} in p{self._proposal}, r{self._run}>"


class VariableFailed(KeyError):
    """A variable has no data for a run because computing it failed or was skipped;
    ``error_cls`` and ``message`` are the stored error. A :class:`KeyError`, as for any
    variable without data, so ``name in db[run]`` and ``except KeyError`` still work.

        >>> db[6, "ratio"]   # doctest: +SKIP
        VariableFailed: 'ratio' failed in p1234, r6: ZeroDivisionError: division by zero
    """

    def __init__(self, name: str, proposal: int, run: int, error_cls: str,
                 message: str) -> None:
        super().__init__(name)
        self.name, self.proposal, self.run = name, proposal, run
        self.error_cls, self.message = error_cls, message

    def __str__(self) -> str:
        what = "was skipped" if self.error_cls == "Skip" else "failed"
        return (f"{self.name!r} {what} in p{self.proposal}, r{self.run}: "
                f"{self.error_cls}: {self.message}")


class RunVariables:
    """The variables of one run. Index it by name or title::

        rv = db[100]
        rv.keys()          # names with data for this run
        rv["xgm_flux"]     # or rv["XGM flux"]
    """

    def __init__(self, db: DatabaseFolder, proposal: int, run: int) -> None:
        self._db = db
        self._proposal = proposal
        self._run = run
        self._h5_path = db.run_file(proposal, run)

    @property
    def proposal(self) -> int:
        return self._proposal

    @property
    def run(self) -> int:
        return self._run

    @property
    def file(self) -> Path:
        """The run's HDF5 file."""
        return self._h5_path

    def _locations(self) -> dict[str, bool]:
        """name -> True if it lives only in the database (comments, user variables)."""
        found: dict[str, bool] = {}
        if self._h5_path.is_file():
            with _open_h5(self._h5_path) as f:
                found.update((k, False) for k in f if not k.startswith("."))
                if ".reduced" in f:
                    found.update((k, False) for k in f[".reduced"] if k not in found)
        db_only = [*self._db.user_variable_names(), "comment"]
        for name in self._db.names_with_values(self._proposal, self._run, db_only):
            found[name] = True
        return found

    def _titles(self, names: set[str] | dict[str, bool]) -> dict[str, str]:
        titles = {name: title or name for name, title in self._db.titles().items()
                  if name in names}
        for name in names:
            titles.setdefault(name, _SPECIAL_TITLES.get(name, name))
        return titles

    def keys(self) -> list[str]:
        """Sorted names of the variables that have data (or a value) for this run."""
        return sorted(self._locations())

    def titles(self) -> list[str]:
        """Sorted titles of the variables in :meth:`keys`."""
        return sorted(self._titles(self._locations()).values())

    def __getitem__(self, key: str) -> VariableData:
        locations = self._locations()
        titles = self._titles(locations)
        if key not in locations:
            by_title = {t: n for n, t in titles.items()}
            if key not in by_title:
                self._raise_stored_error(key)
                raise KeyError(f"No data for variable {key!r} in p{self._proposal}, "
                               f"r{self._run}; available: {sorted(locations)}")
            key = by_title[key]
        return VariableData(key, titles[key], self._proposal, self._run, self._h5_path,
                            self._db, locations[key])

    def _raise_stored_error(self, key: str) -> None:
        """:class:`VariableFailed` if *key* (a name or title) failed for this run."""
        name = next((n for n, t in self._db.titles().items() if key in (n, t)), key)
        attributes = self._db.get_attributes(self._proposal, self._run, name) or {}
        if "error" in attributes:
            raise VariableFailed(name, self._proposal, self._run,
                                 str(attributes.get("error_cls") or "Error"),
                                 str(attributes["error"]))

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def _ipython_key_completions_(self) -> list[str]:
        return self.keys()

    def __repr__(self) -> str:
        return (f"<RunVariables for p{self._proposal}, r{self._run} "
                f"with {len(self.keys())} variables>")
