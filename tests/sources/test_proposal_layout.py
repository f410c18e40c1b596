"""Finding proposals and listing the runs on disk (runtable.sources.layout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtable.sources import (
    ProposalNotFoundError,
    RunOnDisk,
    find_proposal,
    open_run,
    scan_runs,
)
from runtable.sources.layout import run_number
from runtable.testing import MockProposal, make_proposal


@pytest.fixture
def no_roots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXTRA_DATA_DATA_ROOT", raising=False)
    monkeypatch.delenv("XFEL_DATA_ROOT", raising=False)


def test_run_number() -> None:
    assert run_number("r0042") == 42
    assert run_number("r7") == 7
    assert run_number("r12345") == 12345
    for name in ("R0042", "r0042.tmp", "run42", "r", "r-1", "xr0001", ".r0001"):
        assert run_number(name) is None


def test_find_proposal_from_extra_data_root(data_root: MockProposal) -> None:
    assert find_proposal(data_root.proposal) == data_root.path


def test_find_proposal_from_xfel_data_root(
    mock_proposal: MockProposal, no_roots: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XFEL_DATA_ROOT", str(mock_proposal.root))
    assert find_proposal(mock_proposal.proposal) == mock_proposal.path


def test_find_proposal_searches_both_roots_in_order(
    mock_proposal: MockProposal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXTRA_DATA_DATA_ROOT", str(tmp_path))  # has no proposals
    monkeypatch.setenv("XFEL_DATA_ROOT", str(mock_proposal.root))
    assert find_proposal(mock_proposal.proposal) == mock_proposal.path


def test_find_proposal_not_found_lists_where_it_looked(
    tmp_path: Path, no_roots: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXTRA_DATA_DATA_ROOT", str(tmp_path / "a"))
    monkeypatch.setenv("XFEL_DATA_ROOT", str(tmp_path / "b"))
    with pytest.raises(ProposalNotFoundError) as info:
        find_proposal(99)
    message = str(info.value)
    assert "Proposal 99 not found" in message
    assert str(tmp_path / "a" / "*/*/p000099") in message
    assert "$EXTRA_DATA_DATA_ROOT" in message
    assert str(tmp_path / "b" / "*/*/p000099") in message
    assert "$XFEL_DATA_ROOT" in message
    assert isinstance(info.value, FileNotFoundError)


def test_find_proposal_default_root_named_in_error(no_roots: None) -> None:
    # Proposal 999999 does not exist here (nor, we trust, at the facility).
    with pytest.raises(ProposalNotFoundError, match=r"/gpfs/exfel/exp/\*/\*/p999999 \(default\)"):
        find_proposal(999999)


@pytest.mark.parametrize("bad", [-1, "1234", 12.0, True])
def test_find_proposal_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        find_proposal(bad)  # type: ignore[arg-type]


def test_scan_runs_shared_proposal(mock_proposal: MockProposal) -> None:
    runs = scan_runs(mock_proposal.path)
    assert [(r.run, r.raw, r.proc) for r in runs] == [
        (1, True, True),
        (2, True, True),
        (3, True, True),
    ]
    for r in runs:
        assert r.raw_mtime == pytest.approx(mock_proposal.raw_dir(r.run).stat().st_mtime)
        assert r.proc_mtime == pytest.approx(mock_proposal.proc_dir(r.run).stat().st_mtime)


def test_scan_runs_mixed_and_junk(tmp_path: Path) -> None:
    prop = make_proposal(tmp_path, runs=[])
    for rel in ("raw/r0001", "raw/r0002", "proc/r0002", "proc/r0010", "raw/notes", "raw/r12a"):
        (prop.path / rel).mkdir(parents=True)
    (prop.path / "raw" / "r0003").write_text("a file, not a run folder")
    (prop.path / "raw" / "r0004.h5").write_text("")
    assert scan_runs(prop.path) == [
        RunOnDisk(1, True, False, (prop.path / "raw/r0001").stat().st_mtime, None),
        RunOnDisk(
            2,
            True,
            True,
            (prop.path / "raw/r0002").stat().st_mtime,
            (prop.path / "proc/r0002").stat().st_mtime,
        ),
        RunOnDisk(10, False, True, None, (prop.path / "proc/r0010").stat().st_mtime),
    ]


def test_scan_runs_missing_folders(tmp_path: Path) -> None:
    assert scan_runs(tmp_path / "nowhere") == []
    prop = make_proposal(tmp_path, runs=[])  # no raw/ or proc/ yet
    assert scan_runs(prop.path) == []


def test_scan_runs_unreadable_folder_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    prop = make_proposal(tmp_path, runs=[])
    (prop.path / "raw" / "r0001").mkdir(parents=True)
    (prop.path / "proc" / "r0001").mkdir(parents=True)
    real_scandir = os.scandir

    def scandir(path):  # root ignores permissions, so simulate the error
        if Path(path).name == "proc":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr("runtable.sources.layout.os.scandir", scandir)
    assert [(r.run, r.raw, r.proc) for r in scan_runs(prop.path)] == [(1, True, False)]
    assert "Cannot list" in caplog.text and "Permission denied" in caplog.text


def test_open_run_by_number_and_path(data_root: MockProposal) -> None:
    run = open_run(data_root.proposal, 2)
    assert len(run.train_ids) == 64
    assert "SA1_XTD2_XGM/DOOCS/MAIN" in run.control_sources
    proc = open_run(data_root.path, 2, data="proc")
    assert any("CORR" in src for src in proc.instrument_sources)
