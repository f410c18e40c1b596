"""The table's columnar copy (runtable.store.tablecopy): reading through it gives
exactly what reading SQLite gives, after any write, whatever state the copy is in
(missing, damaged, behind, of another database)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from runtable.context.cell import Cell
from runtable.store import DatabaseFolder, create_folder, open_db, tablecopy
from runtable.store.table import read_table

from .test_store_table import PROPOSAL, START, assert_same, merge, random_cell, run_cells


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 4 runs, updated after every change: every path of the copy is taken
    on a table of a few runs."""
    monkeypatch.setattr(tablecopy, "BLOCK_RUNS", 4)
    monkeypatch.setattr(tablecopy, "PENDING_RUNS", 1)


@pytest.fixture
def db(tmp_path: Path, small_blocks: None) -> DatabaseFolder:
    with create_folder(tmp_path / "amore", PROPOSAL) as db:
        db.update_computed_variables({
            "flux": {"title": "XGM/Flux", "description": None, "tags": ("xgm",),
                     "attributes": {"units": "mJ"}}})
        for run in range(1, 11):
            merge(db, run, run_cells(run), {"broken": ZeroDivisionError("division by zero")})
        db.set_comment(PROPOSAL, 2, "beam lost")
        db.add_user_variable("quality", "number", title="Quality")
        db.set_user_value(PROPOSAL, 1, "quality", 0.5)
        # (The writer's background updates done: tests change the copy's files.)
        assert tablecopy.settle(tablecopy.copy_dir(db.path), 60)
        yield db


def same_as_sqlite(db: DatabaseFolder | Path, **kwargs: object) -> None:
    """read_table through the copy equals read_table of SQLite alone."""
    assert_same(read_table(db, **kwargs), read_table(db, copy=False, **kwargs))


def manifest(db: DatabaseFolder) -> tablecopy.Manifest:
    """The copy's manifest once the writer's background updates are done."""
    assert tablecopy.settle(tablecopy.copy_dir(db.path), 60)
    found = tablecopy.read_manifest(tablecopy.copy_dir(db.path))
    assert found is not None
    return found


def test_the_writer_keeps_a_copy_that_reads_the_same_as_sqlite(db: DatabaseFolder) -> None:
    m = manifest(db)
    assert sorted(m.blocks) == [(PROPOSAL, 0), (PROPOSAL, 1), (PROPOSAL, 2)]
    seq = read_table(db, copy=False).seq
    assert all(b.seq == seq for b in m.blocks.values())
    for details in (True, False):
        same_as_sqlite(db, details=details)
    same_as_sqlite(db, names=["flux", "label", "never", "comment"])


def test_a_copy_behind_the_database_is_caught_up_from_the_change_log(
        db: DatabaseFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tablecopy, "PENDING_RUNS", 100)  # the writer leaves it behind
    before = manifest(db)
    merge(db, 3, {"flux": Cell(np.arange(3.0), summary="mean"), "new": Cell("x")})
    db.set_comment(PROPOSAL, 7, "late comment")
    db.ensure_run(PROPOSAL, 13)  # a block the copy doesn't have yet
    db.ensure_run(PROPOSAL, 11)
    assert manifest(db).to_json() == before.to_json()
    same_as_sqlite(db)
    table = read_table(db)
    assert table.columns["new"].values[2] == "x"
    assert table.comment[6] == "late comment" and {11, 13} <= set(table.run.tolist())


def test_every_kind_of_write_keeps_the_copy_exact(db: DatabaseFolder) -> None:
    """Merges, comments, user values, variables renamed and deleted, runs added and
    removed, values of another type: after each, the copy reads as SQLite does."""
    steps = [
        lambda: merge(db, 2, {"flux": Cell(np.arange(3.0), summary="mean"),
                              "new_var": Cell("x"), "broken": Cell(1.0)}),
        lambda: db.set_comment(PROPOSAL, 3, "bad run"),
        lambda: db.set_comment(PROPOSAL, 2, None),
        lambda: db.set_user_value(PROPOSAL, 3, "quality", "0.75"),
        lambda: db.set_user_value(PROPOSAL, 1, "quality", None),
        lambda: merge(db, 1, {"count": Cell("many")}),
        lambda: merge(db, 5, {"count": Cell(2.5)}),
        lambda: db.change_user_variable("quality", new_name="grade"),
        lambda: db.delete_variable("trend"),
        lambda: db.ensure_run(PROPOSAL, 40),
        lambda: merge(db, 41, {"start_time": Cell(START + 41), "count": Cell(2**62)}),
    ]
    for step in steps:
        step()
        same_as_sqlite(db)
    with db.transaction() as conn:
        conn.execute("DELETE FROM run_variables WHERE run IN (5, 6, 8, 9, 10, 11)")
        conn.execute("DELETE FROM run_info WHERE run IN (5, 6, 8, 9, 10, 11)")
    same_as_sqlite(db)
    blocks = manifest(db).blocks
    assert blocks[PROPOSAL, 1].rows == 2  # runs 4 and 7 are left
    assert (PROPOSAL, 2) not in blocks  # the block of runs 8-11 is empty now


