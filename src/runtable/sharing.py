"""A database folder a team shares: group-writable, never writable by everyone.

At a facility every member of a proposal's group opens the GUI, edits the context
file and writes comments, and the service may run under yet another account of the
group. So everything runtable creates in a database folder is writable by its group,
whatever the creating process's umask:

- directories ``rwxrwsr-x`` (2775): the setgid bit makes whatever is created inside
  belong to the folder's group, whoever creates it; a new database folder also takes
  the group of the folder it is made in;
- files ``rw-rw-r--`` (664). SQLite creates ``-wal``/``-shm`` files with the mode of
  the database file, so these follow.

Nothing is writable by others: a fragment dropped by a stranger would be merged as
results. The one private file is ``.runtable-server.json`` (0600: it holds the token).
Changing a mode needs ownership, so a path owned by someone else is left as it is.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o2775
FILE_MODE = 0o664


def shared_dir(path: str | os.PathLike[str]) -> Path:
    """Make ``path`` (and missing parents) a shared directory; return it.

    Directories created here get :data:`DIR_MODE`; the topmost new one also gets the
    group of the directory it was made in (setgid on that one does it for the rest).
    An existing directory that is writable by everyone and owned by this user is
    repaired (folders of earlier versions were made 0777).
    """
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        _set_mode(d, DIR_MODE, parent_group=d == missing[-1])
    if not missing:
        repair(path)
    return path


def shared_file(path: str | os.PathLike[str]) -> None:
    """Give a file runtable created :data:`FILE_MODE` (when this user owns it)."""
    _set_mode(Path(path), FILE_MODE)


def repair(path: str | os.PathLike[str]) -> None:
    """Take write access from others on ``path`` if this user owns it, making a
    directory shared (see the module docs)."""
    try:
        st = os.stat(path)
    except OSError:
        return
    if st.st_uid == os.geteuid() and st.st_mode & 0o002:
        is_dir = os.path.isdir(path)
        _set_mode(Path(path), DIR_MODE if is_dir else FILE_MODE)


def _set_mode(path: Path, mode: int, parent_group: bool = False) -> None:
    with contextlib.suppress(OSError):  # not ours, or a file system without modes
        if parent_group:
            gid = path.parent.stat().st_gid
            if path.stat().st_gid != gid:
                # Only allowed for a group this user is in; otherwise its own.
                with contextlib.suppress(OSError):
                    os.chown(path, -1, gid)
        os.chmod(path, mode)
