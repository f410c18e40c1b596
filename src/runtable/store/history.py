"""Where a value came from, and what it was before.

Three records, all in runtable's own tables and files (the reference's readers never
look at them; see :mod:`runtable.store.schema`):

- ``runtable_merges``: one row per merged fragment: when, the fragment, the job that
  wrote it and where it ran (``source``, :func:`runtable.execute.source.job_source`),
  and the SHA-256 of the context text that computed it;
- ``runtable_value_history``: every row of ``run_variables`` as it was before it was
  replaced or deleted, copied by triggers (so comments and user-typed values too, and
  whatever another program writes);
- ``context_history/texts/``: the texts themselves and their variables' code hashes
  (:mod:`runtable.store.contexts`).

A value finds its merge by ``(proposal, run, timestamp)``: a merge writes its rows with
its own ``merged_at`` as their timestamp. Only summaries are kept, never the previous
full data in the per-run HDF5 file (docs/adr/010-value-history.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .contexts import read_meta
from .summaries import decode_summary

if TYPE_CHECKING:
    from .folder import DatabaseFolder

#: ``run_variables.provenance`` of values typed by a person (runtable.store.folder).
_USER = ""


@dataclass(frozen=True)
class MergeInfo:
    """One merged fragment: what wrote it, where, and from which context text."""

    id: int
    merged_at: float
    fragment: str | None
    provenance: str | None
    context_sha256: str | None
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def job(self) -> str:
        """Which job wrote it, in words: ``"job 12, Slurm job 345 on node7"``,
        ``"job 3, local pid 811 on host"``; empty when nothing is known."""
        s = self.source
        if not s:
            return ""
        parts = []
        if s.get("job") is not None:
            parts.append(f"job {s['job']}")
        if s.get("slurm_array_job_id") and s.get("slurm_array_task_id"):
            parts.append(f"Slurm job {s['slurm_array_job_id']}_{s['slurm_array_task_id']}")
        elif s.get("slurm_job_id"):
            parts.append(f"Slurm job {s['slurm_job_id']}")
        elif s.get("pid") is not None:
            parts.append(f"{s.get('executor') or 'process'} pid {s['pid']}")
        where = f" on {s['host']}" if s.get("host") else ""
        return ", ".join(parts) + where


@dataclass(frozen=True)
class HistoryEntry:
    """One version of a cell, oldest first in :func:`cell_history`.

    ``kind``: ``"value"``, ``"error"`` (``value`` is None, ``error`` = (class,
    message)) or ``"cleared"`` (the row was deleted, e.g. a comment emptied, until
    ``replaced_at``). ``written_at``: when it was stored; ``replaced_at``: when the
    next version (or the deletion) replaced it, None for the current one.
    ``provenance``: ``run_variables.provenance`` (``"context.py"``, ``"external"``,
    ``""`` for a person). ``merge``: the merge that wrote it, when it came from a
    fragment runtable merged. ``code_hash``: the hash of the variable's code in that
    merge's context text (None when not known).
    """

    kind: str
    value: Any
    written_at: float | None
    replaced_at: float | None
    current: bool
    provenance: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error: tuple[str, str] | None = None
    merge: MergeInfo | None = None
    code_hash: str | None = None
    #: How ``value`` was stored (runtable.store.summaries): ``trendline``, ``numpy``...
    summary_type: str | None = None

    @property
    def typed(self) -> bool:
        """Whether a person typed it (a comment or a user-editable value)."""
        return self.provenance == _USER and self.kind != "cleared"

    @property
    def origin(self) -> str:
        """Where the value came from, in words: ``context file``, ``typed``,
        ``external`` (runtable.external), ``job failure``, ``another program`` (no
        merge of ours wrote it), or empty for a clearing."""
        if self.kind == "cleared":
            return ""
        if self.typed:
            return "typed"
        if self.merge is None:
            return "another program"
        provenance = self.provenance or ""
        if provenance == "context.py":
            return "context file"
        return {"runtable.jobs": "job failure"}.get(provenance, provenance)

    def row(self) -> dict[str, Any]:
        """The entry as one flat record (for a DataFrame, JSON or a terminal table)."""
        merge = self.merge
        source = merge.source if merge is not None else {}
        return {
            "kind": self.kind, "value": self.value,
            "error_cls": self.error[0] if self.error else None,
            "error": self.error[1] if self.error else None,
            "written_at": self.written_at, "replaced_at": self.replaced_at,
            "current": self.current, "origin": self.origin,
            "context_sha256": merge.context_sha256 if merge is not None else None,
            "code_hash": self.code_hash,
            "job": merge.job if merge is not None else "",
            "job_id": source.get("job"), "executor": source.get("executor"),
            "slurm_job_id": source.get("slurm_job_id"), "host": source.get("host"),
            "user": source.get("user"), "runtable": source.get("runtable"),
            "fragment": merge.fragment if merge is not None else None,
        }


_COLUMNS = "value, summary_type, timestamp, provenance, attributes"
#: The fields of :meth:`HistoryEntry.row`, in order.
ROW_FIELDS = ("kind", "value", "error_cls", "error", "written_at", "replaced_at", "current",
              "origin", "context_sha256", "code_hash", "job", "job_id", "executor",
              "slurm_job_id", "host", "user", "runtable", "fragment")


def cell_history(db: DatabaseFolder, proposal: int, run: int, name: str) -> list[HistoryEntry]:
    """Every version of one cell that was kept, oldest first, the current one last
    (if the cell has a value now)."""
    rows = [(*r, False) for r in db.conn.execute(
        f"SELECT {_COLUMNS}, replaced_at FROM runtable_value_history "
        "WHERE proposal = ? AND run = ? AND name = ? ORDER BY timestamp, rowid",
        (proposal, run, name))]
    current = db.conn.execute(
        f"SELECT {_COLUMNS} FROM run_variables WHERE proposal = ? AND run = ? AND name = ? "
        "ORDER BY version DESC LIMIT 1", (proposal, run, name)).fetchone()
    if current is not None:
        rows.append((*current, None, True))
    merges = _merges(db, proposal, run)
    codes = _CodeMaps(db)
    out: list[HistoryEntry] = []
    for i, (value, summary_type, written, provenance, attributes, replaced, is_current) \
            in enumerate(rows):
        merge = merges.get(written) if provenance != _USER else None
        attrs = _json_object(attributes)
        error = None
        if value is None and "error" in attrs:
            kind = "error"
            error = (str(attrs.get("error_cls") or "Exception"), str(attrs["error"]))
        else:
            kind = "value"
        out.append(HistoryEntry(
            kind, _decoded(value, summary_type), written, replaced, is_current, provenance,
            attrs, error, merge, codes.code(merge, name), summary_type))
        # A gap between this version's end and the next one's start: the row was
        # deleted meanwhile (or for good, when nothing follows).
        following = rows[i + 1][2] if i + 1 < len(rows) else None
        if not is_current and replaced is not None and (following is None or
                                                        following > replaced):
            out.append(HistoryEntry("cleared", None, replaced, following, False))
    return out


def stale_runs(db: DatabaseFolder, current_code: Mapping[str, str],
               proposal: int | None = None,
               runs: Collection[int] | None = None) -> dict[str, list[int]]:
    """``{name: [runs]}``: cells whose value was computed by a context text in which the
    variable's code (or a dependency's) differs from ``current_code``; only of ``runs``
    when given. Values without a recorded context text are never stale."""
    codes = _CodeMaps(db)
    found: dict[str, set[int]] = {}
    for (sha,) in db.conn.execute(
            "SELECT DISTINCT context_sha256 FROM runtable_merges "
            "WHERE context_sha256 IS NOT NULL"):
        then = codes.of(sha)
        if then is None:
            continue
        changed = sorted(n for n, h in then.items()
                         if n in current_code and current_code[n] != h)
        if not changed:
            continue
        marks = ",".join("?" * len(changed))
        where = "" if proposal is None else " AND m.proposal = ?"
        params: list[Any] = [sha, *changed] + ([proposal] if proposal is not None else [])
        if runs is not None:
            where += f" AND m.run IN ({','.join('?' * len(runs))})"
            params += list(runs)
        # From each merge to its run's cells by DAMNIT's unique index (CROSS JOIN keeps
        # that order; ``+`` drops the merge columns' INTEGER affinity, which would keep
        # SQLite off that index of untyped columns), never from a name to all its runs.
        for run, name in db.conn.execute(
                "SELECT rv.run, rv.name FROM runtable_merges AS m "
                "CROSS JOIN run_variables AS rv ON rv.proposal = +m.proposal "
                "AND rv.run = +m.run AND rv.timestamp = m.merged_at "
                f"WHERE m.context_sha256 = ? AND rv.name IN ({marks}){where}", params):
            found.setdefault(name, set()).add(int(run))
    return {name: sorted(runs) for name, runs in sorted(found.items())}


@dataclass(frozen=True)
class TimeCommentVersion:
    """A standalone comment as it was: its text and time until ``replaced_at``
    (None: it is so now); ``deleted``: this was its last text before it was deleted."""

    comment: str
    timestamp: float | None
    replaced_at: float | None
    deleted: bool = False


def time_comment_history(db: DatabaseFolder, comment_id: int) -> list[TimeCommentVersion]:
    """The texts a standalone comment had, oldest first, the current one last."""
    rows = db.conn.execute(
        "SELECT comment, timestamp, replaced_at, deleted FROM runtable_time_comment_history "
        "WHERE comment_id = ? ORDER BY replaced_at, rowid", (comment_id,)).fetchall()
    current = db.conn.execute("SELECT comment, timestamp FROM time_comments WHERE rowid = ?",
                              (comment_id,)).fetchone()
    if current is not None:
        # A deleted comment's id may be given again to a new one: not its history.
        last_deletion = max((i for i, r in enumerate(rows) if r[3]), default=-1)
        rows = rows[last_deletion + 1:]
    out = [TimeCommentVersion(str(c if c is not None else ""), _number(t), _number(r),
                              bool(d)) for c, t, r, d in rows]
    if current is not None:
        out.append(TimeCommentVersion(str(current[0] if current[0] is not None else ""),
                                      _number(current[1]), None))
    return out


# -- helpers ----------------------------------------------------------------------------
def _merges(db: DatabaseFolder, proposal: int, run: int) -> dict[float, MergeInfo]:
    return {merged_at: MergeInfo(int(mid), merged_at, fragment, provenance, sha,
                                 _json_object(source))
            for mid, merged_at, fragment, provenance, sha, source in db.conn.execute(
                "SELECT id, merged_at, fragment, provenance, context_sha256, source "
                "FROM runtable_merges WHERE proposal = ? AND run = ?", (proposal, run))}


class _CodeMaps:
    """The variables' code hashes of kept context texts, read once each."""

    def __init__(self, db: DatabaseFolder) -> None:
        self._path = db.path
        self._maps: dict[str, dict[str, str] | None] = {}

    def of(self, sha: str) -> dict[str, str] | None:
        if sha not in self._maps:
            meta = read_meta(self._path, sha)
            self._maps[sha] = {str(k): str(v) for k, v in meta["code"].items()} \
                if meta is not None else None
        return self._maps[sha]

    def code(self, merge: MergeInfo | None, name: str) -> str | None:
        if merge is None or merge.context_sha256 is None:
            return None
        return (self.of(merge.context_sha256) or {}).get(name)


def _decoded(value: Any, summary_type: str | None) -> Any:
    try:
        return decode_summary(value, summary_type)
    except Exception:  # written by another program in a form we don't know
        return value


def _json_object(text: Any) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
