"""``runtable serve``: run the app with uvicorn for one database folder.

The service proper (watcher -> jobs -> store -> events, :class:`runtable.service.Service`,
which ``runtable serve`` passes in) plugs in through the
:class:`~runtable.server.control.Service` protocol: :func:`serve` starts it with the
event bus before the server accepts connections, routes ``POST /api/notify`` and the
processing control (:class:`~runtable.server.control.ProcessingControl`: reprocess,
jobs, cancel, delete a variable, new rows) to it, and stops it at exit.
Without one (tests of the web side), the server has an idle bus and logs
notifications, and the processing control answers 503.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..events import EventBus

if TYPE_CHECKING:
    from .control import Service

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
#: First port tried; the next few are tried when it is taken (as Jupyter does).
DEFAULT_PORT = 8780
PORT_RETRIES = 10
TOKEN_ENV = "RUNTABLE_TOKEN"


def _log_notify(run: int, data: str) -> None:
    log.warning("notified that run %d (%s) is complete; this server runs without a "
                "service, so nothing is processed", run, data)


def bind_socket(host: str, port: int, retries: int = PORT_RETRIES) -> socket.socket:
    """A listening socket on ``host``: ``port``, or the next free one of ``retries``.

    ``port`` 0 asks the system for any free port.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    last: OSError | None = None
    for candidate in [port] if port == 0 else range(port, port + retries + 1):
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP;
        # without it every small answer on a kept-alive connection waits ~40 ms
        # (Nagle's algorithm meeting the client's delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise
            last = exc
            continue
        sock.listen(128)
        sock.set_inheritable(True)
        return sock
    raise OSError(errno.EADDRINUSE,
                  f"ports {port}-{port + retries} on {host} are all in use; "
                  "choose one with --port (0: any free port)") from last


def public_url(host: str, port: int) -> str:
    """The base URL to print for a server bound to ``host``."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve(
    db_dir: str | os.PathLike[str],
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    service: Service | None = None,
    out: TextIO | None = None,
) -> int:
    """Serve ``db_dir`` until interrupted (Ctrl-C, SIGTERM); returns an exit status.

    ``token`` defaults to ``$RUNTABLE_TOKEN``, else a new random one. The URL to open,
    token included, is printed to ``out`` (stdout) once the port is bound.
    """
    return _serve(Path(db_dir), host, port, token, service, out or sys.stdout)


def resolve_token(token: str | None) -> str:
    """The token a server started with ``token`` requires: ``token``, else
    ``$RUNTABLE_TOKEN``, else a new random one; ``ValueError`` if it is unusable."""
    from .app import check_token

    return check_token(token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(32))


def _serve(db_dir: Path, host: str, port: int, token: str | None,
           service: Service | None, out: TextIO) -> int:
    import uvicorn

    from .app import create_app
    from .discovery import advertised

    token = resolve_token(token)
    upgrade = False
    if service is not None:
        from ..store import FolderBusy, current_writer

        holder = current_writer(db_dir)
        if holder is not None:  # (before printing or advertising anything)
            raise FolderBusy(Path(db_dir).absolute(), holder, "runtable serve")
        upgrade = _needs_upgrade(db_dir)
    bus = EventBus()
    # The first start on a folder the reference made upgrades it (WAL, the change log),
    # so there the service is started by the table's warm-up thread once the port
    # answers, and the table is read after it; until then notify and processing
    # answer 503, the table its progress, and the folder's discovery file is written
    # once the service (the folder's writer) runs. The upgrade's slow step, an index
    # over every cell, waits until the table is read. Otherwise the service is
    # running when the URL is printed.
    app = create_app(db_dir, token, bus=bus,
                     notify=_log_notify if service is None else None, warm_up=False)
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    base = public_url(host, bound_port)
    # The access log would write every URL, including `?token=`, to the terminal.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    failure: list[BaseException] = []
    start_ended = threading.Event()
    discovery = contextlib.ExitStack()

    def start_service() -> None:
        try:
            if service is not None:
                service.url = base  # named to a second server refused on this folder
                service.start(bus, defer_slow_upgrade=upgrade)
                app.state.notify, app.state.control = service.notify, service
            if discovery.enter_context(advertised(db_dir, base, token)) is None:
                print(f"(could not write {db_dir}/.runtable-server.json: `runtable "
                      "notify` and `runtable events` need --url and --token)",
                      file=out, flush=True)
        except BaseException as exc:
            failure.append(exc)
            server.should_exit = True
            raise
        finally:
            start_ended.set()

    try:
        with _stop_on_signals():
            if upgrade:
                app.state.table.warm_up(
                    before=start_service,
                    after=service.finish_upgrade if service is not None else None)
            else:
                start_service()
                app.state.table.warm_up()
            print(f"Serving {db_dir} -- open this URL in a browser:\n"
                  f"    {base}/?token={token}", file=out, flush=True)
            server.run(sockets=[sock])
    except _StopServing:
        pass
    finally:
        sock.close()
        start_ended.wait()  # (a service still starting is not stopped under its feet)
        discovery.close()
        if service is not None:
            service.stop()
    if failure:
        raise failure[0]
    print("Stopped.", file=out, flush=True)
    return 0


def _needs_upgrade(db_dir: str | os.PathLike[str]) -> bool:
    """Whether the service's start will upgrade the folder (read-only look)."""
    from ..store import StoreError, open_db, schema

    try:
        with open_db(db_dir, readonly=True) as db:
            return schema.needs_upgrade(db.conn)
    except StoreError:
        return True  # (an older format: the writable open upgrades it, or says why not)


class _StopServing(Exception):
    """Raised by our handler of SIGINT/SIGTERM, so that clean-up code runs."""


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then raises the same signal
    # again for the handlers it found installed. With the default SIGTERM handler the
    # process would die there, before removing its discovery file or stopping the
    # service; with ours, that second signal ends `serve` normally.
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise _StopServing(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
