"""Merging result fragments into the per-run HDF5 file and ``runs.sqlite``.

A fragment ``extracted_data/p{prop}_r{run}.{id}.ready.h5`` is merged in four
steps, holding the folder's HDF5 lock:

1. *Ledger check.* If ``runtable_merged_fragments`` already lists this file
   name with the same size, the fragment was merged before: just delete it.
2. *HDF5.* Write the new per-run file to ``p{prop}_r{run}.h5.<hex>.merging.tmp``
   (old objects minus the ones the fragment replaces, plus the fragment's),
   fsync it, and ``os.replace`` it over the per-run file. If there was no
   per-run file, the fragment is hard-linked into place instead.
3. *SQLite,* one transaction: run_info row and start_time, one upserted
   ``run_variables`` row per summary or error, the ledger row, and the views
   if a new name appeared.
4. *Delete the fragment* (only now) and fsync the directory.

Comments and user-editable variables are never taken from a fragment, so
reprocessing cannot overwrite what people typed.

Crash windows (SIGKILL at any instant) and why each is safe:

* before or during step 2's temporary file: the per-run file is untouched (a
  leftover ``*.merging.tmp`` is removed at the next start), the database is
  untouched, the fragment is still there -> the next ``merge_pending`` redoes it.
* after ``os.replace``/link, before the commit: the per-run file already holds
  the fragment's objects, the database the old summaries; the fragment is still
  there, and redoing step 2 yields the same file (replacing objects with
  identical copies), so the retry converges. Readers may briefly see new HDF5
  data next to old summaries.
* during the transaction: SQLite rolls it back on the next open (WAL), as above.
* after the commit, before deleting the fragment: the ledger says merged, so
  the retry only deletes the fragment -- nothing is applied twice.
* after deleting the fragment: done.

Merging the same fragment twice is therefore a no-op (ledger), and even
without the ledger step 2 and 3 are idempotent upserts.

Two cases change step 2. Errors of a job that died (marked as job failures) do not
replace a value stored before: its objects stay, and step 3 notes the failure in the
row's attributes. A per-run file that cannot be read is renamed aside
(``….damaged-<time>``, never deleted) and rebuilt from the fragment and the database's
summaries; a crash between the rename and the rebuild leaves the run with the
fragment's objects only (the retry links it), the damaged file still beside it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from . import h5merge
from .fragments import FAILED_ATTR, FRAGMENT_RE, FragmentRows, attributes_json, fragment_rows
from .schema import insert_run
from .summaries import decode_summary

if TYPE_CHECKING:
    from .folder import DatabaseFolder

log = logging.getLogger(__name__)

#: Fault-injection hook for tests: called with the name of each step reached
#: ("read", "hdf5_copy", "hdf5_tmp_written", "hdf5_replaced", "db_written",
#: "db_committed", "fragment_removed"). Production code leaves it None.
checkpoint_hook: Callable[[str], None] | None = None


def _checkpoint(step: str) -> None:
    if checkpoint_hook is not None:
        checkpoint_hook(step)


@dataclass
class MergeResult:
    """What merging one fragment did (for notifying readers)."""

    fragment: Path
    proposal: int
    run: int
    #: Names whose database row was written (summaries and errors).
    names: list[str] = field(default_factory=list)
    #: True if the fragment had been merged before and was only removed.
    already_merged: bool = False
    #: Names the fragment carried but we refused (comment, user variables).
    protected: list[str] = field(default_factory=list)
    start_time: float | None = None
    #: Where the run's HDF5 file went when it was found damaged (and rebuilt).
    damaged: Path | None = None


_UPSERT = (
    "INSERT INTO run_variables(proposal, run, name, version, value, timestamp, max_diff, "
    "provenance, summary_type, summary_method, attributes) "
    "VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(proposal, run, name, version) DO UPDATE SET value = excluded.value, "
    "timestamp = excluded.timestamp, max_diff = excluded.max_diff, "
    "provenance = excluded.provenance, summary_type = excluded.summary_type, "
    "summary_method = excluded.summary_method, attributes = excluded.attributes"
)


def merge_fragment(db: DatabaseFolder, path: Path) -> MergeResult:
    """Merge one fragment into *db* (see the module docstring for the steps)."""
    with db.hdf5_lock():
        return _merge_locked(db, path)


def _merge_locked(db: DatabaseFolder, path: Path) -> MergeResult:
    contents = fragment_rows(path)
    size = path.stat().st_size
    result = MergeResult(path, contents.proposal, contents.run, start_time=contents.start_time)
    row = db.conn.execute(
        "SELECT size FROM runtable_merged_fragments WHERE name = ?", (path.name,)).fetchone()
    if row is not None and row[0] == size:
        result.already_merged = True
        path.unlink(missing_ok=True)
        h5merge.fsync_dir(path.parent)
        return result
    _checkpoint("read")

    protected = db.user_variable_names() | {"comment"}
    skip = contents.names & protected
    if skip:
        log.warning("%s: ignoring %s (comments and user-editable variables are only set "
                    "by people)", path.name, sorted(skip))
    result.protected = sorted(skip)
    # A job that died erases nothing: values stored before stay, with the failure noted.
    kept = _values_kept(db, contents, skip)
    dst = db.run_file(contents.proposal, contents.run)
    rebuilt: dict[str, dict] = {}
    try:
        h5merge.merge_into_run_file(
            path, dst, replace=contents.names - skip - kept.keys(), skip=skip | kept.keys(),
            checkpoint=_checkpoint,
        )
    except Exception:
        reason = h5merge.damage(dst)
        if reason is None:
            raise
        result.damaged, rebuilt = _rebuild(db, contents, path, dst, reason, skip | kept.keys())
    _checkpoint("hdf5_replaced")

    now = _merge_time(db, contents)
    rows = []
    for name, summary in contents.summaries.items():
        if name in skip or name in contents.fragment.errors:
            continue
        rows.append((contents.proposal, contents.run, name, summary.value, now,
                     summary.max_diff, contents.fragment.provenance, summary.summary_type,
                     summary.summary_method, attributes_json(summary.attributes)))
    for name, (cls, message) in contents.fragment.errors.items():
        if name in skip or name in kept or name == "start_time":
            continue
        rows.append((contents.proposal, contents.run, name, None, now, None,
                     contents.fragment.provenance, None, None,
                     json.dumps({"error": message, "error_cls": cls})))
    marked = []
    for name, attrs in kept.items():
        cls, message = contents.fragment.errors[name]
        marked.append((json.dumps({**attrs, FAILED_ATTR: {"error": message, "error_cls": cls}},
                                  sort_keys=True), contents.proposal, contents.run, name))
    for name, attrs in rebuilt.items():
        note = {"error": f"The run's HDF5 file was damaged and set aside as "
                         f"{result.damaged.name if result.damaged else '?'}; this "
                         "value's full data is in that file, and comes back when the "
                         "run is processed again", "error_cls": "DamagedFile"}
        marked.append((json.dumps({**attrs, FAILED_ATTR: note}, sort_keys=True),
                       contents.proposal, contents.run, name))
    result.names = sorted({r[2] for r in rows} | kept.keys() | rebuilt.keys())

    with db.transaction() as conn:
        insert_run(conn, contents.proposal, contents.run, None)
        if contents.start_time is not None:
            conn.execute("UPDATE run_info SET start_time = ? WHERE proposal = ? AND run = ?",
                         (contents.start_time, contents.proposal, contents.run))
        conn.executemany(_UPSERT, rows)
        conn.executemany("UPDATE run_variables SET attributes = ? WHERE proposal = ? AND "
                         "run = ? AND name = ?", marked)
        conn.execute(
            "INSERT INTO runtable_merges(proposal, run, merged_at, fragment, provenance, "
            "context_sha256, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (contents.proposal, contents.run, now, path.name, contents.fragment.provenance,
             contents.fragment.context_sha256, json.dumps(contents.fragment.source, sort_keys=True)
             if contents.fragment.source else None))
        conn.execute(
            "INSERT INTO runtable_merged_fragments(name, size, proposal, run, merged_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET size = excluded.size, "
            "merged_at = excluded.merged_at",
            (path.name, size, contents.proposal, contents.run, now))
        db._ensure_view_columns(set(result.names))
        _checkpoint("db_written")
    _checkpoint("db_committed")
    path.unlink()
    h5merge.fsync_dir(path.parent)
    _checkpoint("fragment_removed")
    return result


def _merge_time(db: DatabaseFolder, contents: FragmentRows) -> float:
    """Now, as the time of this merge: the rows it writes carry it as their
    ``timestamp``, which is how a value finds its merge (runtable.store.history), so
    two merges of one run never share it."""
    now = time.time()
    while db.conn.execute(
            "SELECT 1 FROM runtable_merges WHERE proposal = ? AND run = ? AND merged_at = ?",
            (contents.proposal, contents.run, now)).fetchone() is not None:
        now = math.nextafter(now, math.inf)
    return now


def _rebuild(db: DatabaseFolder, contents: FragmentRows, fragment: Path, dst: Path,
             reason: str, skip: set[str]) -> tuple[Path, dict[str, dict]]:
    """Set the damaged per-run file aside (never deleted) and write a new one: the
    fragment's objects and, for every other variable of the run, its summary (or
    error) from the database. Returns where the damaged file went and the attributes
    of the values whose full data stayed in it (to be marked on their cells)."""
    aside = h5merge.set_aside(dst)
    log.error("%s could not be read (%s); it was set aside as %s, and the run's file is "
              "rebuilt from the database and %s", dst.name, reason, aside.name,
              fragment.name)
    protected = db.user_variable_names() | {"comment"}
    applied = contents.names - skip
    rows = [r for r in db.conn.execute(
        "SELECT name, value, summary_type, attributes FROM run_variables WHERE "
        "proposal = ? AND run = ?", (contents.proposal, contents.run))
        if r[0] not in applied and r[0] not in protected]
    lost: dict[str, dict] = {}

    def restore(out: h5py.File) -> None:
        for name, value, summary_type, attributes in rows:
            try:
                attrs = json.loads(attributes) if attributes else {}
            except ValueError:
                attrs = {}
            attrs = attrs if isinstance(attrs, dict) else {}
            if value is None and "error" in attrs:
                group = out.require_group(".errors")
                if name not in group:
                    ds = group.create_dataset(name, data=str(attrs["error"]),
                                              dtype=h5py.string_dtype())
                    ds.attrs["type"] = str(attrs.get("error_cls") or "Exception")
                continue
            lost[name] = attrs
            summary = decode_summary(value, summary_type)
            group = out.require_group(".reduced")
            if summary is None or name in group:
                continue
            if isinstance(summary, str):
                group.create_dataset(name, data=summary, dtype=h5py.string_dtype())
            elif isinstance(summary, bytes):
                group.create_dataset(name, data=np.frombuffer(summary, dtype=np.uint8))
            else:
                group.create_dataset(name, data=np.asarray(summary))

    h5merge.merge_into_run_file(fragment, dst, replace=set(), skip=skip, extra=restore)
    return aside, lost


def _values_kept(db: DatabaseFolder, contents: FragmentRows,
                 skip: set[str]) -> dict[str, dict]:
    """The job failures of ``contents`` whose variable holds a value (not an error)
    now, with that row's attributes: these values stay."""
    names = sorted(contents.fragment.job_failures & contents.fragment.errors.keys() - skip)
    if not names:
        return {}
    kept = {}
    for name, value, attributes in db.conn.execute(
            f"SELECT name, value, attributes FROM run_variables WHERE proposal = ? AND "
            f"run = ? AND name IN ({','.join('?' * len(names))})",
            (contents.proposal, contents.run, *names)):
        try:
            attrs = json.loads(attributes) if attributes else {}
        except ValueError:
            attrs = {}
        if not isinstance(attrs, dict):
            attrs = {}
        if value is None and "error" in attrs:
            continue  # an error before: the new one replaces it
        kept[name] = attrs
    return kept


