"""Serving an app of runtable's web server in a thread of the test process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def serve_in_thread(app: Any, start_timeout: float = 10.0) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yield
    its base URL (``http://127.0.0.1:PORT``). The server stops when the block ends.

    >>> with serve_in_thread(create_app(db_dir, token)) as url:  # doctest: +SKIP
    ...     urllib.request.urlopen(f"{url}/api/health?token={token}")
    """
    import uvicorn

    from runtable.server.serve import bind_socket

    sock = bind_socket("127.0.0.1", 0)  # the socket `runtable serve` listens on
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError("the test server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
