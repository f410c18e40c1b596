"""The run table outside the browser: printed in a terminal (``runtable table``) and
written to files (``runtable export``); one cell's history in a terminal
(``runtable history``).

Both start from :meth:`runtable.api.Database.table` and :func:`tidy_table`, which
keeps its placeholders for cells that are not one value (``<thumbnail>``,
``<sparkline>``, ``<ndarray>``: :data:`runtable.store.table.PLACEHOLDERS`, the words
of the read API and of the reference's) and gives every column one type, so that a
spreadsheet or Parquet reader sees numbers as numbers.
"""

from __future__ import annotations

import math
import re
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .store.table import KIND_BLOB, PLACEHOLDERS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EXPORT_FORMATS", "FORMAT_SUFFIXES", "export_table", "load_table", "print_history",
           "print_table", "tidy_table"]

EXPORT_FORMATS = ("csv", "xlsx", "md", "parquet")
FORMAT_SUFFIXES = {".csv": "csv", ".xlsx": "xlsx", ".md": "md", ".markdown": "md",
                   ".parquet": "parquet"}
#: Widest a column gets in the terminal before its cells are cut with an ellipsis.
MAX_COLUMN_WIDTH = 28


def load_table(folder: str | Path, with_titles: bool = False, where: str | None = None
               ) -> pd.DataFrame:
    """The run table of a database folder, tidied (see :func:`tidy_table`); *where*:
    only the runs this filter expression keeps (``docs/filters.md``)."""
    from .api import Database

    with Database(folder) as db:
        return tidy_table(db.table(with_titles=with_titles, where=where))


def tidy_table(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of a :meth:`~runtable.api.Database.table` with placeholders renamed and
    one type per column: numeric columns (missing cells NaN), booleans, or text
    (missing cells None; a column mixing text and numbers becomes all text)."""
    import pandas as pd

    out = {}
    for name in df.columns:
        column = df[name]
        # Numbers and times are typed already; text may be object or pandas' str dtype.
        if (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
                or pd.api.types.is_datetime64_any_dtype(column)):
            out[name] = column
            continue
        values = [_tidy_value(v) for v in column]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            out[name] = pd.Series(values, dtype="boolean", index=df.index)
        elif present and all(isinstance(v, Real) and not isinstance(v, (bool, complex))
                             for v in present):
            out[name] = pd.Series([math.nan if v is None else v for v in values],
                                  dtype=float, index=df.index)
        else:
            out[name] = pd.Series([None if v is None else str(v) for v in values],
                                  dtype=object, index=df.index)
    return pd.DataFrame(out, index=df.index)


def _tidy_value(value: Any) -> Any:
    import pandas as pd

    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bytes):
        return PLACEHOLDERS[KIND_BLOB]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()  # numpy scalars
    return value


# -- terminal ------------------------------------------------------------------------------
def number_style(values: Any) -> tuple[str, int]:
    """How one column writes its numbers (the web GUI's rule, frontend/src/format.ts):
    ``("integer", 0)`` when all are whole; ``("exponent", 4)`` when some are very small
    (< 1e-4) or very large (>= 1e12); else ``("fixed", decimals)``, 4 decimals fewer for
    large values, so that a column's decimals line up and 11.0015 is not "11"."""
    finite = [abs(float(v)) for v in values if isinstance(v, Real)
              and not isinstance(v, (bool, complex)) and math.isfinite(v)]
    if all(v.is_integer() and v < 1e15 for v in finite):
        return ("integer", 0)
    nonzero = [v for v in finite if v]
    largest = max(finite, default=0.0)
    if (nonzero and min(nonzero) < 1e-4) or largest >= 1e12:
        return ("exponent", 4)
    digits = 1 if largest < 1 else math.floor(math.log10(largest)) + 1
    return ("fixed", min(4, max(0, 8 - digits)))


def format_cell(value: Any, style: tuple[str, int] | None = None) -> str:
    """A table cell as text for the terminal (numbers in their column's ``style``)."""
    import pandas as pd

    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, Real) and not isinstance(value, (bool, complex)) and \
            type(value).__name__ != "bool_":
        kind, decimals = style or number_style([value])
        if kind == "exponent":
            # As the GUI writes it: 3.5000e-7, not 3.5000e-07.
            return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{float(value):.{decimals}e}")
        if kind == "fixed":
            return f"{float(value):.{decimals}f}"
        if isinstance(value, Integral):
            return str(int(value))
        return str(int(float(value))) if float(value).is_integer() else repr(float(value))
    if isinstance(value, pd.Timestamp):
        return "" if pd.isna(value) else value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (bool,)) or type(value).__name__ == "bool_":
        return str(bool(value))  # as exports and pandas write it
    text = str(value)
    return text.splitlines()[0] + " …" if "\n" in text else text