def pending_fragments(db: DatabaseFolder) -> list[Path]:
    """Ready fragments waiting in ``extracted_data``, oldest first."""
    if not db.extracted_dir.is_dir():
        return []
    found = []
    for path in db.extracted_dir.iterdir():
        if FRAGMENT_RE.match(path.name):
            try:
                found.append((path.stat().st_mtime, path.name, path))
            except FileNotFoundError:  # merged by someone else meanwhile
                continue
    return [p for _, _, p in sorted(found)]


#: Margin over the longest job time limit after which a partial fragment is stale.
PARTIAL_MARGIN_S = 600.0


def remove_stale_partials(db: DatabaseFolder, max_job_s: float) -> list[Path]:
    """Remove fragments still being written (``*.writing.h5`` and their journals) by
    jobs that cannot be alive any more: untouched for longer than the longest job may
    run (``max_job_s``) plus a margin. A live job's file (a Slurm job may outlive the
    service) is younger than that."""
    if not db.extracted_dir.is_dir():
        return []
    cutoff = time.time() - max_job_s - PARTIAL_MARGIN_S
    removed = []
    for path in db.extracted_dir.iterdir():
        if not (path.name.endswith(".writing.h5") or path.name.endswith(".writing.h5.done")):
            continue
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue
    if removed:
        log.info("Removed %d partial result file(s) of jobs that died long ago",
                 len(removed))
    return removed


def merge_pending(db: DatabaseFolder, max_job_s: float | None = None) -> list[MergeResult]:
    """Finish what a crash interrupted, then merge all waiting fragments.

    A fragment that cannot be merged is logged and left in place (so nothing
    is lost); the others are still merged. With ``max_job_s`` (the longest a job
    may run), partial fragments of jobs long dead are removed too.
    """
    with db.hdf5_lock():
        db.clean_temporary_files()
        if max_job_s is not None:
            remove_stale_partials(db, max_job_s)
    db.finish_pending_deletions()
    results = []
    for path in pending_fragments(db):
        try:
            results.append(merge_fragment(db, path))
        except FileNotFoundError:
            continue
        except Exception:
            log.exception("Could not merge %s; leaving it for a later attempt", path)
    return results

