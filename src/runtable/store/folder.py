"""The database folder: ``runs.sqlite`` plus ``extracted_data/`` and ``context.py``."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..sharing import repair, shared_dir, shared_file
from . import schema, settings
from .columns import reorder_rows
from .errors import (
    DamagedDatabase,
    EditConflict,
    ReadOnlyError,
    StoreError,
    UnsupportedVersionError,
    ValidationError,
)
from .h5merge import TMP_SUFFIX, remove_from_run_file
from .summaries import decode_summary
from .uservars import USER_TYPES, check_name, check_text, check_type, coerce_value

if TYPE_CHECKING:
    from .merge import MergeResult

log = logging.getLogger(__name__)

RUN_FILE_RE = re.compile(r"^p\d+_r\d+\.h5$")
DB_NAME = "runs.sqlite"
EXTRACTED_DIR = "extracted_data"
LOGS_DIR = "process_logs"
CONTEXT_NAME = "context.py"
BUSY_TIMEOUT_S = 30.0
#: How long closing a writable folder waits for the background update of its
#: columnar copy (a pass is at most a few blocks' work).
CLOSE_WAIT_S = 30.0
#: Provenance of values typed by a person (comments, user-editable variables).
USER_PROVENANCE = ""
#: ``base`` of an edit that is not checked against the stored value (last write wins).
UNCHECKED: Any = object()

DEFAULT_CONTEXT = '''\
"""Context file: each @Variable function below becomes a column of the run table."""

from damnit_ctx import Cell, Variable  # noqa: F401
'''


@dataclass(frozen=True)
class VariableInfo:
    """One row of the ``variables`` table with its tags."""

    name: str
    type: str | None
    title: str | None
    description: str | None
    attributes: dict[str, Any] | None
    tags: tuple[str, ...]

    @property
    def user_editable(self) -> bool:
        return self.type is not None


@dataclass(frozen=True)
class TimeComment:
    id: int
    timestamp: float
    comment: str


def _connect(db_path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        uri = f"file:{quote(str(db_path))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S,
                               check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # A WAL database in a folder we cannot write, with no -shm file left
            # by a writer: SQLite can only read it as an immutable file.
            conn.close()
            conn = sqlite3.connect(f"file:{quote(str(db_path))}?immutable=1", uri=True,
                                   isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=BUSY_TIMEOUT_S,
                               check_same_thread=False)
        # WAL: readers never block the writer nor wait for it.
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed comment survives a power cut, not just a crash.
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class DatabaseFolder:
    """An open database folder. Use as a context manager or call :meth:`close`.

    Only one process should write a folder (the service, or the CLI command
    doing the work); any number may read it.
    """

    def __init__(self, path: str | os.PathLike[str], readonly: bool = False, *,
                 defer_slow_upgrade: bool = False) -> None:
        self.path = Path(path).absolute()
        self.readonly = readonly
        if not self.db_path.is_file():
            raise FileNotFoundError(f"No {DB_NAME} in {self.path}")
        self._lock = threading.RLock()
        self._schema_cache: tuple[int, set[str]] | None = None
        _refuse_empty(self.db_path)
        try:
            self.conn = _connect(self.db_path, readonly)
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as exc:
            raise DamagedDatabase(self.db_path, exc) from None
        try:
            version = schema.detect_version(self.conn)
            schema.check_openable(version)
            if readonly:
                if version < schema.LATEST_VERSION:
                    raise UnsupportedVersionError(
                        f"{self.db_path} uses data format v{version}; open it once with "
                        f"write access to upgrade it to v{schema.LATEST_VERSION}"
                    )
            else:
                start = schema.migrate(self.conn, defer_slow_upgrade)
                # Earlier versions made these writable by everyone.
                for path in (self.path, self.extracted_dir, self.logs_dir, self.db_path):
                    repair(path)
                # Views made by older versions (or placeholders) may lack columns.
                # Checking costs a scan of the names, so only in those cases.
                if start < schema.LATEST_VERSION or len(self._view_columns()) <= 4:
                    names = set(schema.all_variable_names(self.conn))
                    if not names <= self._view_columns():
                        with self.transaction():
                            self._ensure_view_columns(names)
        except sqlite3.OperationalError:
            self.conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise DamagedDatabase(self.db_path, exc) from None
        except BaseException:
            self.conn.close()
            raise

    def finish_upgrade(self) -> bool:
        """Do the steps of the upgrade that opening with ``defer_slow_upgrade`` left
        (an index over every cell); returns whether there were any."""
        self._check_writable()
        with self._lock:
            if not schema.needs_upgrade(self.conn):
                return False
            schema.migrate_runtable(self.conn)
            return True

    # -- paths ---------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def extracted_dir(self) -> Path:
        return self.path / EXTRACTED_DIR

    @property
    def logs_dir(self) -> Path:
        return self.path / LOGS_DIR

    @property
    def context_path(self) -> Path:
        return self.path / CONTEXT_NAME

    def run_file(self, proposal: int, run: int) -> Path:
        """Path of the per-run HDF5 file (which may not exist yet)."""
        return self.extracted_dir / f"p{proposal}_r{run}.h5"

    # -- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        if not self.readonly:
            from . import tablecopy

            # (A process about to end should not stop its keeper in mid-write: the
            # copy would stay behind, costing every reader time until the next write.)
            tablecopy.settle(tablecopy.copy_dir(self.path), CLOSE_WAIT_S)
        self.conn.close()

    def __enter__(self) -> DatabaseFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "writable"
        return f"<DatabaseFolder {self.path} ({mode})>"

    # -- transactions and locks ----------------------------------------------
    def _check_writable(self) -> None:
        if self.readonly:
            raise ReadOnlyError(f"{self.path} was opened read-only")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: commits on success, rolls back on any exception.

        Every write of the folder passes here, so after each commit the table's
        columnar copy is brought up to date, in the background
        (:func:`runtable.store.tablecopy.schedule`)."""
        self._check_writable()
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        self._update_table_copy()

    def _update_table_copy(self) -> None:
        from . import tablecopy

        try:
            tablecopy.schedule(self.db_path, tablecopy.copy_dir(self.path))
        except Exception:  # the commit stands; a stale copy only costs readers time
            log.warning("Could not update the table's copy in %s", self.path, exc_info=True)

    @contextlib.contextmanager
    def hdf5_lock(self) -> Iterator[None]:
        """Exclusive right to rewrite per-run HDF5 files (across processes)."""
        self._check_writable()
        shared_dir(self.extracted_dir)
        lock_path = self.extracted_dir / ".runtable-merge.lock"
        with self._lock, open(lock_path, "a") as lockfile:
            shared_file(lock_path)
            fcntl.flock(lockfile, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lockfile, fcntl.LOCK_UN)

    @property
    def data_format_version(self) -> int:
        return schema.detect_version(self.conn)

    def integrity_check(self) -> str:
        """SQLite's integrity check: ``'ok'`` or the problems found."""
        rows = self.conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(r[0] for r in rows)

    # -- views -------------------------------------------------------------
    def _view_columns(self) -> set[str]:
        version = self.conn.execute("PRAGMA schema_version").fetchone()[0]
        if self._schema_cache is None or self._schema_cache[0] != version:
            self._schema_cache = (version, schema.view_columns(self.conn))
        return self._schema_cache[1]

    def _ensure_view_columns(self, names: set[str]) -> bool:
        """Rebuild the views if some *names* are not columns yet (inside a transaction)."""
        if names <= self._view_columns():
            return False
        schema.rebuild_views(self.conn)
        return True

    # -- settings ------------------------------------------------------------
    def get_setting(self, key: str) -> Any:
        """A setting's stored value, or its default when it was never set."""
        setting = settings.lookup(key)
        row = self.conn.execute(
            "SELECT value FROM metameta WHERE key = ?", (setting.key,)
        ).fetchone()
        return row[0] if row is not None else setting.default

    def set_setting(self, key: str, value: Any) -> Any:
        """Validate and store a setting; returns the stored value."""
        setting = settings.lookup(key)
        if setting.readonly:
            raise ValidationError(f"{setting.key!r} is managed by runtable and cannot be set")
        parsed = setting.parse(value)
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO metameta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (setting.key, parsed),
            )
        return parsed

    def delete_setting(self, key: str) -> None:
        """Remove a stored setting (its default applies again)."""
        setting = settings.lookup(key)
        if setting.readonly or setting.key in ("db_id", "proposal"):
            raise ValidationError(f"{setting.key!r} cannot be deleted")
        with self.transaction() as conn:
            conn.execute("DELETE FROM metameta WHERE key = ?", (setting.key,))

    def settings(self) -> dict[str, Any]:
        """Every known setting with its value (stored or default)."""
        stored = dict(self.conn.execute("SELECT key, value FROM metameta"))
        return {key: stored.get(key, s.default) for key, s in settings.SETTINGS.items()}

    @property
    def proposal(self) -> int | None:
        value = self.get_setting("proposal")
        return int(value) if value is not None else None

    @property
    def db_id(self) -> str | None:
        return self.get_setting("db_id")

    def new_db_id(self) -> str:
        """Give this database a new random id (e.g. after copying a folder)."""
        db_id = secrets.token_hex(20)
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO metameta(key, value) VALUES ('db_id', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (db_id,),
            )
        return db_id

    # -- runs ------------------------------------------------------------------
    def ensure_run(self, proposal: int, run: int, added_at: float | None = None) -> None:
        """Add a ``run_info`` row if the run is not known yet."""
        with self.transaction() as conn:
            _insert_run(conn, proposal, run, added_at)

    def runs(self) -> list[tuple[int, int]]:
        """All (proposal, run) pairs in ``run_info``."""
        return [tuple(r) for r in self.conn.execute(
            "SELECT proposal, run FROM run_info ORDER BY proposal, run")]

    def get_value(self, proposal: int, run: int, name: str) -> Any:
        """Decoded summary value of one cell (None if missing or an error)."""
        row = self.conn.execute(
            "SELECT value, summary_type FROM run_variables WHERE proposal = ? AND run = ? "
            "AND name = ? ORDER BY version DESC LIMIT 1", (proposal, run, name)).fetchone()
        return decode_summary(row[0], row[1]) if row else None

    def get_attributes(self, proposal: int, run: int, name: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT attributes FROM run_variables WHERE proposal = ? AND run = ? "
            "AND name = ? ORDER BY version DESC LIMIT 1", (proposal, run, name)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    # -- comments ----------------------------------------------------------------
    def set_comment(self, proposal: int, run: int, text: str | None,
                    base: Any = UNCHECKED) -> None:
        """Set (or with None, clear) a run's comment.

        ``base``: the comment the edit was made on (None: none); when the stored one
        differs, nothing changes and :class:`EditConflict` says what it is now.
        """
        if text is not None:
            if not isinstance(text, str):
                raise ValidationError(f"{text!r} is not a string")
            check_text(text, "The comment")
        if base is not UNCHECKED and base == "":
            base = None
        self._set_user_cell(proposal, run, "comment", text or None, base)

    def add_time_comment(self, text: str, timestamp: float | None = None) -> int:
        """Add a standalone comment at *timestamp* (default: now); returns its id."""
        if not isinstance(text, str):
            raise ValidationError(f"{text!r} is not a string")
        check_text(text, "The comment")
        timestamp = time.time() if timestamp is None else check_timestamp(timestamp)
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO time_comments(timestamp, comment) VALUES (?, ?)",
                (timestamp, text),
            )
            assert cur.lastrowid is not None  # set by an INSERT
            return cur.lastrowid

    def edit_time_comment(self, comment_id: int, text: str) -> None:
        if not isinstance(text, str):
            raise ValidationError(f"{text!r} is not a string")
        check_text(text, "The comment")
        with self.transaction() as conn:
            cur = conn.execute("UPDATE time_comments SET comment = ? WHERE rowid = ?",
                               (text, comment_id))
            if cur.rowcount == 0:
                raise KeyError(f"No time comment with id {comment_id}")

    def delete_time_comment(self, comment_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM time_comments WHERE rowid = ?", (comment_id,))

    def time_comments(self) -> list[TimeComment]:
        """Every standalone comment, oldest first. A timestamp that is no finite number
        (written by something else) reads as NaN, so the comment can still be seen
        and fixed."""
        return [TimeComment(int(i), _finite_or_nan(t), str(c if c is not None else ""))
                for i, t, c in self.conn.execute(
                    "SELECT rowid, timestamp, comment FROM time_comments "
                    "ORDER BY timestamp, rowid")]

    # -- variables table -----------------------------------------------------------
    def variables(self) -> dict[str, VariableInfo]:
        """All rows of the ``variables`` table, by name."""
        tags: dict[str, list[str]] = {}
        for var, tag in self.conn.execute(
            "SELECT variable_tags.variable_name, tags.name FROM variable_tags "
            "JOIN tags ON tags.id = variable_tags.tag_id ORDER BY tags.name"
        ):
            tags.setdefault(var, []).append(tag)
        return {
            name: VariableInfo(name, vtype, title, description,
                               json.loads(attrs) if attrs else None,
                               tuple(tags.get(name, ())))
            for name, vtype, title, description, attrs in self.conn.execute(
                "SELECT name, type, title, description, attributes FROM variables")
        }

    def user_variable_names(self) -> set[str]:
        return {r[0] for r in self.conn.execute(
            "SELECT name FROM variables WHERE type IS NOT NULL")}

    def update_computed_variables(self, variables: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Upsert the context file's variables (``{name: {title, description, tags,
        attributes}}``, in the context file's order, which the table's rows then
        follow); returns the names whose row, tags or place changed.

        Variables no longer in the context file are kept: their values stay
        meaningful. A name that is a user-editable variable is left alone.
        """
        changed: list[str] = []
        with self.transaction() as conn:
            for name, info in variables.items():
                row = conn.execute(
                    "SELECT type, title, description, attributes FROM variables WHERE name = ?",
                    (name,)).fetchone()
                if row is not None and row[0] is not None:
                    log.warning("Context variable %r has the name of a user-editable "
                                "variable; keeping the user variable", name)
                    continue
                attrs = info.get("attributes")
                new = (None, info.get("title"), info.get("description"),
                       json.dumps(attrs, sort_keys=True) if attrs else None)
                differs = row is None or tuple(row) != new
                if differs:
                    conn.execute(
                        "INSERT INTO variables(name, type, title, description, attributes) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                        "type = excluded.type, title = excluded.title, "
                        "description = excluded.description, attributes = excluded.attributes",
                        (name, *new))
                tags = info.get("tags") or ()
                if isinstance(tags, str):
                    tags = (tags,)
                if _sync_tags(conn, name, set(tags)) or differs:
                    changed.append(name)
            if reorder_rows(conn, list(variables)):
                # A new order is a change of every column's place.
                changed = list(variables)
            self._ensure_view_columns(set(variables))
        return changed

    def add_variables(self, titles: Mapping[str, str]) -> list[str]:
        """Give names that have none a row in the ``variables`` table (computed, i.e.
        not user-editable, with the given title); returns the names added."""
        with self.transaction() as conn:
            added = [name for name, title in titles.items() if conn.execute(
                "INSERT OR IGNORE INTO variables(name, type, title, description, attributes) "
                "VALUES (?, NULL, ?, NULL, NULL)", (name, title)).rowcount]
            self._ensure_view_columns(set(titles))
        return added

    def add_user_variable(self, name: str, variable_type: str, title: str | None = None,
                          description: str | None = None) -> None:
        """Define a user-editable column of type boolean|integer|number|string."""
        check_name(name)
        check_type(variable_type)
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM variables WHERE name = ?", (name,)).fetchone() or \
                    conn.execute("SELECT 1 FROM run_variables WHERE name = ? LIMIT 1",
                                 (name,)).fetchone():
                raise ValidationError(f"A variable named {name!r} already exists")
            conn.execute(
                "INSERT INTO variables(name, type, title, description, attributes) "
                "VALUES (?, ?, ?, ?, NULL)", (name, variable_type, title or name, description))
            self._ensure_view_columns({name})

    def change_user_variable(self, name: str, *, new_name: str | None = None,
                             title: str | None = None,
                             description: str | None = None) -> None:
        """Rename a user-editable variable and/or change its title or description."""
        with self.transaction() as conn:
            info = self._user_variable(name)
            if new_name is not None and new_name != name:
                check_name(new_name)
                if conn.execute("SELECT 1 FROM variables WHERE name = ?",
                                (new_name,)).fetchone() or conn.execute(
                        "SELECT 1 FROM run_variables WHERE name = ? LIMIT 1",
                        (new_name,)).fetchone():
                    raise ValidationError(f"A variable named {new_name!r} already exists")
                # variable_tags references variables(name) without ON UPDATE, so
                # add the new row, move the children, then drop the old row.
                conn.execute(
                    "INSERT INTO variables(name, type, title, description, attributes) "
                    "SELECT ?, type, title, description, attributes FROM variables "
                    "WHERE name = ?", (new_name, name))
                conn.execute("UPDATE variable_tags SET variable_name = ? WHERE variable_name = ?",
                             (new_name, name))
                conn.execute("DELETE FROM variables WHERE name = ?", (name,))
                conn.execute("UPDATE run_variables SET name = ? WHERE name = ?", (new_name, name))
                conn.execute("UPDATE runtable_value_history SET name = ? WHERE name = ?",
                             (new_name, name))
                name = new_name
                schema.rebuild_views(conn)
            if title is not None or description is not None:
                conn.execute(
                    "UPDATE variables SET title = ?, description = ? WHERE name = ?",
                    (title if title is not None else info.title,
                     description if description is not None else info.description, name))

    def _user_variable(self, name: str) -> VariableInfo:
        info = self.variables().get(name)
        if info is None or not info.user_editable:
            raise ValidationError(f"{name!r} is not a user-editable variable")
        return info

    def set_user_value(self, proposal: int, run: int, name: str, value: Any,
                       base: Any = UNCHECKED) -> Any:
        """Set one cell of a user-editable variable (None clears it); returns the
        stored value. Raises ValidationError, e.g. "'abc' is not a number".

        ``base``: the value the edit was made on; when the stored one differs, nothing
        changes and :class:`EditConflict` says what it is now.
        """
        info = self._user_variable(name)
        user_type = info.type
        assert user_type in USER_TYPES

        def coerce(v: Any) -> Any:
            if v is None or (v == "" and user_type != "string"):
                return None
            return coerce_value(user_type, v)

        stored = coerce(value)
        if base is not UNCHECKED:
            # A base that is no value of the column cannot match the stored one.
            with contextlib.suppress(ValidationError):
                base = coerce(base)
        self._set_user_cell(proposal, run, name, stored, base)
        return stored

    def _set_user_cell(self, proposal: int, run: int, name: str, value: Any,
                       base: Any = UNCHECKED) -> None:
        with self.transaction() as conn:
            if base is not UNCHECKED:
                # Checked inside the write transaction: no edit can come in between.
                current = self.get_value(proposal, run, name)
                if current != base:
                    raise EditConflict(
                        f"Run {run}, {name}: someone else changed it meanwhile; it is "
                        f"now {current!r}. Nothing was changed", current)
            if value is None:
                conn.execute("DELETE FROM run_variables WHERE proposal = ? AND run = ? "
                             "AND name = ?", (proposal, run, name))
                return
            _insert_run(conn, proposal, run, None)
            conn.execute(
                "INSERT INTO run_variables(proposal, run, name, version, value, timestamp, "
                "max_diff, provenance, summary_type, summary_method, attributes) "
                "VALUES (?, ?, ?, 1, ?, ?, NULL, ?, NULL, NULL, NULL) "
                "ON CONFLICT(proposal, run, name, version) DO UPDATE SET "
                "value = excluded.value, timestamp = excluded.timestamp, "
                "provenance = excluded.provenance, max_diff = NULL, summary_type = NULL, "
                "summary_method = NULL, attributes = NULL",
                (proposal, run, name, value, time.time(), USER_PROVENANCE))
            self._ensure_view_columns({name})

    def delete_variable(self, name: str) -> None:
        """Remove a variable everywhere: its rows in both tables and its data in
        every per-run HDF5 file."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM run_variables WHERE name = ?", (name,))
            # Its history goes with it (the delete trigger has just added the last rows).
            conn.execute("DELETE FROM runtable_value_history WHERE name = ?", (name,))
            conn.execute("DELETE FROM variables WHERE name = ?", (name,))
            # Recorded in the same transaction, so HDF5 clean-up interrupted by a
            # crash is finished by the next finish_pending_deletions().
            conn.execute("INSERT OR IGNORE INTO runtable_pending_deletions(name) VALUES (?)",
                         (name,))
            schema.rebuild_views(conn)
        self.finish_pending_deletions()

    def finish_pending_deletions(self) -> None:
        """Remove deleted variables' groups from the per-run HDF5 files."""
        names = {r[0] for r in self.conn.execute("SELECT name FROM runtable_pending_deletions")}
        if not names:
            return
        with self.hdf5_lock():
            for path in sorted(self.extracted_dir.glob("p*_r*.h5")):
                if RUN_FILE_RE.match(path.name):
                    remove_from_run_file(path, names)
            with self.transaction() as conn:
                conn.executemany("DELETE FROM runtable_pending_deletions WHERE name = ?",
                                 [(n,) for n in names])

    # -- merging fragments ---------------------------------------------------------
    def merge_fragment(self, path: str | os.PathLike[str]) -> MergeResult:
        """Merge one ``*.ready.h5`` fragment; see :mod:`runtable.store.merge`.

        Returns a :class:`~runtable.store.merge.MergeResult`.
        """
        from .merge import merge_fragment

        return merge_fragment(self, Path(path))

    def merge_pending(self, max_job_s: float | None = None) -> list[MergeResult]:
        """Finish interrupted work and merge every fragment waiting in
        ``extracted_data``, oldest first. Returns the list of MergeResults.
        ``max_job_s``: also remove partial fragments older than jobs may run."""
        from .merge import merge_pending

        return merge_pending(self, max_job_s)

    def clean_temporary_files(self) -> None:
        """Remove half-written per-run files left by a crash (call under hdf5_lock)."""
        for tmp in self.extracted_dir.glob(f"*{TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)


def _refuse_empty(db_path: Path) -> None:
    """SQLite takes an empty file for an empty database and would write a new one
    over it: a zero-byte ``runs.sqlite`` is refused instead (its WAL may hold data)."""
    try:
        empty = db_path.stat().st_size == 0
        wal = db_path.with_name(db_path.name + "-wal")
        empty = empty and not (wal.exists() and wal.stat().st_size > 0)
    except OSError:
        return
    if empty:
        raise DamagedDatabase(db_path, "it is empty: 0 bytes")


def _finite_or_nan(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def check_timestamp(value: Any) -> float:
    """A time comment's timestamp (epoch seconds), if it is a time: a finite number
    from year 1 to 9999; ValidationError otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(f"{value!r} is not a time (epoch seconds)") from None
    if not _MIN_TIMESTAMP <= number <= _MAX_TIMESTAMP:
        raise ValidationError(f"{value!r} is not a time between the years 1 and 9999")
    return number


_MIN_TIMESTAMP, _MAX_TIMESTAMP = -62135596800.0, 253402300799.0


def _insert_run(conn: sqlite3.Connection, proposal: int, run: int,
                added_at: float | None) -> None:
    conn.execute(
        "INSERT INTO run_info(proposal, run, start_time, added_at) VALUES (?, ?, NULL, ?) "
        "ON CONFLICT(proposal, run) DO NOTHING",
        (int(proposal), int(run), time.time() if added_at is None else added_at))


def _sync_tags(conn: sqlite3.Connection, name: str, wanted: set[str]) -> bool:
    current = {tag for (tag,) in conn.execute(
        "SELECT tags.name FROM variable_tags JOIN tags ON tags.id = variable_tags.tag_id "
        "WHERE variable_tags.variable_name = ?", (name,))}
    if current == wanted:
        return False
    for tag in current - wanted:
        # The orphan-tag trigger drops the tag itself when no variable uses it.
        conn.execute(
            "DELETE FROM variable_tags WHERE variable_name = ? AND tag_id = "
            "(SELECT id FROM tags WHERE name = ?)", (name, tag))
    for tag in wanted - current:
        conn.execute("INSERT OR IGNORE INTO tags(name) VALUES (?)", (tag,))
        conn.execute(
            "INSERT INTO variable_tags(variable_name, tag_id) "
            "SELECT ?, id FROM tags WHERE name = ?", (name, tag))
    return True


def open_db(path: str | os.PathLike[str], readonly: bool = False, *,
            defer_slow_upgrade: bool = False) -> DatabaseFolder:
    """Open an existing database folder (upgrading an older format when writable;
    with *defer_slow_upgrade*, the slow steps of that are left for
    :meth:`DatabaseFolder.finish_upgrade`)."""
    return DatabaseFolder(path, readonly=readonly, defer_slow_upgrade=defer_slow_upgrade)


def create_folder(path: str | os.PathLike[str], proposal: int,
                  context_text: str | None = None) -> DatabaseFolder:
    """Create (or re-open) a database folder for *proposal* and return it, writable.

    Makes ``runs.sqlite`` (data format v4, a new ``db_id``), ``extracted_data/``,
    ``process_logs/`` and ``context.py`` (from *context_text*, or a minimal
    template; an existing context file is kept unless *context_text* is given).
    """
    proposal = settings.SETTINGS["proposal"].parse(proposal)
    folder = Path(path).absolute()
    for directory in (folder, folder / EXTRACTED_DIR, folder / LOGS_DIR):
        shared_dir(directory)  # the team's (runtable.sharing)
    db_path = folder / DB_NAME
    if db_path.exists():
        db = DatabaseFolder(folder)
        existing = db.proposal
        if existing not in (None, proposal):
            db.close()
            raise StoreError(f"{folder} already belongs to proposal {existing}")
    else:
        # Group-writable before WAL mode: SQLite gives -wal/-shm the database's mode.
        sqlite3.connect(db_path).close()
        shared_file(db_path)
        conn = _connect(db_path, readonly=False)
        try:
            schema.migrate(conn)
            schema.with_transaction(conn, lambda: conn.executemany(
                "INSERT OR IGNORE INTO metameta(key, value) VALUES (?, ?)",
                [("db_id", secrets.token_hex(20)), ("concurrent_jobs", 15),
                 ("damnit_python", sys.executable), ("context_python", sys.executable)]))
        finally:
            conn.close()
        db = DatabaseFolder(folder)
    with db.transaction() as conn:
        conn.execute("INSERT INTO metameta(key, value) VALUES ('proposal', ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (proposal,))
    context = folder / CONTEXT_NAME
    if context_text is not None or not context.exists():
        tmp = context.with_name(context.name + ".tmp")
        tmp.write_text(DEFAULT_CONTEXT if context_text is None else context_text)
        shared_file(tmp)
        os.replace(tmp, context)
    return db
