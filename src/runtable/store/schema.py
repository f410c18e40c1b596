"""SQLite schema of ``runs.sqlite``: the reference's data format versions 1-4 and
our own tables on top.

Each reference step is applied in its own transaction and records
``data_format_version`` in ``metameta`` before it commits, so an interrupted
upgrade resumes at the step that did not finish. Our own additions are tables
named ``runtable_*`` (versioned separately by the ``runtable_schema_version``
key), which the reference's readers never look at.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable

from .errors import UnsupportedVersionError

LATEST_VERSION = 4
MIN_OPENABLE_VERSION = 1

_V1 = """
CREATE TABLE IF NOT EXISTS run_info(proposal, run, start_time, added_at);
CREATE UNIQUE INDEX IF NOT EXISTS proposal_run ON run_info (proposal, run);
CREATE TABLE IF NOT EXISTS run_variables(proposal, run, name, version, value, timestamp,
    max_diff, provenance, summary_type, summary_method);
CREATE UNIQUE INDEX IF NOT EXISTS variable_version
    ON run_variables (proposal, run, name, version);
CREATE TABLE IF NOT EXISTS metameta(key PRIMARY KEY NOT NULL, value);
CREATE TABLE IF NOT EXISTS variables(name TEXT PRIMARY KEY NOT NULL, type TEXT, title TEXT,
    description TEXT, attributes TEXT);
CREATE TABLE IF NOT EXISTS time_comments(timestamp, comment);
CREATE VIEW IF NOT EXISTS runs AS SELECT * FROM run_info;
CREATE VIEW IF NOT EXISTS max_diffs AS SELECT proposal, run FROM run_info;
"""

_V2 = "ALTER TABLE run_variables ADD COLUMN attributes;"

_V3 = """
CREATE TABLE IF NOT EXISTS tags(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS variable_tags(
    variable_name TEXT REFERENCES variables(name) ON DELETE CASCADE,
    tag_id INTEGER REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (variable_name, tag_id)
);
"""

_V4 = """
CREATE TRIGGER IF NOT EXISTS delete_orphan_tags_after_variable_tag_delete
AFTER DELETE ON variable_tags
BEGIN
    DELETE FROM tags WHERE id = OLD.tag_id
        AND NOT EXISTS (SELECT 1 FROM variable_tags WHERE tag_id = OLD.tag_id);
END;
"""

#: Reference migrations: version reached -> SQL that reaches it from the one before.
MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2, 3: _V3, 4: _V4}

# Our own tables. runtable_merged_fragments is the ledger that makes merging a
# fragment twice a no-op; runtable_pending_deletions lets a variable deletion
# that was interrupted between the database and the HDF5 files finish later.
# (Step 1 also made the index of step 4 before that became a step of its own:
# folders upgraded then have it already.)
_RT1 = """
CREATE TABLE IF NOT EXISTS runtable_merged_fragments(
    name TEXT PRIMARY KEY NOT NULL, size INTEGER, proposal INTEGER, run INTEGER,
    merged_at REAL);
CREATE TABLE IF NOT EXISTS runtable_pending_deletions(name TEXT PRIMARY KEY NOT NULL);
"""

# The change log behind incremental reads of the table (runtable.store.table):
# one row per run with the sequence number of the last write that touched the
# run's cells or its run_info row. Triggers keep it, so every writer (ours, the
# reference's, a person's sqlite3 shell) is logged; a reader that remembers the
# largest seq it has seen re-reads only runs with a larger one. Write
# transactions are serialised, so seq grows in commit order.
_RT2_NEXT_SEQ = "ifnull((SELECT max(seq) FROM runtable_run_changes), 0) + 1"


def _log_trigger(name: str, event: str, table: str, row: str, when: str = "") -> str:
    condition = f"{row}.proposal IS NOT NULL AND {row}.run IS NOT NULL"
    if when:
        condition += f" AND ({when})"
    return f"""
CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table}
WHEN {condition}
BEGIN
    INSERT INTO runtable_run_changes(proposal, run, seq)
        VALUES ({row}.proposal, {row}.run, {_RT2_NEXT_SEQ})
        ON CONFLICT(proposal, run) DO UPDATE SET seq = excluded.seq;
END;
"""


_RT2 = """
CREATE TABLE IF NOT EXISTS runtable_run_changes(
    proposal, run, seq INTEGER NOT NULL, PRIMARY KEY (proposal, run));
