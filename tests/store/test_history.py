"""Where a value came from and what it was before: the merge record, the value
history kept by triggers, standalone comments' edits, and which values are stale."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from runtable.context.cell import Cell
from runtable.execute.fragment import FragmentWriter
from runtable.jobs.errors import ProcessingCrashed
from runtable.store import DatabaseFolder
from runtable.store.contexts import keep_text, read_text
from runtable.store.history import cell_history, stale_runs, time_comment_history

from .conftest import PROPOSAL

SHA_A = "a" * 64
SHA_B = "b" * 64


def merge(db: DatabaseFolder, run: int, values: dict, *, sha: str | None = None,
          provenance: str = "context.py", env: dict | None = None,
          monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    if env and monkeypatch is not None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
    writer = FragmentWriter(db.extracted_dir, PROPOSAL, run, provenance, journal=False,
                            context_sha256=sha)
    writer.add("start_time", Cell(1.7e9 + run))
    for name, value in values.items():
        writer.add(name, value if isinstance(value, (Cell, BaseException)) else Cell(value))
    db.merge_fragment(writer.finish())


def test_a_reprocessed_value_keeps_the_one_before_with_each_ones_context_and_job(
        db: DatabaseFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    merge(db, 1, {"flux": 1.5, "label": "a"}, sha=SHA_A, monkeypatch=monkeypatch,
          env={"RUNTABLE_JOB_ID": "7", "RUNTABLE_EXECUTOR": "local"})
    merge(db, 1, {"flux": 2.5}, sha=SHA_B, monkeypatch=monkeypatch,
          env={"RUNTABLE_JOB_ID": "8", "RUNTABLE_EXECUTOR": "slurm", "SLURM_JOB_ID": "4711"})

    flux = cell_history(db, PROPOSAL, 1, "flux")
    assert [(e.kind, e.value, e.current) for e in flux] == [
        ("value", 1.5, False), ("value", 2.5, True)]
    assert [e.merge.context_sha256 for e in flux] == [SHA_A, SHA_B]
    assert flux[0].merge.source["job"] == 7 and flux[0].merge.source["executor"] == "local"
    assert flux[1].merge.source["slurm_job_id"] == "4711"
    assert flux[1].merge.job.startswith("job 8, Slurm job 4711 on ")
    assert flux[0].replaced_at == flux[1].written_at
    assert flux[0].merge.source["runtable"]
    # The value the reprocess did not touch has one version, from the first merge.
    label = cell_history(db, PROPOSAL, 1, "label")
    assert [(e.value, e.merge.context_sha256) for e in label] == [("a", SHA_A)]


def test_a_local_job_inside_a_slurm_allocation_does_not_claim_its_slurm_id(
        db: DatabaseFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    merge(db, 1, {"flux": 1.0}, monkeypatch=monkeypatch,
          env={"RUNTABLE_EXECUTOR": "local", "SLURM_JOB_ID": "99"})
    (entry,) = cell_history(db, PROPOSAL, 1, "flux")
    assert "slurm_job_id" not in entry.merge.source
    assert entry.merge.job.startswith("local pid ")


def test_errors_and_values_alternate_in_the_history(db: DatabaseFolder) -> None:
    merge(db, 2, {"flux": 3.0}, sha=SHA_A)
    merge(db, 2, {"flux": ZeroDivisionError("division by zero")}, sha=SHA_B)
    merge(db, 2, {"flux": 4.0}, sha=SHA_A)
    entries = cell_history(db, PROPOSAL, 2, "flux")
    assert [(e.kind, e.value, e.error) for e in entries] == [
        ("value", 3.0, None),
        ("error", None, ("ZeroDivisionError", "division by zero")),
        ("value", 4.0, None)]


def test_a_dying_jobs_note_on_a_kept_value_is_no_new_version(db: DatabaseFolder) -> None:
    merge(db, 3, {"flux": 3.0}, sha=SHA_A)
    merge(db, 3, {"flux": ProcessingCrashed("killed")}, sha=SHA_B)
    (entry,) = cell_history(db, PROPOSAL, 3, "flux")
    assert entry.value == 3.0 and entry.current
    assert entry.attributes["failed"]["error_cls"] == "ProcessingCrashed"
    assert entry.merge.context_sha256 == SHA_A


def test_comments_and_typed_values_keep_every_edit_and_clearing(db: DatabaseFolder) -> None:
    db.ensure_run(PROPOSAL, 4)
    db.set_comment(PROPOSAL, 4, "first")
    db.set_comment(PROPOSAL, 4, "second")
    db.set_comment(PROPOSAL, 4, None)
    db.set_comment(PROPOSAL, 4, "third")
    entries = cell_history(db, PROPOSAL, 4, "comment")
    assert [(e.kind, e.value) for e in entries] == [
        ("value", "first"), ("value", "second"), ("cleared", None), ("value", "third")]
    assert all(e.typed for e in entries if e.kind == "value")
    assert entries[2].written_at == entries[1].replaced_at
    assert entries[2].replaced_at == entries[3].written_at
    assert entries[0].merge is None

    db.add_user_variable("thickness", "number")
    db.set_user_value(PROPOSAL, 4, "thickness", "0.5")
    db.set_user_value(PROPOSAL, 4, "thickness", 0.25)
    db.change_user_variable("thickness", new_name="sample_thickness")
    assert [e.value for e in cell_history(db, PROPOSAL, 4, "sample_thickness")] == [0.5, 0.25]
    assert cell_history(db, PROPOSAL, 4, "thickness") == []
    db.set_user_value(PROPOSAL, 4, "sample_thickness", None)
    last = cell_history(db, PROPOSAL, 4, "sample_thickness")
    assert [e.kind for e in last] == ["value", "value", "cleared"]
    assert last[-1].replaced_at is None


def test_deleting_a_variable_deletes_its_history(db: DatabaseFolder) -> None:
    merge(db, 5, {"flux": 1.0, "other": 2.0}, sha=SHA_A)
    merge(db, 5, {"flux": 1.5, "other": 2.5}, sha=SHA_A)
    db.delete_variable("flux")
    assert cell_history(db, PROPOSAL, 5, "flux") == []
    assert len(cell_history(db, PROPOSAL, 5, "other")) == 2


def test_values_written_by_another_program_are_kept_without_a_merge(
        db: DatabaseFolder) -> None:
    merge(db, 6, {"flux": 1.0}, sha=SHA_A)
    # The reference's writer upserts rows with its own timestamp, knowing nothing of ours.
    conn = sqlite3.connect(db.db_path)
    with conn:
        conn.execute("UPDATE run_variables SET value = 9.0, timestamp = 1.0 "
                     "WHERE run = 6 AND name = 'flux'")
    conn.close()
    old, new = cell_history(db, PROPOSAL, 6, "flux")
    assert (old.value, old.merge.context_sha256) == (1.0, SHA_A)
    assert (new.value, new.merge) == (9.0, None)


def test_standalone_comments_keep_their_edits(db: DatabaseFolder) -> None:
    first = db.add_time_comment("beam down", 1.7e9)
    db.edit_time_comment(first, "beam down (vacuum)")
    db.edit_time_comment(first, "beam down (vacuum leak)")
    versions = time_comment_history(db, first)
    assert [v.comment for v in versions] == [
        "beam down", "beam down (vacuum)", "beam down (vacuum leak)"]
    assert versions[-1].replaced_at is None and versions[0].replaced_at is not None
    db.delete_time_comment(first)
    gone = time_comment_history(db, first)
    assert gone[-1].deleted and gone[-1].comment == "beam down (vacuum leak)"
    # SQLite may give the id to a new comment: the old one's edits are not its history.
    again = db.add_time_comment("new note", 1.8e9)
    if again == first:
        assert [v.comment for v in time_comment_history(db, again)] == ["new note"]


def test_a_value_is_stale_when_its_variables_code_changed_since(db: DatabaseFolder) -> None:
    keep_text(db.path, SHA_A, "text a", {"flux": "f1", "label": "l1", "gone": "g1"})
    keep_text(db.path, SHA_B, "text b", {"flux": "f2", "label": "l1"})
    merge(db, 1, {"flux": 1.0, "label": "x", "gone": 1}, sha=SHA_A)
    merge(db, 2, {"flux": 2.0, "label": "y"}, sha=SHA_B)
    merge(db, 3, {"flux": 3.0}, sha=None)  # no record of the text: never stale
    current = {"flux": "f2", "label": "l1"}
    assert stale_runs(db, current) == {"flux": [1]}
    assert stale_runs(db, {"flux": "f3", "label": "l1"}) == {"flux": [1, 2]}
    assert stale_runs(db, current, proposal=PROPOSAL + 1) == {}
    # Reprocessing run 1 with the current text makes it fresh.
    merge(db, 1, {"flux": 1.1}, sha=SHA_B)
    assert stale_runs(db, current) == {}
    assert cell_history(db, PROPOSAL, 1, "flux")[0].code_hash == "f1"
    assert cell_history(db, PROPOSAL, 1, "flux")[1].code_hash == "f2"


def test_kept_texts_are_written_once_and_named_by_their_content(tmp_path: Path) -> None:
    keep_text(tmp_path, SHA_A, "x = 1\r\n", {"a": "1"})
    keep_text(tmp_path, SHA_A, "something else", {"a": "2"})
    assert read_text(tmp_path, SHA_A) == "x = 1\r\n"
    meta = json.loads((tmp_path / "context_history/texts" / f"{SHA_A}.json").read_text())
    assert meta["code"] == {"a": "1"}
    assert read_text(tmp_path, "../../etc/passwd") is None
    with pytest.raises(ValueError):
        keep_text(tmp_path, "../x", "text")


def test_a_reference_folder_gains_the_history_tables_when_opened(vdb: DatabaseFolder) -> None:
    vdb.ensure_run(PROPOSAL, 40)
    vdb.set_comment(PROPOSAL, 40, "one")
    vdb.set_comment(PROPOSAL, 40, "two")
    assert [e.value for e in cell_history(vdb, PROPOSAL, 40, "comment")] == ["one", "two"]
