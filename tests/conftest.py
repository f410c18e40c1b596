"""Shared fixtures: real mock proposals on disk, made with extra_data's generators."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runtable.testing import MockProposal, make_proposal

PROPOSAL = 1234
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mock_proposal(tmp_path_factory: pytest.TempPathFactory) -> MockProposal:
    """A proposal with raw and proc data for runs 1-3 (shared; do not modify)."""
    return make_proposal(tmp_path_factory.mktemp("data"), PROPOSAL, runs=[1, 2, 3])


@pytest.fixture
def data_root(mock_proposal: MockProposal, monkeypatch: pytest.MonkeyPatch) -> MockProposal:
    """Point extra_data (and runtable) at the shared mock proposal."""
    monkeypatch.setenv("EXTRA_DATA_DATA_ROOT", str(mock_proposal.root))
    return mock_proposal


@pytest.fixture(scope="session")
def slurm_ready() -> str | None:
    """None when a real Slurm answers here (started with scripts/slurm-up.sh if
    needed), else the reason it can't, for the tests to skip with."""
    from runtable.jobs import slurm_available

    if slurm_available(cached=False) is None:
        return None
    try:
        proc = subprocess.run([str(REPO / "scripts" / "slurm-up.sh")], capture_output=True,
                              text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"scripts/slurm-up.sh could not run: {exc}"
    if proc.returncode != 0:
        return f"scripts/slurm-up.sh failed: {proc.stderr.strip().splitlines()[:3]}"
    return slurm_available(cached=False)
