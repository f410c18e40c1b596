"""Databases as the reference system leaves them at each data format version,
built by hand from its documented schema (behaviour §3) -- not with our own
migrations, so the upgrade path is tested against an independent picture."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import numpy as np

PROPOSAL = 1234

V1 = """
CREATE TABLE run_info(proposal, run, start_time, added_at);
CREATE UNIQUE INDEX proposal_run ON run_info (proposal, run);
CREATE TABLE run_variables(proposal, run, name, version, value, timestamp, max_diff,
    provenance, summary_type, summary_method);
CREATE UNIQUE INDEX variable_version ON run_variables (proposal, run, name, version);
CREATE TABLE metameta(key PRIMARY KEY NOT NULL, value);
CREATE TABLE variables(name TEXT PRIMARY KEY NOT NULL, type TEXT, title TEXT,
    description TEXT, attributes TEXT);
CREATE TABLE time_comments(timestamp, comment);
CREATE VIEW runs AS SELECT * FROM run_info;
CREATE VIEW max_diffs AS SELECT proposal, run FROM run_info;
"""
V2 = "ALTER TABLE run_variables ADD COLUMN attributes;"
V3 = """
CREATE TABLE tags(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL);
CREATE TABLE variable_tags(
    variable_name TEXT REFERENCES variables(name) ON DELETE CASCADE,
    tag_id INTEGER REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (variable_name, tag_id));
"""
V4 = """
CREATE TRIGGER delete_orphan_tags_after_variable_tag_delete AFTER DELETE ON variable_tags
BEGIN DELETE FROM tags WHERE id = OLD.tag_id
    AND NOT EXISTS (SELECT 1 FROM variable_tags WHERE tag_id = OLD.tag_id); END;
"""

ARRAY = np.arange(6.0).reshape(2, 3)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def make_reference_db(folder: Path, version: int) -> Path:
    """A folder with a reference-style runs.sqlite at *version* (1-4) holding
    two runs, a numeric, an array, a comment, a user variable and a time comment."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "extracted_data").mkdir(exist_ok=True)
    path = folder / "runs.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(V1)
    if version >= 2:
        conn.executescript(V2)
    if version >= 3:
        conn.executescript(V3)
    if version >= 4:
        conn.executescript(V4)
    conn.executemany("INSERT INTO metameta VALUES (?, ?)", [
        ("data_format_version", version), ("proposal", PROPOSAL), ("db_id", "ab" * 20),
        ("concurrent_jobs", 15), ("context_python", "/usr/bin/python3")])
    conn.executemany("INSERT INTO run_info VALUES (?, ?, ?, ?)", [
        (PROPOSAL, 1, 1700000000.0, 1700000100.0), (PROPOSAL, 2, 1700000500.0, 1700000600.0)])
    rows = [
        (PROPOSAL, 1, "x", 1, 1.5, 1700000200.0, None, "context.py", None, None),
        (PROPOSAL, 2, "x", 1, 2.5, 1700000700.0, None, "context.py", None, None),
        (PROPOSAL, 1, "arr", 1, _npy(ARRAY), 1700000200.0, 5.0, "context.py", "numpy", None),
        (PROPOSAL, 1, "comment", 1, "first run", 1700000300.0, None, "", None, None),
        (PROPOSAL, 2, "note", 1, "typed", 1700000800.0, None, "", None, None),
    ]
    conn.executemany("INSERT INTO run_variables(proposal, run, name, version, value, timestamp, "
                     "max_diff, provenance, summary_type, summary_method) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    if version >= 2:
        conn.execute("UPDATE run_variables SET attributes = ? WHERE name = 'x' AND run = 1",
                     (json.dumps({"units": "mm"}),))
    conn.executemany("INSERT INTO variables VALUES (?, ?, ?, ?, ?)", [
        ("x", None, "X value", "The x", None), ("arr", None, "Array", None, None),
        ("note", "string", "Note", None, None)])
    conn.execute("INSERT INTO time_comments VALUES (1700000400.0, 'beam down')")
    if version >= 3:
        conn.execute("INSERT INTO tags(name) VALUES ('motor')")
        conn.execute("INSERT INTO variable_tags VALUES ('x', 1)")
    conn.commit()
    conn.close()
    return folder


def make_v0_db(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(folder / "runs.sqlite")
    conn.execute("CREATE TABLE runs(proposal, runnr, start_time, added_at, comment, x)")
    conn.execute("INSERT INTO runs VALUES (1234, 1, 0, 0, 'hi', 3)")
    conn.execute("CREATE TABLE metameta(key PRIMARY KEY NOT NULL, value)")
    conn.commit()
    conn.close()
    return folder