CREATE INDEX IF NOT EXISTS runtable_run_changes_seq ON runtable_run_changes(seq);
""" + "".join(
    _log_trigger(f"runtable_log_{short}_{event.lower()}_{row.lower()}", event, table, row, when)
    for short, table in (("rv", "run_variables"), ("ri", "run_info"))
    for event, row, when in (
        ("INSERT", "NEW", ""),
        ("UPDATE", "NEW", ""),
        # A key change (renaming a run) also changes the old run's row.
        ("UPDATE", "OLD", "OLD.proposal IS NOT NEW.proposal OR OLD.run IS NOT NEW.run"),
        ("DELETE", "OLD", ""),
    )
)

# Where values came from and what they were before (runtable.store.history).
# runtable_merges: one row per merged fragment, with the job that wrote it and the
# context text that computed it; a cell's row in run_variables points at its merge by
# (proposal, run, timestamp = merged_at), so no column is added to the reference's
# table. runtable_value_history: each row of run_variables as it was before it was
# replaced or deleted, copied by triggers -- so every writer's changes are kept,
# comments and user-typed values included. A rename (same value, same timestamp) and
# the note on a value kept beside a dying job (attributes only) are no new version.
_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
_RV_COLUMNS = ("proposal, run, name, value, timestamp, max_diff, provenance, summary_type, "
               "summary_method, attributes")
_RV_OLD = ", ".join(f"OLD.{c.strip()}" for c in _RV_COLUMNS.split(","))
_RT3 = f"""
CREATE TABLE IF NOT EXISTS runtable_merges(
    id INTEGER PRIMARY KEY, proposal INTEGER, run INTEGER, merged_at REAL NOT NULL,
    fragment TEXT, provenance TEXT, context_sha256 TEXT, source TEXT);
CREATE INDEX IF NOT EXISTS runtable_merges_cell ON runtable_merges(proposal, run, merged_at);
CREATE TABLE IF NOT EXISTS runtable_value_history({_RV_COLUMNS}, replaced_at REAL);
CREATE INDEX IF NOT EXISTS runtable_value_history_cell
    ON runtable_value_history(proposal, run, name);
CREATE TRIGGER IF NOT EXISTS runtable_history_rv_update AFTER UPDATE ON run_variables
WHEN OLD.name IS NEW.name AND OLD.proposal IS NEW.proposal AND OLD.run IS NEW.run
    AND (OLD.timestamp IS NOT NEW.timestamp OR OLD.value IS NOT NEW.value)
BEGIN
    INSERT INTO runtable_value_history({_RV_COLUMNS}, replaced_at)
        VALUES ({_RV_OLD}, ifnull(NEW.timestamp, {_NOW}));
END;
CREATE TRIGGER IF NOT EXISTS runtable_history_rv_delete AFTER DELETE ON run_variables
BEGIN
    INSERT INTO runtable_value_history({_RV_COLUMNS}, replaced_at)
        VALUES ({_RV_OLD}, {_NOW});