def print_table(folder: str | Path, *, with_titles: bool = False,
                columns: list[str] | None = None, all_columns: bool = False,
                console: Any = None, where: str | None = None) -> None:
    """Print the run table with rich.

    Wide tables: by default the columns that fit the console's width are shown (the
    run number always), each at most :data:`MAX_COLUMN_WIDTH` characters with an
    ellipsis, and the others are named below the table. ``columns`` picks columns by
    name or title (KeyError for unknown ones); ``all_columns`` shows all, wrapping;
    ``where`` keeps the runs a filter expression selects.
    """
    import pandas as pd
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from .cli import runtable_command

    console = console or Console(highlight=False)
    df = load_table(folder, with_titles=with_titles, where=where)
    proposal_col, run_col = ("Proposal", "Run") if with_titles else ("proposal", "run")
    proposals = sorted(set(df[proposal_col])) if len(df) else []
    if len(proposals) == 1:
        df = df.drop(columns=[proposal_col])  # named in the title instead
    comment_col = "comment"
    if not columns and comment_col in df.columns and df[comment_col].isna().all():
        df = df.drop(columns=[comment_col])  # no comments yet: save the room
    if columns:
        columns = [_column_of(c, df.columns, _titles(folder)) for c in columns]
        df = df[[run_col, *[c for c in columns if c != run_col]]]

    cells = {}
    for c in df.columns:
        style = number_style(df[c])
        cells[c] = [format_cell(v, style) for v in df[c]]
    shown = list(df.columns)
    hidden: list[str] = []
    if not all_columns:
        shown, hidden = _fit(df.columns, cells, console.width, run_col)

    title = f"p{proposals[0]}: " if len(proposals) == 1 else ""
    title += f"{len(df)} run{'s' if len(df) != 1 else ''}"
    time_col = "Timestamp" if with_titles else "start_time"
    if time_col in df.columns and getattr(df[time_col].dt, "tz", None) is not None:
        title += f", times in {df[time_col].dt.tz}"  # the folder's `timezone` setting
    table = Table(title=title, title_justify="left", header_style="bold")
    for c in shown:
        numeric = pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        if all_columns:
            table.add_column(str(c), justify="right" if numeric else "left", overflow="fold")
        else:
            table.add_column(str(c), justify="right" if numeric else "left", no_wrap=True,
                             overflow="ellipsis", max_width=MAX_COLUMN_WIDTH)
    for i in range(len(df)):
        table.add_row(*(Text(cells[c][i]) for c in shown))
    console.print(table)
    if not len(df):
        console.print("No runs yet: process some with `runtable reprocess`.")
    if hidden:
        console.print(
            Text(f"{len(hidden)} more column{'s' if len(hidden) != 1 else ''} not shown: "
                 f"{', '.join(map(str, hidden))}. Choose columns with --columns, show all "
                 f"with --all-columns, or use `{runtable_command()} export`."))


