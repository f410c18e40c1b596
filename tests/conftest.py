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


#: The reference's package, installed beside runtable where compatibility is tested.
REFERENCE = "damnit==0.4.0"
BOTH_VENV = REPO / ".venv-damnit-runtable"


@pytest.fixture(scope="session")
def python_with_damnit() -> Path:
    """A venv (kept at the repository root, git-ignored) with runtable (editable) and
    the reference's package, as at a facility whose analysis package installs
    ``damnit`` as a dependency. Skips when it can't be installed."""
    import fcntl
    import shutil
    import sys

    python = BOTH_VENV / "bin" / "python"
    check = [str(python), "-c", "import runtable, damnit.api, extra_proposal"]
    # Each test worker asks; one installs while the others wait for it.
    with open(REPO / ".venv-damnit-runtable.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
            return python
        beside = Path(sys.executable).with_name("uv")
        uv = str(beside) if beside.exists() else shutil.which("uv")
        if uv is None:
            pytest.skip("uv is not installed, so the reference package can't be installed")
        # A venv that fails the check is broken (an install cut short): made again.
        for cmd in ([uv, "venv", "--quiet", "--clear", "--python", sys.executable,
                     str(BOTH_VENV)],
                    [uv, "pip", "install", "--quiet", "--python", str(python), "-c",
                     str(REPO / "constraints.txt"), "-e", str(REPO), REFERENCE,
                     "extra-proposal"]):
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                pytest.skip(f"could not install {REFERENCE}: {proc.stderr.strip()[-500:]}")
    return python
