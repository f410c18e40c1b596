"""How commands find the running server of a database folder.

At start the server writes ``<db_dir>/.runtable-server.json`` = ``{url, token, pid,
host}``, readable by its owner only (mode 0600: the token grants running code as the
service user), and removes it at exit. ``runtable events`` and ``runtable notify``
read it. A file left by a killed server is recognised as stale when its process is
gone (checked only on the same host: a database folder can be on a shared file
system and the service on another machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

SERVER_FILE = ".runtable-server.json"


@dataclass(frozen=True)
class ServerInfo:
    """Where a running server listens and the token it wants."""

    url: str
    token: str
    pid: int = 0
    host: str = ""

    def is_local(self) -> bool:
        """Whether the server runs on this machine."""
        return not self.host or self.host == socket.gethostname()


def server_file(db_dir: str | os.PathLike[str]) -> Path:
    """The discovery file's path for ``db_dir``."""
    return Path(db_dir) / SERVER_FILE


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def write_server_file(db_dir: str | os.PathLike[str], url: str, token: str) -> Path:
    """Write the discovery file for this process (mode 0600, replaced atomically)."""
    path = server_file(db_dir)
    info = ServerInfo(url=url, token=token, pid=os.getpid(), host=socket.gethostname())
    tmp = path.with_name(f"{SERVER_FILE}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    # Created 0600 from the start: the token is never readable by others, not even
    # for a moment between creating and chmod-ing.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(info), f)
        f.write("\n")
    os.replace(tmp, path)
    return path


def read_server_file(db_dir: str | os.PathLike[str]) -> ServerInfo | None:
    """The running server of ``db_dir``, or None (no file, unreadable, or stale)."""
    try:
        data = json.loads(server_file(db_dir).read_text())
        info = ServerInfo(url=str(data["url"]), token=str(data["token"]),
                          pid=int(data.get("pid", 0)), host=str(data.get("host", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if info.is_local() and info.pid and not _pid_alive(info.pid):
        return None
    return info


def remove_server_file(db_dir: str | os.PathLike[str]) -> bool:
    """Remove the discovery file if this process wrote it; True if removed."""
    path = server_file(db_dir)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    # Another server may have started on the folder since (and overwritten the file).
    if data.get("pid") != os.getpid() or data.get("host") != socket.gethostname():
        return False
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return True


@contextlib.contextmanager
def advertised(db_dir: str | os.PathLike[str], url: str, token: str) -> Iterator[Path | None]:
    """Write the discovery file for the ``with`` block; None if the folder is read-only."""
    try:
        path: Path | None = write_server_file(db_dir, url, token)
    except OSError:
        path = None
    try:
        yield path
    finally:
        if path is not None:
            remove_server_file(db_dir)
