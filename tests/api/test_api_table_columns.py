"""table() on the columnar reader: the same DataFrame as the row-by-row reader it
replaced (api_legacy_table), cold, cached and after incremental updates."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runtable.api import Database
from runtable.context.cell import Cell
from runtable.store import create_folder, open_db

from .api_folder import PROPOSAL, START, write_and_merge
from .api_legacy_table import legacy_table

TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201e2261f5d0000000049454e44ae426082")


def assert_like_legacy(folder: Path, **kwargs: object) -> pd.DataFrame:
    """Equal to the legacy reader's table but for the column order (the legacy reader
    sorts variable names; we keep the context file's order)."""
    df = Database(folder, **kwargs).table()
    legacy = legacy_table(folder)
    assert sorted(df.columns) == sorted(legacy.columns)
    pd.testing.assert_frame_equal(df, legacy[list(df.columns)])
    return df


def test_same_as_legacy_reader(shared_folder: Path) -> None:
    assert_like_legacy(shared_folder, cache=False)


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    """Columns of every shape that decides a dtype: pure floats, ints, strings;
    with errors (None), holes (pd.NA), blobs, complex numbers, mixed types."""
    rng = np.random.default_rng(3)
    path = tmp_path / "synthetic"
    error = json.dumps({"error": "boom", "error_cls": "ValueError"})
    cplx = struct.pack("<dd", 1.5, -2.0)
    npy = b"\x93NUMPY"
    rows = []
    for run in range(1, 41):
        cells = {
            "f_pure": float(rng.normal()),
            "i_pure": int(rng.integers(100)),
            "s_pure": f"s{run % 3}",
            "f_err": None if run % 7 == 0 else float(run) / 3,
            "i_err": None if run % 9 == 0 else run,
            "mixed_num": run if run % 2 else run / 2,
            "mixed_any": run if run % 3 else f"t{run}",
            "png": TINY_PNG,
            "complex_all": cplx,
            "big": 2**60 + run,
        }
        if run > 30:
            cells["late"] = run * 1.5
        if run % 5:
            cells["holes"] = run
        for name, value in cells.items():
            attrs = error if value is None else None
            summary_type = "complex" if name == "complex_all" else None
            rows.append((PROPOSAL, run, name, value, attrs, summary_type))
        rows.append((PROPOSAL, run, "arr", npy, None, "numpy"))
        rows.append((PROPOSAL, run, "trend", npy, None, "trendline"))
    with create_folder(path, PROPOSAL) as db, db.transaction() as conn:
        conn.executemany("INSERT INTO run_info(proposal, run, start_time, added_at) "
                         "VALUES (?, ?, ?, ?)",
                         [(PROPOSAL, r, START + r, START) for r in range(1, 41)])
        conn.execute("INSERT INTO run_info(proposal, run, start_time) VALUES (?, 41, NULL)",
                     (PROPOSAL,))
        conn.executemany("INSERT INTO run_variables(proposal, run, name, version, value, "
                         "timestamp, attributes, summary_type) VALUES (?, ?, ?, 1, ?, 0, ?, ?)",
                         rows)
        conn.execute("INSERT INTO variables(name, type, title) VALUES ('declared', NULL, 'D')")
    return path


def test_every_dtype_like_legacy(synthetic: Path) -> None:
    df = assert_like_legacy(synthetic, cache=False)
    assert df["f_pure"].dtype == np.float64 and df["i_pure"].dtype == np.int64
    assert df["f_err"].dtype == np.float64 and df["i_err"].dtype == np.float64
    assert df["late"].dtype == object and df["big"].tolist()[0] == 2**60 + 1


def test_incremental_cache_follows_changes(folder: Path, monkeypatch: pytest.MonkeyPatch,
                                           private_cache: Path) -> None:
    """After each change table() reads only what changed (the copy the writer keeps,
    never the whole table) and returns what a fresh read returns."""
    from .test_api_table import no_full_read

    assert_like_legacy(folder)
    no_full_read(monkeypatch)
    held = Database(folder)
    with open_db(folder) as store:
        changes = [
            lambda: write_and_merge(store, 2, {"count": Cell(5), "label": Cell("again")}),
            lambda: store.set_comment(PROPOSAL, 2, "edited"),
            lambda: store.set_user_value(PROPOSAL, 3, "quality", 0.25),
            lambda: store.set_user_value(PROPOSAL, 1, "quality", None),
            lambda: write_and_merge(store, 5, {"start_time": Cell(START + 500),
                                               "fresh": Cell(1.5)}),
            lambda: store.delete_variable("fresh"),
            lambda: store.add_user_variable("grade", "string"),
        ]
        for change in changes:
            change()
            fresh = assert_like_legacy(folder)
            pd.testing.assert_frame_equal(held.table(), fresh)
    held.close()