def test_a_commit_does_not_wait_for_the_copy_to_be_rewritten(
        db: DatabaseFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rewriting a block takes a tenth of a second at 500 variables: the writer's
    next merge must not wait for it. Readers meanwhile read the runs the copy lacks
    from SQLite, and the copy catches up once the rewrite is done."""
    import threading

    release = threading.Event()
    writing = threading.Event()
    write_block = tablecopy.write_block
    committer = threading.get_ident()
    on_committer = []

    def slow_write_block(*args: object) -> str:
        if threading.get_ident() == committer:
            on_committer.append(args[1])  # the commit would wait for this rewrite
        else:
            writing.set()
            assert release.wait(60)
        return write_block(*args)

    monkeypatch.setattr(tablecopy, "write_block", slow_write_block)
    try:
        merge(db, 3, {"count": Cell(33)})
        assert not on_committer
        assert writing.wait(30)  # the rewrite started elsewhere, and is held
        merge(db, 4, {"count": Cell(44)})  # returns while the rewrite is held
        assert not on_committer
        table = read_table(db)
        assert table.columns["count"].values[2:4].tolist() == [33, 44]
        same_as_sqlite(db)
    finally:
        release.set()
    m = manifest(db)
    assert m.since() == read_table(db, copy=False).seq
    same_as_sqlite(db)


def test_random_writes_read_the_same_through_the_copy(db: DatabaseFolder) -> None:
    rng = np.random.default_rng(5)
    names = ["a", "b", "c"]
    kept = read_table(db)
    for _ in range(60):
        action = rng.integers(10)
        with db.transaction() as conn:
            run, name = int(rng.integers(1, 20)), str(rng.choice(names))
            if action < 7:
                value, summary_type, attrs = random_cell(rng)
                conn.execute("INSERT INTO run_info(proposal, run, start_time) VALUES (?, ?, ?) "
                             "ON CONFLICT DO NOTHING", (PROPOSAL, run, START + run))
                conn.execute(
                    "INSERT INTO run_variables(proposal, run, name, version, value, "
                    "summary_type, attributes, max_diff, provenance) "
                    "VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                    "value = excluded.value, summary_type = excluded.summary_type, "
                    "attributes = excluded.attributes, max_diff = excluded.max_diff, "
                    "provenance = excluded.provenance",
                    (PROPOSAL, run, name, value, summary_type, attrs,
                     float(rng.random()) if rng.random() < 0.2 else None,
                     str(rng.choice(["context.py", "", "elsewhere"]))))
            elif action < 9:
                conn.execute("DELETE FROM run_variables WHERE run = ? AND name = ?",
                             (run, name))
            else:
                conn.execute("DELETE FROM run_info WHERE run = ?", (run,))
        same_as_sqlite(db)
        kept.refresh(db)
        assert_same(kept, read_table(db, copy=False))


def test_deleting_the_copy_loses_nothing_and_it_comes_back(db: DatabaseFolder) -> None:
    expected = read_table(db, copy=False)
    shutil.rmtree(tablecopy.copy_dir(db.path))
    assert_same(read_table(db), expected)
    db.set_comment(PROPOSAL, 4, "after the deletion")  # the writer's next commit
    assert manifest(db).blocks
    same_as_sqlite(db)


def test_a_damaged_or_missing_block_is_read_from_sqlite(db: DatabaseFolder) -> None:
    m = manifest(db)
    directory = tablecopy.copy_dir(db.path)
    first, second = (directory / m.blocks[PROPOSAL, i].file for i in (0, 1))
    first.write_bytes(first.read_bytes()[:100])  # e.g. a crash before the data was on disk
    second.unlink()
    same_as_sqlite(db)
    # The writer replaces what it can't read.
    merge(db, 1, {"count": Cell(5)})
    merge(db, 5, {"count": Cell(6)})
    assert tablecopy.read_block(directory / manifest(db).blocks[PROPOSAL, 0].file) is not None
    same_as_sqlite(db)


def test_a_copy_is_not_used_for_another_database(db: DatabaseFolder, tmp_path: Path) -> None:
    """A copy left beside a database that was replaced (another db_id), or restored
    from an older state (the copy's change log position is in its future)."""
    directory = tablecopy.copy_dir(db.path)
    saved = tmp_path / "saved.sqlite"
    backup = sqlite3.connect(saved)
    db.conn.backup(backup)
    backup.close()
    merge(db, 2, {"count": Cell(99)})
    assert manifest(db).since() > 0
    db.close()
    # An older state of the same database, the newer copy beside it.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db.db_path}{suffix}").unlink(missing_ok=True)
    shutil.copy(saved, db.db_path)
    same_as_sqlite(db.path)
    assert read_table(db.path).columns["count"].values[1] == 20
    # Another database altogether.
    with create_folder(tmp_path / "other", PROPOSAL) as other:
        merge(other, 1, {"start_time": Cell(START), "only_here": Cell(1)})
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db.db_path}{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "other" / "runs.sqlite", db.db_path)
    assert (directory / "manifest.json").exists()
    table = read_table(db.path)
    assert list(table.columns) == ["only_here"]
    same_as_sqlite(db.path)


def test_a_reader_keeps_its_own_copy_of_a_folder_without_one(
        tmp_path: Path, small_blocks: None) -> None:
    """A folder the reference made has no copy: a reader with a folder of its own
    keeps one there, and reads it plus the runs changed since."""
    from .reference_db import make_reference_db

    folder = make_reference_db(tmp_path / "ref", 4)
    open_db(folder).close()  # a runtable writer added the change log, nothing else
    shutil.rmtree(tablecopy.copy_dir(folder), ignore_errors=True)
    own = tmp_path / "cache" / "copy"
    assert_same(read_table(folder, copy=own), read_table(folder, copy=False))
    assert tablecopy.read_manifest(own) is not None
    assert not tablecopy.copy_dir(folder).exists()
    conn = sqlite3.connect(folder / "runs.sqlite", isolation_level=None)
    conn.execute("UPDATE run_variables SET value = 99 WHERE run = 1 AND typeof(value) = "
                 "'integer'")
    conn.close()
    assert_same(read_table(folder, copy=own), read_table(folder, copy=False))


def test_a_folder_without_change_log_gets_no_copy(tmp_path: Path) -> None:
    from .reference_db import make_reference_db

    folder = make_reference_db(tmp_path / "ref", 4)
    own = tmp_path / "cache" / "copy"
    table = read_table(folder, copy=own)
    assert table.seq is None and tablecopy.read_manifest(own) is None


def test_a_read_only_folder_reads_its_copy(db: DatabaseFolder) -> None:
    expected = read_table(db, copy=False)
    db.close()
    for path in (db.path, tablecopy.copy_dir(db.path)):
        os.chmod(path, 0o555)
    try:
        if os.access(db.path, os.W_OK):
            pytest.skip("running as a user who may write anywhere")
        assert_same(read_table(db.path), expected)
    finally:
        for path in (db.path, tablecopy.copy_dir(db.path)):
            os.chmod(path, 0o755)


def test_a_change_to_most_runs_is_caught_up_block_by_block(
        db: DatabaseFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleting a variable changes every run: each later commit brings at most about
    the budget's worth of blocks up to date, and reads are exact all along."""
    monkeypatch.setattr(tablecopy, "UPDATE_BUDGET_RUNS", 1)
    # (In the background, the keeper goes on until caught up: one pass per commit here.)
    monkeypatch.setattr(tablecopy, "BACKGROUND", False)
    assert tablecopy.settle(tablecopy.copy_dir(db.path), 60)
    for run in range(11, 30):
        merge(db, run, run_cells(run))
    db.delete_variable("label")
    seen = []
    for run in range(1, 12):
        m = manifest(db)
        seen.append(len({b.seq for b in m.blocks.values()}))
        same_as_sqlite(db)
        db.set_comment(PROPOSAL, run, f"comment {run}")
    assert max(seen) > 1  # blocks at different positions: it went block by block
    assert len({b.seq for b in manifest(db).blocks.values()}) == 1


@pytest.mark.parametrize("processes", [1, 2])
def test_building_a_copy_reports_progress_and_reads_the_same(
        db: DatabaseFolder, monkeypatch: pytest.MonkeyPatch, processes: int) -> None:
    """``runtable serve`` builds the copy of a folder without one block by block,
    in child processes for a big table."""
    monkeypatch.setattr(tablecopy, "PARALLEL_RUNS", 1)
    directory = tablecopy.copy_dir(db.path)
    shutil.rmtree(directory)
    seen = []
    manifest = tablecopy.build(db.db_path, directory,
                               progress=lambda done, total: seen.append((done, total)),
                               processes=processes)
    assert manifest is not None and len(manifest.blocks) == 3
    assert seen[-1] == (10, 10) and len(seen) == 3  # (runs 1-10 in blocks of 4)
    assert tablecopy.read_manifest(directory) is not None
    same_as_sqlite(db)
