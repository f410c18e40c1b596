"""The service's web side: the ASGI app (REST + one WebSocket), its token, and running it.

* :func:`~runtable.server.app.create_app` -- the app for one database folder; its
  WebSocket streams the events of :mod:`runtable.events` (the bus lives below both the
  service and the server).
* :func:`~runtable.server.serve.serve` and the :class:`~runtable.server.control.Service`
  hook -- ``runtable serve``.
* :mod:`runtable.server.discovery` -- ``<db_dir>/.runtable-server.json``, how
  ``runtable notify``/``events`` find a running server (:mod:`runtable.server.client`).
* :mod:`runtable.server.auth` -- the token check and security headers.

Importing this package, or :mod:`runtable.events`, does not import the web
framework; the names below are resolved on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "create_app": "runtable.server.app",
    "serve": "runtable.server.serve",
    "Service": "runtable.server.control",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runtable.server' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
