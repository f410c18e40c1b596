from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtable.store import DatabaseFolder, create_folder

PROPOSAL = 1234


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "amore"


@pytest.fixture
def db(folder: Path) -> Iterator[DatabaseFolder]:
    with create_folder(folder, PROPOSAL) as db:
        yield db


@pytest.fixture(params=["new", 1, 2, 3, 4], ids=lambda v: f"v{v}" if v != "new" else "new")
def vdb(request: pytest.FixtureRequest, folder: Path) -> Iterator[DatabaseFolder]:
    """A database folder that is either new or was made by the reference system
    at data format v1-v4 (and upgraded on opening). It may hold some rows already
    (runs 1-2 of make_reference_db); tests use names and runs not in there."""
    from .reference_db import make_reference_db

    if request.param == "new":
        db = create_folder(folder, PROPOSAL)
    else:
        make_reference_db(folder, request.param)
        db = DatabaseFolder(folder)
    with db:
        yield db
