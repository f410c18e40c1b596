"""`runtable init` and `runtable check`, run as the real command."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtable.store import create_folder, open_db
from runtable.testing import MockProposal, make_proposal

from .cli_helpers import RICH_CONTEXT, run_cli, stored_values


@pytest.fixture
def empty_proposal(tmp_path: Path) -> MockProposal:
    """A proposal folder of our own (no runs), so that its usr/Shared/amore is ours."""
    return make_proposal(tmp_path / "data", 4321, runs=[])


def default_folder(prop: MockProposal) -> Path:
    return prop.path / "usr" / "Shared" / "amore"


def test_init_by_proposal_number(empty_proposal: MockProposal) -> None:
    result = run_cli("init", "4321", data_root=empty_proposal.root)
    assert result.returncode == 0, result.stderr
    folder = default_folder(empty_proposal)
    assert f"Created the database folder {folder} for proposal 4321." in result.stdout
    assert "runtable reprocess all" in result.stdout
    for name in ("runs.sqlite", "context.py", "extracted_data", "process_logs"):
        assert (folder / name).exists(), name
    with open_db(folder, readonly=True) as db:
        assert db.proposal == 4321
        assert db.db_id is not None and len(db.db_id) == 40

    # The starter context file loads and has nothing to warn about.
    check = run_cli("check", folder / "context.py")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "warning" not in check.stdout.lower() + check.stderr.lower()
    assert "n_trains" in check.stdout
    # ... and computes its variable (the starter's own example works on real runs).


def test_starter_context_processes_a_run(tmp_path: Path, data_root: MockProposal) -> None:
    folder = tmp_path / "db"
    assert run_cli("init", folder, "--proposal", "1234",
                   data_root=data_root.root).returncode == 0
    result = run_cli("reprocess", "2", "--in", folder, data_root=data_root.root)
    assert result.returncode == 0, result.stderr
    assert stored_values(folder) == {(2, "n_trains"): 64}


def test_init_unknown_proposal(empty_proposal: MockProposal) -> None:
    result = run_cli("init", "999", data_root=empty_proposal.root)
    assert result.returncode == 1
    assert "Proposal 999 not found" in result.stderr
    assert "EXTRA_DATA_DATA_ROOT" in result.stderr
    assert "Traceback" not in result.stderr


def test_init_folder_needs_proposal(tmp_path: Path) -> None:
    result = run_cli("init", tmp_path / "db")
    assert result.returncode == 1
    assert "--proposal N" in result.stderr
    assert not (tmp_path / "db").exists()

    result = run_cli("init", tmp_path / "db", "--proposal", "77")
    assert result.returncode == 0, result.stderr
    with open_db(tmp_path / "db", readonly=True) as db:
        assert db.proposal == 77


def test_init_number_and_different_proposal(empty_proposal: MockProposal) -> None:
    result = run_cli("init", "4321", "--proposal", "5", data_root=empty_proposal.root)
    assert result.returncode == 1
    assert "Two different proposals: 4321 and --proposal 5" in result.stderr


def test_init_with_context(tmp_path: Path) -> None:
    source = tmp_path / "mine.py"
    source.write_text(RICH_CONTEXT)
    result = run_cli("init", tmp_path / "db", "--proposal", "77", "--context", source)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "db" / "context.py").read_text() == RICH_CONTEXT

    result = run_cli("init", tmp_path / "db2", "--proposal", "77",
                     "--context", tmp_path / "missing.py")
    assert result.returncode == 1
    assert f"Cannot read {tmp_path / 'missing.py'}" in result.stderr
    assert not (tmp_path / "db2" / "runs.sqlite").exists()


def test_init_like_copies_context_and_user_variables(tmp_path: Path) -> None:
    with create_folder(tmp_path / "old", 77, RICH_CONTEXT) as old:
        old.add_user_variable("sample", "string", title="Sample", description="what")
        old.add_user_variable("good", "boolean", title="Good run")
        old.set_user_value(77, 1, "sample", "lysozyme")
    result = run_cli("init", tmp_path / "new", "--proposal", "78", "--like", tmp_path / "old")
    assert result.returncode == 0, result.stderr
    assert "Copied the context file and 2 user-editable variables" in result.stdout
    new = tmp_path / "new"
    assert (new / "context.py").read_text() == RICH_CONTEXT
    with open_db(new, readonly=True) as db:
        assert db.proposal == 78
        user = {n: v for n, v in db.variables().items() if v.user_editable}
        assert {n: (v.type, v.title) for n, v in user.items()} == {
            "sample": ("string", "Sample"), "good": ("boolean", "Good run")}
        assert user["sample"].description == "what"
    # The values typed in the other folder belong to its runs: not copied.
    assert stored_values(new) == {}

    result = run_cli("init", tmp_path / "new2", "--proposal", "78", "--like", tmp_path)
    assert result.returncode == 1
    assert "is not a database folder" in result.stderr


def test_init_never_overwrites(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    with create_folder(folder, 77, "# my precious context\n") as db:
        db.set_comment(77, 3, "sample changed")
    before = (folder / "runs.sqlite").read_bytes()
    for args in ([], ["--context", __file__]):
        result = run_cli("init", folder, "--proposal", "77", *args)
        assert result.returncode == 1
        assert "already has a database (proposal 77); nothing changed" in result.stderr
    result = run_cli("init", folder, "--proposal", "78")
    assert result.returncode == 1
    assert (folder / "context.py").read_text() == "# my precious context\n"
    assert (folder / "runs.sqlite").read_bytes() == before


def test_init_keeps_a_context_file_already_there(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    (folder / "context.py").write_text("# written by hand before init\n")
    result = run_cli("init", folder, "--proposal", "77", "--context", __file__)
    assert result.returncode == 1
    assert "context.py exists already" in result.stderr
    assert not (folder / "runs.sqlite").exists()

    result = run_cli("init", folder, "--proposal", "77")
    assert result.returncode == 0, result.stderr
    assert "Kept the context file" in result.stdout
    assert (folder / "context.py").read_text() == "# written by hand before init\n"


def test_check_reports_problems_with_lines(tmp_path: Path) -> None:
    bad = tmp_path / "context.py"
    bad.write_text("from damnit_ctx import Variable\n\n@Variable\ndef a(run):\n"
                   "    return undefined_name\n\n@Variable\ndef b(run:\n    return 1\n")
    result = run_cli("check", bad)
    assert result.returncode != 0
    assert f"{bad}:8" in result.stdout + result.stderr
    # check never makes a database.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["context.py"]

    good = tmp_path / "good.py"
    good.write_text(RICH_CONTEXT)
    result = run_cli("check", good)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("xgm_flux", "camera", "doubled", "broken"):
        assert name in result.stdout
    assert "undefined" not in result.stdout

    warn = tmp_path / "warn.py"
    warn.write_text("from damnit_ctx import Variable\n\n@Variable\ndef a(run):\n"
                    "    return undefined_name\n")
    result = run_cli("check", warn)
    assert f"{warn}:5" in result.stdout + result.stderr
    assert "undefined_name" in result.stdout + result.stderr
