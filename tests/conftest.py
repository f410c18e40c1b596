"""Shared fixtures: real mock proposals on disk, made with extra_data's generators."""

from __future__ import annotations

import pytest

from runtable.testing import MockProposal, make_proposal

PROPOSAL = 1234


@pytest.fixture(scope="session")
def mock_proposal(tmp_path_factory: pytest.TempPathFactory) -> MockProposal:
    """A proposal with raw and proc data for runs 1-3 (shared; do not modify)."""
    return make_proposal(tmp_path_factory.mktemp("data"), PROPOSAL, runs=[1, 2, 3])


@pytest.fixture
def data_root(mock_proposal: MockProposal, monkeypatch: pytest.MonkeyPatch) -> MockProposal:
    """Point extra_data (and runtable) at the shared mock proposal."""
    monkeypatch.setenv("EXTRA_DATA_DATA_ROOT", str(mock_proposal.root))
    return mock_proposal