def test_incremental_cache_with_titles(folder: Path) -> None:
    Database(folder).table(with_titles=True)
    with open_db(folder) as store:
        store.change_user_variable("quality", title="Beam quality")
    assert "Beam quality" in Database(folder).table(with_titles=True).columns


def test_cache_of_another_database_is_not_used(folder: Path, tmp_path: Path) -> None:
    """A cached table belongs to one database (its db_id), even at the same path."""
    assert_like_legacy(folder)
    with open_db(folder) as store:
        store.new_db_id()
        store.set_comment(PROPOSAL, 1, "after the id changed")
    assert assert_like_legacy(folder)["comment"][0] == "after the id changed"


def test_a_held_frame_patched_row_by_row_equals_a_fresh_read(
        synthetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After each write to a few runs, table() of a held Database equals a fresh
    read, whether it patched the frame's rows or made it anew (values of another type,
    errors, holes filled, text where numbers were, runs of no start time)."""
    from runtable.api import frame

    patched = []
    patch = frame.HeldFrame.patch

    def recorded(self: frame.HeldFrame, *args: object) -> bool:
        patched.append(patch(self, *args))
        return patched[-1]

    monkeypatch.setattr(frame.HeldFrame, "patch", recorded)
    rng = np.random.default_rng(11)
    names = ["f_pure", "i_pure", "s_pure", "f_err", "i_err", "mixed_num", "mixed_any",
             "late", "holes", "big"]
    values = [1.25, 7, "text", None, True, 2**62, -0.5, 3]
    with Database(synthetic) as held:
        held.table()
        for _ in range(40):
            with open_db(synthetic) as store, store.transaction() as conn:
                for _ in range(int(rng.integers(1, 3))):
                    run, name = int(rng.integers(1, 42)), str(rng.choice(names))
                    value = values[int(rng.integers(len(values)))]
                    attrs = json.dumps({"error": "boom", "error_cls": "ValueError"}) \
                        if value is None else None
                    conn.execute(
                        "INSERT INTO run_variables(proposal, run, name, version, value, "
                        "timestamp, attributes) VALUES (?, ?, ?, 1, ?, 0, ?) "
                        "ON CONFLICT DO UPDATE SET value = excluded.value, "
                        "attributes = excluded.attributes",
                        (PROPOSAL, run, name, value, attrs))
            pd.testing.assert_frame_equal(held.table(), Database(synthetic, cache=False).table())
    assert patched.count(True) >= 10  # most writes patched rows, not made it anew


def test_a_held_frame_after_one_changed_run_is_not_made_anew(
        synthetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One merged run changes one row: the held DataFrame gets that row, without
    building whole columns again (0.35 s at 20,000 x 500; only a column of objects,
    whose dtype depends on every cell, is made whole)."""
    from runtable.api import frame

    with Database(synthetic) as held:
        first = held.table()
        made = []
        frame_column = frame._frame_column

        def counted(kind: np.ndarray, *args: object) -> pd.Series:
            made.append(len(kind))
            return frame_column(kind, *args)

        monkeypatch.setattr(frame, "_frame_column", counted)
        with open_db(synthetic) as store:
            write_and_merge(store, 5, {"f_pure": Cell(7.5), "i_pure": Cell(3),
                                       "s_pure": Cell("changed")})
        df = held.table()
        assert made == [1, 1, 1]  # only the changed cells were made
        assert df.loc[4, ["f_pure", "i_pure", "s_pure"]].tolist() == [7.5, 3, "changed"]
        assert first.loc[4, "f_pure"] != 7.5  # what it returned before stays
        monkeypatch.undo()
        pd.testing.assert_frame_equal(df, Database(synthetic, cache=False).table())