def print_history(folder: str | Path, run: int, wanted: str, *, as_json: bool = False,
                  check_stale: bool = True, console: Any = None) -> int:
    """Print every kept version of one cell (``wanted``: a variable's name or title, or
    ``comment``), oldest first; with ``as_json`` one JSON object per line (times as epoch
    seconds). ``check_stale`` loads the context file (in ``context_python``, like the
    service) to tell whether the current value's code changed since. Returns the number
    of versions; KeyError for an unknown variable."""
    import json
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from .store import open_db
    from .store.history import cell_history

    titles = _titles(folder)
    with open_db(folder, readonly=True) as db:
        names = [*db.variables(), "comment"]
        name = _column_of(wanted, names, titles)
        proposal = db.proposal
        if proposal is None:
            raise KeyError("This database has no proposal set")
        entries = cell_history(db, proposal, run, name)
        zone = ZoneInfo(db.get_setting("timezone"))
        python = db.get_setting("context_python")
    if as_json:
        for entry in entries:
            print(json.dumps({k: _json_value(v) for k, v in entry.row().items()}))
        return len(entries)

    def when(t: float | None) -> str:
        return "" if t is None else datetime.fromtimestamp(t, zone).strftime(
            "%Y-%m-%d %H:%M:%S")

    console = console or Console(highlight=False)
    title = f"p{proposal} r{run}, {titles.get(name, name)}"
    title += f" ({name})" if titles.get(name, name) != name else ""
    title += f": {len(entries)} version{'s' if len(entries) != 1 else ''}, times in {zone}"
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in ("written", "value", "from", "job", "context", "runtable"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        row = entry.row()
        sha = row["context_sha256"]
        table.add_row(Text(when(entry.written_at)), Text(_history_value(entry)),
                      Text(row["origin"]), Text(row["job"]), Text(sha[:12] if sha else ""),
                      Text(row["runtable"] or ""),
                      style="bold" if entry.current else None)
    console.print(table)
    if not entries:
        console.print(f"Run {run} has no value of {name} now, and none was recorded before.")
    elif check_stale and entries[-1].current and entries[-1].code_hash is not None:
        from .jobs import inspect_context

        info = inspect_context(folder, python)
        now = info.code.get(name)
        if info.problems is not None:
            console.print("The context file does not load now, so whether this value is "
                          "stale cannot be told.")
        elif now is not None and now != entries[-1].code_hash:
            from .cli import runtable_command

            console.print(Text(
                f"Stale: the code of {name} (or of a variable it uses) changed in the "
                f"context file since this value was computed. Compute it again with "
                f"`{runtable_command()} reprocess {run} --var {name}`."))
    return len(entries)


def _history_value(entry: Any) -> str:
    if entry.kind == "cleared":
        return "(cleared)"
    if entry.kind == "error":
        cls, message = entry.error
        return f"{cls}: {message.splitlines()[0] if message else ''}"
    value = entry.value
    if isinstance(value, bytes):
        return "<image>"
    if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        return f"<array {value.dtype}: {tuple(value.shape)}>"
    return format_cell(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return "<image>"
    if isinstance(value, complex):
        return [value.real, value.imag]
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _titles(folder: str | Path) -> dict[str, str]:
    """Variable name -> title, as the GUI shows them."""
    from .store import open_db

    with open_db(folder, readonly=True) as db:
        titles = {name: info.title or name for name, info in db.variables().items()}
    return {"proposal": "Proposal", "run": "Run", "start_time": "Timestamp",
            "comment": "Comment", **titles}


def _column_of(wanted: str, columns: Any, titles: dict[str, str]) -> str:
    """The column of the table that *wanted* names: a column as it is, a variable's
    name or title (also the part after the last "/", as the GUI's grouped headers show
    it), in any case; KeyError naming the choices when none or several match."""
    present = [str(c) for c in columns]
    if wanted in present:
        return wanted
    label = {name: name for name in present}
    # The table is by name or by title: map every name and title to its column.
    for name, title in titles.items():
        for column in (name, title):
            if column in present:
                label[name] = label[title] = column
    key = wanted.strip().casefold()
    found = {column for text, column in label.items() if text.casefold() == key}
    if not found:
        found = {column for text, column in label.items()
                 if text.rsplit("/", 1)[-1].strip().casefold() == key}
    if len(found) == 1:
        return found.pop()
    if found:
        raise KeyError(f"{wanted!r} could be any of {', '.join(sorted(found))}; name one "
                       "by its full title or its name")
    raise KeyError(f"No column {wanted!r}; columns: {', '.join(present)}")


def _fit(names: Any, cells: dict[str, list[str]], width: int,
         first: str) -> tuple[list[str], list[str]]:
    """Columns that fit in ``width`` characters, in order, ``first`` always."""
    shown: list[str] = []
    hidden: list[str] = []
    used = 1  # the table's left border
    for name in [first, *[n for n in names if n != first]]:
        natural = max([len(str(name)), *(len(v) for v in cells[name])])
        need = min(natural, MAX_COLUMN_WIDTH) + 3  # padding and border
        if name == first or (not hidden and used + need <= width):
            shown.append(name)
            used += need
        else:
            hidden.append(name)
    return shown, hidden


# -- files ---------------------------------------------------------------------------------
def export_table(folder: str | Path, path: str | Path, fmt: str, *,
                 with_titles: bool = False, where: str | None = None) -> int:
    """Write the run table of ``folder`` (the runs *where* keeps) to ``path`` as
    ``fmt`` (one of :data:`EXPORT_FORMATS`); returns the number of runs written."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, not {fmt!r}")
    df = load_table(folder, with_titles=with_titles, where=where)
    path = Path(path)
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "parquet":
        df.to_parquet(path, index=False)
    elif fmt == "md":
        path.write_text(to_markdown(df), encoding="utf-8")
    else:
        _write_xlsx(df, path)
    return len(df)


def to_markdown(df: pd.DataFrame) -> str:
    """A Markdown (GitHub) table of ``df``; ``|`` in cells is escaped."""
    def cell(value: Any, style: tuple[str, int] | None = None) -> str:
        return format_cell(value, style).replace("\\", "\\\\").replace("|", "\\|")

    styles = [number_style(df[c]) for c in df.columns]
    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |",
             "| " + " | ".join("---" for _ in df.columns) + " |"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v, st) for v, st in zip(row, styles, strict=True))
                     + " |")
    return "\n".join(lines) + "\n"


def _write_xlsx(df: pd.DataFrame, path: Path) -> None:
    try:
        from openpyxl import Workbook
        from openpyxl.worksheet.worksheet import Worksheet
    except ImportError:
        raise ImportError("Exporting to .xlsx needs openpyxl: pip install openpyxl") from None
    import pandas as pd

    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)  # a new workbook's one sheet
    sheet.title = "runs"
    sheet.append([str(c) for c in df.columns])
    for row in df.itertuples(index=False):
        values: list[Any] = []
        for v in row:
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                values.append(None)
            elif isinstance(v, pd.Timestamp):
                # Excel has no time zones: local wall-clock time of the facility.
                values.append(v.tz_localize(None).to_pydatetime() if v.tz else
                              v.to_pydatetime())
            elif hasattr(v, "item"):
                values.append(v.item())
            else:
                values.append(v)
        sheet.append(values)
    for cells in sheet.iter_rows(min_row=2):
        for c in cells:
            # Text from the data must never become a formula.
            if isinstance(c.value, str) and c.data_type == "f":
                c.data_type = "s"
    sheet.freeze_panes = "A2"
    book.save(path)
