"""Talking to a running server from the command line: ``runtable notify`` and
``runtable events``. Standard library HTTP; ``websockets`` only for the event stream.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit
from urllib.request import Request, urlopen

from .discovery import ServerInfo, read_server_file


class ClientError(Exception):
    """A problem talking to the server, worded for the person at the terminal."""


class StreamClosed(ClientError):
    """The server closed the event stream; ``code`` is the WebSocket close code."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


def not_running(db_dir: str | os.PathLike[str]) -> ClientError:
    """The error for a folder without a running server."""
    return ClientError(f"no runtable service is running for {db_dir}; "
                       f"start it with runtable serve {db_dir}")


def find_server(db_dir: str | os.PathLike[str]) -> ServerInfo:
    """The running server of ``db_dir`` (from its discovery file), or ClientError."""
    info = read_server_file(db_dir)
    if info is None:
        raise not_running(db_dir)
    return info


def _request(info: ServerInfo, method: str, path: str, body: Any = None,
             timeout: float = 10.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = Request(info.url.rstrip("/") + path, data=data, method=method, headers={
        "Authorization": f"Bearer {info.token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    })
    try:
        with urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", exc.reason)
        except (ValueError, AttributeError):
            detail = exc.reason
        if exc.code == 401:
            raise ClientError(f"the server at {info.url} refused the token") from None
        raise ClientError(f"{detail} (HTTP {exc.code})") from None
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClientError(f"cannot reach the server at {info.url}: {reason}") from None


def post_notify(info: ServerInfo, run: int, data: str = "raw") -> dict[str, Any]:
    """``POST /api/notify``; the server's answer, or ClientError with its message."""
    return _request(info, "POST", "/api/notify", {"run": run, "data": data})


def post_merge(info: ServerInfo, fragment: str, titles: dict[str, str]) -> list[str]:
    """``POST /api/fragments``: ask the service to merge the fragment ``fragment`` (a
    file name in ``extracted_data``); the names stored, or ClientError."""
    answer = _request(info, "POST", "/api/fragments", {"name": fragment, "titles": titles},
                      timeout=120.0)
    return list(answer["names"])


def post_reprocess(info: ServerInfo, runs: str, variables: list[str] | None,
                   data: str = "all") -> dict[str, Any]:
    """``POST /api/reprocess``: queue ``runs`` (e.g. ``"3-7,9"`` or ``"all"``) on the
    server; its answer (``{"jobs": [...]}``), or ClientError with its message."""
    return _request(info, "POST", "/api/reprocess",
                    {"runs": runs, "variables": variables, "data": data}, timeout=60)


def events_url(base_url: str) -> str:
    """The WebSocket URL of the event stream of the server at ``base_url``."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/api/events", "", ""))


def stream_events(info: ServerInfo, *, include_hello: bool = False,
                  open_timeout: float = 10.0) -> Iterator[dict[str, Any]]:
    """Yield events of the server as dicts, live, until it closes the stream.

    Raises :class:`StreamClosed` when the server drops the stream for a reason other
    than shutting down, and :class:`ClientError` when it cannot be reached.
    """
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    try:
        ws = connect(events_url(info.url), open_timeout=open_timeout,
                     additional_headers={"Authorization": f"Bearer {info.token}"})
    except InvalidStatus as exc:
        if exc.response.status_code == 401:
            raise ClientError(f"the server at {info.url} refused the token") from None
        raise ClientError(f"the server at {info.url} refused the event stream "
                          f"(HTTP {exc.response.status_code})") from None
    except (OSError, TimeoutError) as exc:
        raise ClientError(f"cannot reach the server at {info.url}: {exc}") from None
    with ws:
        try:
            for message in ws:
                event = json.loads(message)
                if event.get("kind") == "hello" and not include_hello:
                    continue
                yield event
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            if rcvd is not None and rcvd.code in (1000, 1001, 1012):
                return  # closed normally, or the server is shutting down
            code = rcvd.code if rcvd is not None else None
            reason = rcvd.reason if rcvd is not None and rcvd.reason else "connection lost"
            raise StreamClosed(f"the server closed the event stream: {reason}",
                               code) from None


def server_from_args(folder: Path | None, url: str | None, token: str | None) -> ServerInfo:
    """The server named by ``--url``/``--token``, else the one running for ``folder``."""
    token = token or os.environ.get("RUNTABLE_TOKEN")
    if url:
        if not token:
            raise ClientError("--url needs a token: give --token or set RUNTABLE_TOKEN")
        return ServerInfo(url=url, token=token)
    assert folder is not None
    info = find_server(folder)
    if token:
        info = ServerInfo(url=info.url, token=token, pid=info.pid, host=info.host)
    return info
