"""What people type: run comments, standalone (time) comments, and the values of
user-editable variables (edits may carry the value they were made on:
:class:`~runtable.store.errors.EditConflict`)."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any

from ..errors import (
    EditConflict,
    ValidationError,
)
from ..schema import insert_run
from ..uservars import USER_TYPES, check_text, coerce_value
from .values import FolderValues
from .variables import FolderVariables

#: Provenance of values typed by a person (comments, user-editable variables).
USER_PROVENANCE = ""
#: ``base`` of an edit that is not checked against the stored value (last write wins).
UNCHECKED: Any = object()


@dataclass(frozen=True)
class TimeComment:
    id: int
    timestamp: float
    comment: str


class FolderUserData(FolderVariables, FolderValues):
    """Comments, time comments and user-editable values."""

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

    def edit_time_comment(self, comment_id: int, text: str, *,
                          timestamp: float | None = None, base: Any = UNCHECKED) -> None:
        """Change a standalone comment's text (and its time, when ``timestamp`` is
        given). ``base``: the text the edit was made on; when the stored one differs,
        nothing changes and :class:`EditConflict` says what it is now. KeyError when
        there is no such comment."""
        if not isinstance(text, str):
            raise ValidationError(f"{text!r} is not a string")
        check_text(text, "The comment")
        timestamp = None if timestamp is None else check_timestamp(timestamp)
        with self.transaction() as conn:
            if base is not UNCHECKED:
                row = conn.execute("SELECT comment FROM time_comments WHERE rowid = ?",
                                   (comment_id,)).fetchone()
                if row is not None and row[0] != base:
                    raise EditConflict("Someone else changed this comment meanwhile; "
                                       "nothing was changed", row[0])
            cur = conn.execute("UPDATE time_comments SET comment = ?, timestamp = "
                               "coalesce(?, timestamp) WHERE rowid = ?",
                               (text, timestamp, comment_id))
            if cur.rowcount == 0:
                raise KeyError(f"There is no time comment with id {comment_id}")

    def delete_time_comment(self, comment_id: int) -> bool:
        """Delete a standalone comment; False when there was none with this id."""
        with self.transaction() as conn:
            cur = conn.execute("DELETE FROM time_comments WHERE rowid = ?", (comment_id,))
            return cur.rowcount > 0

    def time_comment(self, comment_id: int) -> TimeComment | None:
        """One standalone comment, or None."""
        row = self.conn.execute("SELECT rowid, timestamp, comment FROM time_comments "
                                "WHERE rowid = ?", (comment_id,)).fetchone()
        return None if row is None else TimeComment(
            int(row[0]), _finite_or_nan(row[1]), str(row[2] if row[2] is not None else ""))

    def time_comments(self) -> list[TimeComment]:
        """Every standalone comment, oldest first. A timestamp that is no finite number
        (written by something else) reads as NaN, so the comment can still be seen
        and fixed."""
        return [TimeComment(int(i), _finite_or_nan(t), str(c if c is not None else ""))
                for i, t, c in self.conn.execute(
                    "SELECT rowid, timestamp, comment FROM time_comments "
                    "ORDER BY timestamp, rowid")]

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
            insert_run(conn, proposal, run, None)
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
