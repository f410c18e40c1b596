"""The database folder: SQLite schema and migrations, per-run HDF5 files,
merging result fragments, settings.

A folder holds ``runs.sqlite`` (the reference system's data format v4),
``context.py``, ``extracted_data/p<proposal>_r<run>.h5`` (one HDF5 file per run)
and ``process_logs/``. Jobs never write these directly: each execution leaves a
*fragment* ``extracted_data/p<proposal>_r<run>.<id>.ready.h5`` that the single
writing process merges (:meth:`DatabaseFolder.merge_fragment`) into the per-run
file and the database. Merging is idempotent and crash-safe; see
:mod:`runtable.store.merge`.

Public surface::

    create_folder(path, proposal, context_text=None) -> DatabaseFolder
    open_db(path, readonly=False) -> DatabaseFolder   # same as DatabaseFolder(...)
    merge_pending(db_dir) -> list[MergeResult]        # open, recover, merge, close

    db = open_db(path)
    db.merge_fragment(fragment_path) -> MergeResult
    db.merge_pending() -> list[MergeResult]
    db.run_file(proposal, run) -> Path
    db.ensure_run(proposal, run, added_at=None); db.runs(); db.started_runs()
    db.run_started(proposal, run); db.run_proposals(run)
    db.get_value(proposal, run, name, as_written=False); db.get_attributes(proposal, run, name)
    db.has_values(name); db.runs_with_values(proposal, names)
    db.names_with_values(proposal, run, names); db.thumbnail(proposal, run, name)
    db.change_seq(); db.runs_changed_since(seq)
    db.set_comment(proposal, run, text)
    db.add_time_comment(text, timestamp=None) -> id
    db.edit_time_comment(id, text, timestamp=None, base=UNCHECKED)
    db.delete_time_comment(id) -> bool; db.time_comment(id); db.time_comments()
    db.add_user_variable(name, type, title=None, description=None)
    db.change_user_variable(name, new_name=None, title=None, description=None)
    db.set_user_value(proposal, run, name, value)     # validated per type
    db.update_computed_variables({name: {title, description, tags, attributes}})
    db.delete_variable(name); db.variables() -> {name: VariableMeta}; db.titles()
    db.place_variable_after(name, after)
    db.get_setting(key); db.set_setting(key, value); db.delete_setting(key)
    db.settings(); db.stored_settings(); db.new_db_id(); db.proposal; db.db_id
    db.integrity_check() -> 'ok'
    db.conn                                           # sqlite3 connection, the store's own
    read_table(db, runs=None, names=None) -> TableColumns   # the run table, columnar
    table.refresh(db) -> TableChanges                 # only what changed since
    tablecopy.schedule(db_path, directory)            # the columnar copy, after commits
    tablecopy.settle(directory)                       # ... once its updates are done
    open_db(path, defer_slow_upgrade=True); db.finish_upgrade()   # first start, fast
    with db.transaction() as conn: ...                # one write transaction
    with become_writer(path, "runtable reprocess"):   # the folder's one writer (OS lock)
    current_writer(path) -> WriterInfo | None         # who writes it now
    db.close()                                        # or use `with open_db(...) as db:`
    read_cell(db, proposal, run, name, path=, slice=, region=, max_points=,
              max_pixels=, preview=) -> CellData      # one cell's full data, read lazily

Threads: a DatabaseFolder serialises its own writes, but its ``conn`` sees
its own uncommitted transaction; give each reading thread its own
``open_db(path, readonly=True)``. Readers never block the writer (WAL mode),
and a folder that cannot be written is still readable.

Layout of our own additions (ignored by the reference's readers): tables
``runtable_merged_fragments`` (merge ledger), ``runtable_pending_deletions``,
``runtable_run_changes`` (change log kept by ``runtable_log_*`` triggers on
``run_variables`` and ``run_info``, read by :mod:`runtable.store.table`),
index ``runtable_run_variables_name`` and metameta keys ``runtable_schema_version``,
``ready_quiet_s``, ``executor`` and ``job_time_limit_s``; and the folder ``table_copy/``,
the table's summaries as Arrow files kept by the writer (derived data,
:mod:`runtable.store.tablecopy`).

Known settings with descriptions: :data:`SETTINGS`. Summary value encodings:
:func:`encode_summary`, :func:`decode_summary`.
"""

from .celldata import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_POINTS,
    BadCellQuery,
    CellData,
    CellDataError,
    CellNotFound,
    TooMuchData,
    read_cell,
)
from .errors import (
    DamagedDatabase,
    EditConflict,
    ReadOnlyError,
    StoreError,
    UnsupportedVersionError,
    ValidationError,
)
from .folder import DatabaseFolder, TimeComment, create_folder, open_db
from .folder import merge_pending_in as merge_pending
from .merge import MergeResult
from .schema import LATEST_VERSION
from .settings import SETTINGS, Setting
from .summaries import decode_summary, encode_summary
from .table import TableChanges, TableColumns, VariableMeta, read_table
from .uservars import USER_TYPES
from .writer import FolderBusy, WriterInfo, WriterLock, become_writer, current_writer

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_POINTS",
    "LATEST_VERSION",
    "SETTINGS",
    "USER_TYPES",
    "BadCellQuery",
    "CellData",
    "CellDataError",
    "CellNotFound",
    "DamagedDatabase",
    "DatabaseFolder",
    "EditConflict",
    "FolderBusy",
    "MergeResult",
    "ReadOnlyError",
    "Setting",
    "StoreError",
    "TableChanges",
    "TableColumns",
    "TimeComment",
    "TooMuchData",
    "UnsupportedVersionError",
    "ValidationError",
    "VariableMeta",
    "WriterInfo",
    "WriterLock",
    "become_writer",
    "create_folder",
    "current_writer",
    "decode_summary",
    "encode_summary",
    "merge_pending",
    "open_db",
    "read_cell",
    "read_table",
]
