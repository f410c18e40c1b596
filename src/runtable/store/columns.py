"""The order of the run table's columns: one rule for the web GUI, ``runtable table``,
exports and ``Database.table()``.

1. Variables of the context file in the order of the ``variables`` table's rows, which
   the writer keeps in the context file's order (:func:`reorder_rows`; the reference's
   readers, its web viewer included, order columns by these rows too);
2. names with values but no ``variables`` row (folders written by other tools), sorted;
3. each user-editable variable right after the column its ``runtable_after`` attribute
   names (``"comment"``: first), else last;
4. columns whose titles share a leading ``/`` part (``"XGM/Flux"``, ``"XGM/Energy"``)
   kept together, where the first of them is, level by level, so a grouped header
   is never split.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

#: The attribute of a user-editable variable naming the column it follows.
AFTER_ATTR = "runtable_after"
#: Names that are fields of a run, not variables.
RUN_FIELDS = frozenset({"comment", "start_time", "added_at", "proposal", "run"})

T = TypeVar("T")


class VariableRow(Protocol):
    """What the order needs of a row of the ``variables`` table (read-only, so that
    frozen dataclasses match)."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def attributes(self) -> dict[str, Any] | None: ...
    @property
    def user_editable(self) -> bool: ...


def column_order(variables: Iterable[VariableRow], data_names: Iterable[str]) -> list[str]:
    """Names of the table's variable columns in display order (rules above);
    ``variables`` in row order, ``data_names`` every name that has values."""
    computed: list[str] = []
    user: list[tuple[str, Any]] = []
    titles: dict[str, str] = {}
    for var in variables:
        titles[var.name] = var.title or var.name
        if var.name in RUN_FIELDS:
            continue
        if var.user_editable:
            user.append((var.name, (var.attributes or {}).get(AFTER_ATTR)))
        else:
            computed.append(var.name)
    order = computed + sorted(set(data_names) - set(titles) - RUN_FIELDS)
    pending = user
    # Anchors may themselves be user variables: place what can be placed, repeat.
    while pending:
        left = []
        for name, after in pending:
            if after == "comment":
                order.insert(0, name)
            elif after is not None and after in order:
                order.insert(order.index(after) + 1, name)
            else:
                left.append((name, after))
        if len(left) == len(pending):
            order.extend(n for n, _ in left)  # anchors gone (or none): last, in row order
            break
        pending = left
    return keep_groups_together(order, lambda n: titles.get(n, n))


def keep_groups_together(items: Sequence[T], title: Callable[[T], str]) -> list[T]:
    """``items`` with those whose titles share leading ``/`` parts moved next to the
    first of them, level by level; otherwise in their order."""
    return _grouped(list(items), [title(i).split("/") for i in items], 0)


def _grouped(items: list[T], paths: list[list[str]], depth: int) -> list[T]:
    buckets: dict[tuple[str, Any], list[int]] = {}
    for i, path in enumerate(paths):
        key = ("leaf", i) if len(path) - 1 <= depth else ("group", path[depth])
        buckets.setdefault(key, []).append(i)
    out: list[T] = []
    for (kind, _), members in buckets.items():
        if kind == "leaf" or len(members) == 1:
            out.extend(items[i] for i in members)
        else:
            out.extend(_grouped([items[i] for i in members], [paths[i] for i in members],
                                depth + 1))
    return out


def reorder_rows(conn: sqlite3.Connection, file_order: Sequence[str]) -> bool:
    """Renumber the ``variables`` table's rows so the context file's variables come in
    ``file_order`` (inside the caller's transaction). Rows that are not in the file
    (user-editable variables, variables since removed) stay after the row they
    followed. Returns whether anything moved."""
    rows = [name for (name,) in conn.execute("SELECT name FROM variables ORDER BY rowid")]
    present = set(rows)
    in_file = [n for n in dict.fromkeys(file_order) if n in present]
    wanted = set(in_file)
    # Each other row is anchored to the nearest file variable before it.
    after: dict[str | None, list[str]] = {}
    anchor: str | None = None
    for name in rows:
        if name in wanted:
            anchor = name
        else:
            after.setdefault(anchor, []).append(name)
    order = list(after.get(None, []))
    for name in in_file:
        order.append(name)
        order.extend(after.get(name, []))
    if order == rows:
        return False
    # Through negative rowids, so no new rowid collides with an old one.
    conn.executemany("UPDATE variables SET rowid = ? WHERE name = ?",
                     [(-(i + 1), name) for i, name in enumerate(order)])
    conn.execute("UPDATE variables SET rowid = -rowid")
    return True
