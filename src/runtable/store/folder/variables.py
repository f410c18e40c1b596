"""The ``variables`` table: the context file's variables, user-editable variables,
titles and places; deleting a variable everywhere."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Mapping
from typing import Any

from .. import schema
from ..columns import AFTER_ATTR, reorder_rows
from ..errors import (
    ValidationError,
)
from ..h5merge import remove_from_run_file
from ..table import VariableMeta
from ..uservars import check_name, check_type
from .core import FolderCore

log = logging.getLogger("runtable.store.folder")

RUN_FILE_RE = re.compile(r"^p\d+_r\d+\.h5$")


class FolderVariables(FolderCore):
    """Rows of the ``variables`` table and their tags."""

    def variables(self) -> dict[str, VariableMeta]:
        """All rows of the ``variables`` table, by name."""
        tags: dict[str, list[str]] = {}
        for var, tag in self.conn.execute(
            "SELECT variable_tags.variable_name, tags.name FROM variable_tags "
            "JOIN tags ON tags.id = variable_tags.tag_id ORDER BY tags.name"
        ):
            tags.setdefault(var, []).append(tag)
        return {
            name: VariableMeta(name, title, description, vtype,
                               json.loads(attrs) if attrs else None,
                               tuple(tags.get(name, ())))
            for name, vtype, title, description, attrs in self.conn.execute(
                "SELECT name, type, title, description, attributes FROM variables")
        }

    def titles(self) -> dict[str, str | None]:
        """name -> title of every row of the ``variables`` table."""
        return dict(self.conn.execute("SELECT name, title FROM variables"))

    def place_variable_after(self, name: str, after: str) -> None:
        """Show variable ``name`` right after column ``after`` (its
        :data:`~runtable.store.columns.AFTER_ATTR` attribute)."""
        with self.transaction() as conn:
            row = conn.execute("SELECT attributes FROM variables WHERE name = ?",
                               (name,)).fetchone()
            attrs = json.loads(row[0]) if row and row[0] else {}
            conn.execute("UPDATE variables SET attributes = ? WHERE name = ?",
                         (json.dumps({**attrs, AFTER_ATTR: after}), name))

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
            if _name_taken(conn, name):
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
                if _name_taken(conn, new_name):
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

    def _user_variable(self, name: str) -> VariableMeta:
        info = self.variables().get(name)
        if info is None or not info.user_editable:
            raise ValidationError(f"{name!r} is not a user-editable variable")
        return info

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


def _name_taken(conn: sqlite3.Connection, name: str) -> bool:
    """Whether a variable ``name`` is defined, or any run has a row for it (a computed
    variable no longer in the context file keeps its values)."""
    return conn.execute("SELECT 1 FROM variables WHERE name = ? UNION ALL "
                        "SELECT 1 FROM run_variables WHERE name = ? LIMIT 1",
                        (name, name)).fetchone() is not None
