"""The read API's table() as it was before the columnar reader
(runtable.store.table): a row-by-row pivot through the sqlite3 module. Kept
only as the oracle the columnar reader's output is compared with."""

from __future__ import annotations

import sqlite3
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runtable.store import decode_summary

_FIXED = ("proposal", "run", "start_time", "added_at")
_FIRST, _SECOND, _THIRD = itemgetter(0), itemgetter(1), itemgetter(2)
_TABLE_VALUE = """CASE
    WHEN typeof(value) != 'blob' THEN value
    WHEN summary_type = 'complex' THEN value
    WHEN summary_type = 'trendline' THEN '<sparkline>'
    WHEN summary_type = 'numpy' THEN '<ndarray>'
    WHEN summary_type IS NULL OR summary_type = '' THEN '<thumbnail>'
    ELSE '<blob>' END"""


class _Codes(dict):
    def __missing__(self, name: str) -> int:
        code = self[name] = len(self)
        return code


def legacy_table(folder: Path) -> pd.DataFrame:
    """``Database(folder).table()`` as the row-by-row reader made it."""
    conn = sqlite3.connect(f"file:{folder / 'runs.sqlite'}?mode=ro", uri=True,
                           isolation_level=None)
    try:
        conn.execute("BEGIN")
        runs = conn.execute(
            "SELECT proposal, run, start_time FROM run_info "
            "WHERE start_time IS NOT NULL ORDER BY proposal, run").fetchall()
        known = [n for (n,) in conn.execute("SELECT name FROM variables")]
        names, cells = _pivot(conn, runs)
        conn.execute("COMMIT")
    finally:
        conn.close()
    n_runs = len(runs)
    props, run_nos, starts = (zip(*runs) if runs else ((), (), ()))
    start = pd.to_datetime(pd.Series(np.array(starts, dtype=float), dtype=float),
                           unit="s", utc=True).dt.tz_convert("Europe/Berlin")
    columns: dict[str, Any] = {
        "proposal": pd.Series(props, dtype=object).infer_objects(),
        "run": pd.Series(run_nos, dtype=object).infer_objects(),
        "start_time": start,
    }
    order = sorted(range(len(names)), key=names.__getitem__)
    for j in order:
        name = names[j]
        if name in _FIXED:
            continue
        series = pd.Series(cells[j], dtype=object, copy=False).infer_objects()
        if series.dtype == object:
            series = series.map(
                lambda v: decode_summary(v, "complex") if isinstance(v, bytes) else v)
        columns[name] = series
    for name in sorted(set(known) - set(columns) - set(_FIXED)):
        columns[name] = pd.Series([None] * n_runs, dtype=object)
    if "comment" not in columns:
        columns["comment"] = pd.Series([None] * n_runs, dtype=object)
    ordered = ["proposal", "run", "start_time", "comment"]
    ordered += [c for c in columns if c not in ordered]
    return pd.DataFrame({c: columns[c] for c in ordered})


def _pivot(conn: Any, runs: list[tuple]) -> tuple[list[str], np.ndarray]:
    codes = _Codes()
    capacity = conn.execute("SELECT count(*) FROM variables").fetchone()[0] + 16
    cells = np.full((capacity, len(runs)), pd.NA, dtype=object)
    seen = np.zeros(cells.shape, dtype=bool)
    placed = 0
    blocks: dict[Any, list[int]] = {}
    for i, (proposal, _, _) in enumerate(runs):
        blocks.setdefault(proposal, []).append(i)
    for proposal, rows_of in blocks.items():
        offset = rows_of[0]
        run_nos = np.array([runs[i][1] for i in rows_of], dtype=np.int64)
        cur = conn.execute(
            f"SELECT ifnull(run, -1), name, {_TABLE_VALUE} FROM run_variables "
            "WHERE +proposal = ?", (proposal,))
        while chunk := cur.fetchmany(500_000):
            size = len(chunk)
            rr = np.fromiter(map(_FIRST, chunk), dtype=np.int64, count=size)
            cc = np.fromiter(map(codes.__getitem__, map(_SECOND, chunk)),
                             dtype=np.intp, count=size)
            vv = np.empty(size, dtype=object)
            vv[:] = list(map(_THIRD, chunk))
            if len(codes) > cells.shape[0]:
                grow = max(len(codes), 2 * cells.shape[0]) - cells.shape[0]
                cells = np.vstack([cells, np.full((grow, len(runs)), pd.NA, dtype=object)])
                seen = np.vstack([seen, np.zeros((grow, len(runs)), dtype=bool)])
            pos = np.searchsorted(run_nos, rr)
            pos[pos >= len(run_nos)] = 0
            ok = run_nos[pos] == rr
            rows, cols = pos[ok] + offset, cc[ok]
            seen[cols, rows] = True
            cells[cols, rows] = vv[ok]
            placed += int(ok.sum())
    if placed != int(seen.sum()):
        index = {(p, r): i for i, (p, r, _) in enumerate(runs)}
        for proposal, run, name, value in conn.execute(
                f"SELECT v.proposal, v.run, v.name, {_TABLE_VALUE} "
                "FROM run_variables AS v JOIN (SELECT proposal, run, name, "
                "max(version) AS version FROM run_variables GROUP BY proposal, run, name "
                "HAVING count(*) > 1) AS latest ON latest.proposal = v.proposal "
                "AND latest.run = v.run AND latest.name = v.name "
                "AND latest.version = v.version"):
            if (proposal, run) in index:
                cells[codes[name], index[proposal, run]] = value
    names = sorted(codes, key=codes.__getitem__)
    return names, cells[:len(codes)]
