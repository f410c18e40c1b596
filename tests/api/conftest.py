from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtable.api import Database

from .api_folder import build_folder


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep table() caches out of the home directory."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RUNTABLE_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def shared_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of api_folder.build_folder (shared: do not modify)."""
    return build_folder(tmp_path_factory.mktemp("api") / "amore")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private copy-free build of the same folder, for tests that write."""
    return build_folder(tmp_path / "amore")


@pytest.fixture
def db(shared_folder: Path) -> Iterator[Database]:
    with Database(shared_folder) as db:
        yield db