END;
CREATE TABLE IF NOT EXISTS runtable_time_comment_history(
    comment_id INTEGER, timestamp, comment, replaced_at REAL, deleted INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS runtable_time_comment_history_id
    ON runtable_time_comment_history(comment_id);
CREATE TRIGGER IF NOT EXISTS runtable_history_tc_update AFTER UPDATE ON time_comments
WHEN OLD.comment IS NOT NEW.comment OR OLD.timestamp IS NOT NEW.timestamp
BEGIN
    INSERT INTO runtable_time_comment_history(comment_id, timestamp, comment, replaced_at,
        deleted) VALUES (OLD.rowid, OLD.timestamp, OLD.comment, {_NOW}, 0);
END;
CREATE TRIGGER IF NOT EXISTS runtable_history_tc_delete AFTER DELETE ON time_comments
BEGIN
    INSERT INTO runtable_time_comment_history(comment_id, timestamp, comment, replaced_at,
        deleted) VALUES (OLD.rowid, OLD.timestamp, OLD.comment, {_NOW}, 1);
END;
"""
# The index on run_variables(name) keeps per-variable queries (views, deleting a
# variable) fast on large tables. Building it reads every cell (seconds at 10
# million cells), so `runtable serve` may defer it on a folder's first start: after
# the change log, which the table's first read needs, and after that read.
_RT4 = "CREATE INDEX IF NOT EXISTS runtable_run_variables_name ON run_variables(name);"
#: Steps that may be left for later (:func:`migrate` with ``defer_slow``): nothing
#: depends on them but speed.
DEFERRABLE_STEPS = frozenset({4})
RUNTABLE_MIGRATIONS: dict[int, str] = {1: _RT1, 2: _RT2, 3: _RT3, 4: _RT4}
RUNTABLE_VERSION_KEY = "runtable_schema_version"


def _tables(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table','view')"))


def detect_version(conn: sqlite3.Connection) -> int:
    """Data format version of an open database: -1 for an empty file, 0 for the
    legacy wide ``runs`` table, else ``metameta.data_format_version``."""
    objects = _tables(conn)
    if not objects:
        return -1
    if "metameta" in objects:
        row = conn.execute(
            "SELECT value FROM metameta WHERE key = 'data_format_version'"
        ).fetchone()
        if row is not None:
            return int(row[0])
    if objects.get("runs") == "table":
        return 0
    if "run_variables" in objects:
        # Long-narrow tables but no version recorded: the reference's
        # 'intermediate v1' databases, which its own migrate command fixes.
        raise UnsupportedVersionError(
            "This database has no data_format_version; upgrade it with the reference "
            "system's `damnit migrate intermediate-v1` first."
        )
    raise UnsupportedVersionError("This file does not look like a runtable/DAMNIT database")


def check_openable(version: int) -> None:
    if version == 0:
        raise UnsupportedVersionError(
            "This database uses the legacy data format v0 (one column per variable in the "
            "'runs' table), which runtable cannot open. Convert it with the reference "
            "system's `damnit migrate v0-to-v1` first."
        )
    if version > LATEST_VERSION:
        raise UnsupportedVersionError(
            f"This database uses data format v{version}, newer than this runtable "
            f"supports (v{LATEST_VERSION}); upgrade runtable."
        )


def _run_script_in_transaction(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT first and run each statement in autocommit;
    # we want the step and the version bump to commit together.
    for statement in _split(script):
        conn.execute(statement)


def _split(script: str) -> Iterable[str]:
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf
            buf = ""
    if buf.strip():
        yield buf


def migrate(conn: sqlite3.Connection, defer_slow: bool = False) -> int:
    """Bring the database to :data:`LATEST_VERSION`; returns the version it had.

    *conn* must be in autocommit mode (``isolation_level=None``). With *defer_slow*,
    our own steps stop before the first of :data:`DEFERRABLE_STEPS`: call
    :func:`migrate_runtable` later to finish.
    """
    start = detect_version(conn)
    check_openable(start)
    for target in range(max(start, 0) + 1, LATEST_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have finished this step while we waited.
            current = detect_version(conn)
            if current < target:
                _run_script_in_transaction(conn, MIGRATIONS[target])
                conn.execute(
                    "INSERT INTO metameta(key, value) VALUES ('data_format_version', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (target,),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    migrate_runtable(conn, defer_slow)
    return start


def needs_upgrade(conn: sqlite3.Connection) -> bool:
    """Whether opening the database for writing would change its schema (a folder the
    reference made, or an older runtable's): :func:`migrate` has steps to do."""
    if detect_version(conn) < LATEST_VERSION:
        return True
    row = conn.execute(
        "SELECT value FROM metameta WHERE key = ?", (RUNTABLE_VERSION_KEY,)).fetchone()
    return (int(row[0]) if row else 0) < max(RUNTABLE_MIGRATIONS)


def migrate_runtable(conn: sqlite3.Connection, defer_slow: bool = False) -> None:
    """Create or upgrade our own ``runtable_*`` tables (with *defer_slow*, up to the
    first of :data:`DEFERRABLE_STEPS`)."""
    row = conn.execute(
        "SELECT value FROM metameta WHERE key = ?", (RUNTABLE_VERSION_KEY,)
    ).fetchone()
    current = int(row[0]) if row else 0
    for target in range(current + 1, max(RUNTABLE_MIGRATIONS) + 1):
        if defer_slow and target in DEFERRABLE_STEPS:
            return
        def step(target: int = target) -> None:
            _run_script_in_transaction(conn, RUNTABLE_MIGRATIONS[target])
            conn.execute(
                "INSERT INTO metameta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (RUNTABLE_VERSION_KEY, target),
            )
        with_transaction(conn, step)


def with_transaction(conn: sqlite3.Connection, body: Callable[[], object]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        body()
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def insert_run(conn: sqlite3.Connection, proposal: int, run: int,
               added_at: float | None) -> None:
    """Add the ``run_info`` row of a run unless it exists (``added_at`` None: now)."""
    conn.execute(
        "INSERT INTO run_info(proposal, run, start_time, added_at) VALUES (?, ?, NULL, ?) "
        "ON CONFLICT(proposal, run) DO NOTHING",
        (int(proposal), int(run), time.time() if added_at is None else added_at))


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1] for row in conn.execute("PRAGMA table_info(runs)")}


def all_variable_names(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT name FROM run_variables UNION SELECT name FROM variables"
    )
    return sorted(r[0] for r in rows if r[0] is not None)


_FIXED_COLUMNS = ("proposal", "run", "start_time", "added_at")


def rebuild_views(conn: sqlite3.Connection) -> None:
    """(Re)create the wide ``runs`` and ``max_diffs`` views, one column per
    variable name. Call inside a transaction."""
    names = [n for n in all_variable_names(conn) if n not in _FIXED_COLUMNS]

    def cases(column: str) -> str:
        return "".join(
            f", max(CASE WHEN rv.name = {quote_str(n)} THEN rv.{column} END) AS {quote_ident(n)}"
            for n in names
        )

    # Every row has version 1 (the reference never wrote another), so no
    # latest-version filter: it would make the view ~30% slower. These views are
    # for compatibility; they cost O(rows x variables), so bulk readers should
    # pivot run_variables themselves.
    join = (
        "FROM run_info INNER JOIN run_variables AS rv "
        "ON rv.proposal = run_info.proposal AND rv.run = run_info.run "
        "GROUP BY run_info.proposal, run_info.run"
    )
    conn.execute("DROP VIEW IF EXISTS runs")
    conn.execute("DROP VIEW IF EXISTS max_diffs")
    conn.execute(
        "CREATE VIEW runs AS SELECT run_info.proposal AS proposal, run_info.run AS run, "
        f"run_info.start_time AS start_time, run_info.added_at AS added_at{cases('value')} {join}"
    )
    conn.execute(
        "CREATE VIEW max_diffs AS SELECT run_info.proposal AS proposal, run_info.run AS run"
        f"{cases('max_diff')} {join}"
    )
