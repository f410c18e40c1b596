"""Database(): opening, indexing, runs() and table()."""

from __future__ import annotations

import math
import os
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runtable
from runtable.api import Damnit, Database, RunVariables, VariableData, cache_dir
from runtable.store import open_db

from .api_folder import PROPOSAL, START, TITLES


# -- opening -------------------------------------------------------------------
def test_lazy_exports() -> None:
    assert runtable.Database is Database
    assert runtable.Damnit is Database is Damnit


def test_open_by_path_str_and_path(shared_folder: Path) -> None:
    for location in (shared_folder, str(shared_folder)):
        with Database(location) as db:
            assert db.proposal == PROPOSAL
            assert db.path == Path(location)
            assert repr(db) == f"<Database {shared_folder} for p{PROPOSAL}>"


def test_open_by_proposal_number(shared_folder: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    amore = root / "SPB" / "202401" / f"p{PROPOSAL:06d}" / "usr" / "Shared" / "amore"
    amore.parent.mkdir(parents=True)
    amore.symlink_to(shared_folder)
    monkeypatch.setenv("EXTRA_DATA_DATA_ROOT", str(root))
    with Database(PROPOSAL) as db:
        assert db.path == amore
        assert db.runs() == [1, 2, 3]
    with Database(np.int64(PROPOSAL)) as db:
        assert db.proposal == PROPOSAL
    with pytest.raises(FileNotFoundError, match="Proposal 999 not found"):
        Database(999)


@pytest.mark.parametrize("location", [1.5, None, b"/tmp", ["/tmp"], True])
def test_open_wrong_type(location: object) -> None:
    with pytest.raises(TypeError, match="proposal number or a folder path"):
        Database(location)  # type: ignore[arg-type]


def test_open_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Database(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"has no runs\.sqlite"):
        Database(tmp_path)


def test_runs_and_repr(db: Database) -> None:
    # Run 4 was never taken by the DAQ (no start time): left out, like the reference.
    assert db.runs() == [1, 2, 3]


# -- indexing ------------------------------------------------------------------
def test_indexing(db: Database) -> None:
    rv = db[1]
    assert isinstance(rv, RunVariables)
    assert (rv.proposal, rv.run) == (PROPOSAL, 1)
    assert rv.file == db.path / "extracted_data" / f"p{PROPOSAL}_r1.h5"
    assert isinstance(db[PROPOSAL, 2], RunVariables)
    assert db[PROPOSAL, 2].run == 2
    var = db[1, "xgm_flux"]
    assert isinstance(var, VariableData)
    assert (var.name, var.title, var.run, var.proposal) == ("xgm_flux", "XGM flux", 1, PROPOSAL)
    assert db[1, "XGM flux"].name == "xgm_flux"
    assert db[PROPOSAL, 1, "label"].read() == "hello"
    assert db[np.int64(1)].run == 1


@pytest.mark.parametrize("key", [4, 99, (PROPOSAL, 99), (4321, 1), (99, "label")])
def test_unknown_run(db: Database, key: object) -> None:
    with pytest.raises(KeyError, match="Unknown run"):
        db[key]


@pytest.mark.parametrize("key", ["label", 1.0, (1,), (1, 2, "x", 4), (1.5, "label"),
                                 ("1", 2), True, None])
def test_bad_keys(db: Database, key: object) -> None:
    with pytest.raises(TypeError):
        db[key]


def test_unknown_variable(db: Database) -> None:
    with pytest.raises(KeyError, match="No data for variable 'nope'"):
        db[1, "nope"]
    with pytest.raises(KeyError):
        db[2, "camera"]  # declared, but never computed for run 2


# -- table ---------------------------------------------------------------------
def test_table_layout(db: Database) -> None:
    df = db.table()
    assert list(df.columns[:4]) == ["proposal", "run", "start_time", "comment"]
    # The variables table's order (the context file's), then the user-editable column.
    assert list(df.columns[4:]) == [*TITLES, "quality"]
    assert df["run"].tolist() == [1, 2, 3]
    assert df["proposal"].tolist() == [PROPOSAL] * 3
    assert "added_at" not in df.columns


def test_table_start_time(db: Database) -> None:
    start = db.table()["start_time"]
    assert str(start.dt.tz) == "Europe/Berlin"
    assert start[0] == pd.Timestamp(START + 100, unit="s", tz="UTC")
    assert start[0].isoformat() == "2023-11-14T23:15:00+01:00"


def test_table_values(db: Database) -> None:
    df = db.table().set_index("run")
    row = df.loc[1]
    assert row["comment"] == "good run"
    assert row["xgm_flux"] == pytest.approx(6.75)
    assert row["count"] == 42
    assert row["label"] == "hello"
    assert row["quality"] == 0.5
    assert row["summary_only"] == 7
    assert row["z"] == 1 + 2j
    # Blobs become placeholders.
    assert row["camera"] == "<thumbnail>"
    assert row["da"] == "<thumbnail>"
    assert row["trend"] == "<sparkline>"
    assert row["cube"] == "float64: (2, 2, 2)"
    assert row["ds"] == "Dataset (0.00MB)"
    # A failed variable has a row with a NULL value: None.
    assert row["broken"] is None
    # Known but never computed: a column of None.
    assert df["never"].tolist() == [None, None, None]
    # No row at all for a (run, variable): pd.NA (NaN once pandas makes the column str).
    assert df.loc[2, "count"] is pd.NA
    assert df.loc[2, "z"] is pd.NA
    assert df.loc[2, "label"] == "second"
    assert df.loc[3, "xgm_flux"] is pd.NA
    assert math.isnan(df.loc[2, "camera"])
    assert math.isnan(df.loc[2, "comment"])


def test_table_dtypes(db: Database) -> None:
    dtypes = db.table().dtypes
    assert dtypes["run"] == np.int64
    # pd.NA in run 3 keeps it object, as in the reference.
    assert pd.api.types.is_object_dtype(dtypes["xgm_flux"])
    assert pd.api.types.is_object_dtype(dtypes["never"])
    assert pd.api.types.is_string_dtype(dtypes["label"])


def test_table_with_titles(db: Database) -> None:
    df = db.table(with_titles=True)
    assert list(df.columns[:4]) == ["Proposal", "Run", "Timestamp", "comment"]
    assert "XGM flux" in df.columns and "Quality" in df.columns and "Never set" in df.columns
    assert "xgm_flux" not in df.columns
    assert df["XGM flux"][0] == pytest.approx(6.75)


def test_table_numeric_columns(folder: Path) -> None:
    """Columns without gaps become numeric; errors become NaN there."""
    with open_db(folder) as store:
        for run in (2, 3):
            store.set_user_value(PROPOSAL, run, "quality", run / 10)
        with store.transaction() as conn:
            conn.execute("UPDATE run_variables SET value = NULL WHERE name = 'quality' "
                         "AND run = 3")
    df = Database(folder).table()
    assert df["quality"].dtype == np.float64
    assert df["quality"].tolist()[:2] == [0.5, 0.2]
    assert math.isnan(df["quality"][2])


def test_table_empty_database(tmp_path: Path) -> None:
    from runtable.store import create_folder

    create_folder(tmp_path / "empty", PROPOSAL).close()
    df = Database(tmp_path / "empty").table()
    assert list(df.columns) == ["proposal", "run", "start_time", "comment"]
    assert len(df) == 0


def test_table_latest_version(folder: Path) -> None:
    """Rows with version > 1 (allowed by the schema): the latest one wins."""
    with open_db(folder) as store, store.transaction() as conn:
        conn.execute("INSERT INTO run_variables(proposal, run, name, version, value) "
                     "VALUES (?, 1, 'label', 2, 'newer')", (PROPOSAL,))
    df = Database(folder).table()
    assert df["label"].tolist()[:2] == ["newer", "second"]
    assert Database(folder)[1, "label"].summary() == "newer"


# -- the copy and the cache ------------------------------------------------------
def no_full_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make reading every cell of run_variables fail."""
    from runtable.store.tableread import Reader

    def refuse(*args: object) -> None:
        raise AssertionError("read all of run_variables instead of the copy")

    monkeypatch.setattr(Reader, "read_all", refuse)


def test_a_folder_written_by_runtable_is_read_from_its_copy(
        folder: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = Database(folder, cache=False).table()
    with monkeypatch.context() as m:
        no_full_read(m)
        pd.testing.assert_frame_equal(Database(folder).table(), expected)
        with open_db(folder) as store:
            store.set_comment(PROPOSAL, 2, "changed")
        assert Database(folder).table()["comment"][1] == "changed"
    assert not (private_cache / "tables").exists()  # no copy of the reader's own needed


def test_a_folder_without_copy_gets_one_in_the_users_cache(
        folder: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from runtable.store.tablecopy import COPY_DIR

    shutil.rmtree(folder / COPY_DIR)  # as in a folder the reference made
    first = Database(folder).table()
    assert not (folder / COPY_DIR).exists()  # a reader never writes the folder
    copies = list((private_cache / "tables").iterdir())
    assert len(copies) == 1 and (copies[0] / "manifest.json").is_file()
    assert stat.S_IMODE(private_cache.stat().st_mode) == 0o700
    with monkeypatch.context() as m:
        no_full_read(m)
        pd.testing.assert_frame_equal(Database(folder).table(), first)
        with open_db(folder) as store:  # (the writer makes the folder's copy again)
            store.set_comment(PROPOSAL, 2, "changed")
        shutil.rmtree(folder / COPY_DIR)
        assert Database(folder).table()["comment"][1] == "changed"


def test_cache_off(folder: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from runtable.store.tablecopy import COPY_DIR

    shutil.rmtree(folder / COPY_DIR)
    Database(folder, cache=False).table()
    assert not private_cache.exists()
    monkeypatch.setenv("RUNTABLE_CACHE_DIR", "off")
    assert cache_dir() is None
    Database(folder).table()
    assert not private_cache.exists()


def test_cache_default_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNTABLE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "runtable"


def test_a_copy_in_a_cache_others_can_write_is_not_used(
        folder: Path, private_cache: Path) -> None:
    import shutil

    from runtable.store.tablecopy import COPY_DIR

    shutil.rmtree(folder / COPY_DIR)
    expected = Database(folder).table()
    # Someone else could have put any table there.
    with open_db(folder) as store, store.transaction() as conn:
        conn.execute("UPDATE run_variables SET value = 'planted' WHERE name = 'label'")
    shutil.rmtree(folder / COPY_DIR)
    os.chmod(private_cache, 0o777)
    assert Database(folder).table()["label"].tolist()[:2] == ["planted", "planted"]
    assert expected["label"].tolist()[:2] == ["hello", "second"]


def test_a_damaged_cache_is_ignored(folder: Path, private_cache: Path) -> None:
    import shutil

    from runtable.store.tablecopy import COPY_DIR

    shutil.rmtree(folder / COPY_DIR)
    expected = Database(folder).table()
    for path in private_cache.rglob("*"):
        if path.is_file():
            path.write_bytes(b"not a copy")
    pd.testing.assert_frame_equal(Database(folder).table(), expected)


def test_a_database_held_open_returns_fresh_frames(folder: Path) -> None:
    """table() called again reads only what changed; what it returned before is the
    caller's to change."""
    with Database(folder) as db:
        first = db.table()
        first.loc[0, "label"] = "changed by the caller"
        assert db.table()["label"][0] == "hello"
        with open_db(folder) as store:
            store.set_comment(PROPOSAL, 2, "changed")
        assert db.table()["comment"][1] == "changed"


def test_user_columns_have_the_dtype_of_their_type(folder: Path) -> None:
    """A boolean column reads as booleans (SQLite stores 0/1), an integer column with
    gaps as integers: both nullable."""
    with open_db(folder) as store:
        store.add_user_variable("ok", "boolean")
        store.add_user_variable("shots", "integer")
        store.set_user_value(PROPOSAL, 1, "ok", True)
        store.set_user_value(PROPOSAL, 2, "ok", False)
        store.set_user_value(PROPOSAL, 1, "shots", 12)
    df = Database(folder).table()
    assert str(df["ok"].dtype) == "boolean" and str(df["shots"].dtype) == "Int64"
    assert df["ok"].tolist()[:2] == [True, False] and df["ok"].isna().tolist()[2]
    assert df["shots"][0] == 12 and df["shots"].isna().tolist()[1:] == [True, True]


# -- concurrency and read-only access ---------------------------------------------
def test_read_while_another_process_writes(folder: Path) -> None:
    """WAL: a reader sees the last committed state while a write is in progress."""
    db = Database(folder)
    writer = sqlite3.connect(folder / "runs.sqlite", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE run_variables SET value = 'uncommitted' WHERE name = 'label'")
        assert db.table()["label"].tolist()[:2] == ["hello", "second"]
        assert db[1, "label"].summary() == "hello"
        writer.execute("COMMIT")
        assert db.table()["label"].tolist()[:2] == ["uncommitted", "uncommitted"]
        assert db[1, "label"].summary() == "uncommitted"
    finally:
        writer.close()
        db.close()


def test_reading_writes_nothing(folder: Path) -> None:
    with open_db(folder) as store:  # leave no WAL behind
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    with Database(folder) as db:
        db.table(with_titles=True)
        names = db[1].keys()
        for name in names:
            db[1, name].read()
    after = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
             if not p.name.endswith(("-shm", "-wal"))}
    assert after == {p: t for p, t in before.items() if not p.name.endswith(("-shm", "-wal"))}


def test_table_several_proposals(folder: Path) -> None:
    """Rows are matched on (proposal, run); runs without a start time are left out."""
    with open_db(folder) as store, store.transaction() as conn:
        conn.execute("INSERT INTO run_info(proposal, run, start_time) VALUES (999, 1, ?)",
                     (START,))
        conn.executemany(
            "INSERT INTO run_variables(proposal, run, name, version, value, timestamp) "
            "VALUES (?, ?, ?, 1, ?, 0)",
            [(999, 1, "label", "other proposal"), (999, 2, "label", "no such run"),
             (PROPOSAL, 4, "label", "never taken")])
    with Database(folder) as db:
        df = db.table()
        assert list(zip(df["proposal"], df["run"])) == [(999, 1), (PROPOSAL, 1),
                                                       (PROPOSAL, 2), (PROPOSAL, 3)]
        assert df["label"].tolist()[:3] == ["other proposal", "hello", "second"]
        assert db.runs() == [1, 1, 2, 3]
        assert db[999, 1].keys() == []  # keys come from the run's HDF5 file: none here
