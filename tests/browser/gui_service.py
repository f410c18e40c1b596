"""The real service and the web app on one event bus, served on a free local port: for
browser tests whose pages make the service work (reprocess, edit the context file)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runtable.events import EventBus
from runtable.server.app import create_app
from runtable.server.frontend import static_dir
from runtable.service import Service

from .conftest import serve

#: Sized for a loaded 2-CPU machine: one job at a time, quick to notice changes.
SETTINGS = {"noncluster_cpus": 1, "noncluster_mem": "2G", "concurrent_jobs": 1,
            "ready_quiet_s": 0.3}


@dataclass
class ServedService:
    base: str
    token: str
    db_dir: Path
    service: Service

    @property
    def url(self) -> str:
        return f"{self.base}/?token={self.token}"

    @property
    def context(self) -> Path:
        return self.db_dir / "context.py"


@contextmanager
def served_service(db_dir: Path, proposal_path: Path, token: str,
                   settings: Mapping[str, Any] | None = None) -> Iterator[ServedService]:
    """Start the service of ``db_dir`` (a folder made already) watching ``proposal_path``
    and serve the app with it as notify hook and processing control."""
    if not (static_dir() / "index.html").is_file():
        pytest.fail("the web GUI is not built: run ./dev setup")
    service = Service(db_dir, settings={**SETTINGS, **(settings or {})},
                      poll_interval_s=0.2, context_poll_s=0.1, proposal_path=proposal_path)
    bus = EventBus()
    service.start(bus)
    try:
        app = create_app(db_dir, token, bus=bus, notify=service.notify, control=service)
        with serve(app) as base:
            yield ServedService(base, token, db_dir, service)
    finally:
        service.stop()
