"""`runtable history` and `VariableData.history()` after real reprocessing of real mock
runs: a context change, a reprocess, and both values with the texts that computed
them."""

from __future__ import annotations

import json
from pathlib import Path

from runtable.api import Database
from runtable.context.codehash import text_sha256
from runtable.store import create_folder
from runtable.store.contexts import read_meta, read_text
from runtable.testing import MockProposal

from .cli_helpers import run_cli

CONTEXT_V1 = '''
from damnit_ctx import Variable

@Variable(title="Trains")
def n_trains(run):
    return len(run.train_ids)

@Variable(title="Scaled trains")
def scaled(run, n: "var#n_trains"):
    return n * 2

@Variable(title="Label")
def label(run, n: "meta#run_number"):
    return f"run {n}"
'''
CONTEXT_V2 = CONTEXT_V1.replace("return n * 2", "return n * 3")


def test_a_reprocess_after_a_context_change_shows_both_values_with_their_texts(
        tmp_path: Path, data_root: MockProposal) -> None:
    folder = tmp_path / "amore"
    create_folder(folder, data_root.proposal, CONTEXT_V1).close()
    first = run_cli("reprocess", "1", "--in", folder, data_root=data_root.root)
    assert first.returncode == 0, first.stderr
    (folder / "context.py").write_text(CONTEXT_V2)

    # Before reprocessing, the table's value was computed by code that changed since.
    shown = run_cli("history", "1", "Scaled trains", "--in", folder, data_root=data_root.root)
    assert shown.returncode == 0, shown.stderr
    assert "1 version" in shown.stdout and "Stale:" in shown.stdout, shown.stdout
    assert "reprocess 1 --var scaled" in " ".join(shown.stdout.split())
    # A variable whose code did not change is not stale.
    label = run_cli("history", "1", "label", "--in", folder, data_root=data_root.root)
    assert "Stale" not in label.stdout, label.stdout

    second = run_cli("reprocess", "1", "--in", folder, data_root=data_root.root)
    assert second.returncode == 0, second.stderr

    sha1, sha2 = text_sha256(CONTEXT_V1), text_sha256(CONTEXT_V2)
    shown = run_cli("history", "1", "scaled", "--in", folder, "--json",
                    data_root=data_root.root)
    assert shown.returncode == 0, shown.stderr
    entries = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [(e["value"], e["context_sha256"], e["current"]) for e in entries] == [
        (128, sha1, False), (192, sha2, True)]
    assert all(e["origin"] == "context file" and e["executor"] == "local" for e in entries)
    assert all(e["host"] and e["runtable"] for e in entries)
    assert entries[0]["replaced_at"] == entries[1]["written_at"]
    assert entries[0]["code_hash"] != entries[1]["code_hash"]

    # Both texts that ran are kept, with their variables' code hashes.
    assert read_text(folder, sha1) == CONTEXT_V1 and read_text(folder, sha2) == CONTEXT_V2
    code1, code2 = read_meta(folder, sha1)["code"], read_meta(folder, sha2)["code"]
    assert code1["n_trains"] == code2["n_trains"] and code1["label"] == code2["label"]
    assert code1["scaled"] != code2["scaled"]

    # The read API tells the same, with times in the folder's zone.
    with Database(folder, cache=False) as db:
        df = db[1, "Scaled trains"].history()
    assert list(df["value"]) == [128, 192]
    assert list(df["context_sha256"]) == [sha1, sha2]
    assert str(df["written_at"].dt.tz) == "Europe/Berlin"
    assert df["replaced_at"].isna().tolist() == [False, True]

    # After the reprocess, the table's value is fresh again.
    shown = run_cli("history", "1", "scaled", "--in", folder, data_root=data_root.root)
    assert "2 versions" in shown.stdout and "Stale" not in shown.stdout, shown.stdout


def test_history_of_an_unknown_variable_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "amore"
    create_folder(folder, 1234, CONTEXT_V1).close()
    result = run_cli("history", "1", "nope", "--in", folder)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: No column 'nope'"), result.stderr
    empty = run_cli("history", "1", "comment", "--in", folder)
    assert empty.returncode == 0, empty.stderr
    assert "no value of comment now, and none was recorded before" in " ".join(
        empty.stdout.split())
