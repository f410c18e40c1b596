"""A truncated per-run HDF5 file no longer blocks its run: the next result sets it
aside (never deleted), rebuilds the run's file from the database and the new result,
and the cells whose full data stayed in it say so (real `runtable reprocess`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import pytest

from runtable.testing import MockProposal

from .cli_helpers import RICH_CONTEXT, attributes, run_cli, stored_values


@pytest.fixture
def rich_folder(tmp_path: Path, data_root: MockProposal) -> Path:
    from runtable.store import create_folder

    folder = tmp_path / "amore"
    create_folder(folder, data_root.proposal, RICH_CONTEXT).close()
    return folder


def reprocess(folder: Path, data_root: MockProposal, *args: str):
    return run_cli("reprocess", *args, "--in", folder, data_root=data_root.root)


def _failed(folder: Path, name: str) -> dict | None:
    return json.loads(attributes(folder, 1, name) or "{}").get("failed")


def test_a_truncated_run_file_is_set_aside_and_rebuilt(rich_folder, data_root):
    assert reprocess(rich_folder, data_root, "1").returncode == 0
    run_file = rich_folder / "extracted_data" / "p1234_r1.h5"
    os.truncate(run_file, run_file.stat().st_size // 2)
    damaged_bytes = run_file.read_bytes()
    before = stored_values(rich_folder)

    result = reprocess(rich_folder, data_root, "1", "--var", "label")
    assert result.returncode == 0, result.stderr
    assert "FAILED" not in result.stdout, result.stdout
    # The damaged file is kept, byte for byte, beside the new one.
    [aside] = (rich_folder / "extracted_data").glob("p1234_r1.h5.damaged-*")
    assert aside.read_bytes() == damaged_bytes
    with h5py.File(run_file, "r") as f:
        assert f["label/data"][()].decode() == "run 1"
        # Every other value of the run is rebuilt from the database, as its summary.
        assert set(f[".reduced"]) >= {"xgm_flux", "n_trains", "camera", "label"}
        assert f[".reduced/n_trains"][()] == before[(1, "n_trains")]
        assert "broken" in f[".errors"]
    assert stored_values(rich_folder) == before  # no value lost or changed
    # The problem shows on the run's cells whose full data stayed in the damaged file.
    failed = _failed(rich_folder, "xgm_flux")
    assert failed["error_cls"] == "DamagedFile" and aside.name in failed["error"]
    assert _failed(rich_folder, "label") is None

    # Processing the run again brings everything back.
    assert reprocess(rich_folder, data_root, "1").returncode == 0
    assert _failed(rich_folder, "xgm_flux") is None
    with h5py.File(run_file, "r") as f:
        assert f["xgm_flux/data"].shape == (64,)
