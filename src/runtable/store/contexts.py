"""Every context-file text that was run, kept by its content hash.

A job that loads the context file keeps the text it loaded as
``context_history/texts/<sha256>.py``, with ``<sha256>.json`` beside it holding the
hash of each variable's code (:func:`runtable.context.codehash.code_hashes`), and
writes the hash into its fragment. The value history names that hash, so the text
that computed any value can be shown and compared with another, whoever edited the
file and however (the web editor keeps its own saves in ``context_history/`` too).

The files are named by their content, so writing one twice changes nothing: jobs on
any node may write them at the same time without the folder's writer lock. Each is
written under a temporary name and renamed into place, so a reader never sees a part.
Standard library only: jobs import this.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..sharing import shared_dir, shared_file

TEXTS_DIR = Path("context_history") / "texts"
_SHA_RE = re.compile(r"[0-9a-f]{64}")


def is_sha256(text: object) -> bool:
    """Whether ``text`` is a full hex SHA-256 (the name of a kept text)."""
    return isinstance(text, str) and _SHA_RE.fullmatch(text) is not None


def texts_dir(db_dir: str | os.PathLike[str]) -> Path:
    """Where the texts of a database folder are kept."""
    return Path(db_dir) / TEXTS_DIR


def keep_text(db_dir: str | os.PathLike[str], sha256: str, text: str,
              code: Mapping[str, str] | None = None) -> None:
    """Keep ``text`` (whose hash is ``sha256``) and, when given, its variables' code
    hashes. Files already there are left alone."""
    if not is_sha256(sha256):
        raise ValueError(f"{sha256!r} is not a SHA-256 in hex")
    folder = texts_dir(db_dir)
    if not folder.is_dir():
        shared_dir(folder.parent)
        shared_dir(folder)
    _write_once(folder / f"{sha256}.py", text)
    if code is not None:
        meta = {"sha256": sha256, "first_run": time.time(), "code": dict(code)}
        _write_once(folder / f"{sha256}.json", json.dumps(meta, sort_keys=True))


def is_kept(db_dir: str | os.PathLike[str], sha256: str) -> bool:
    """Whether the text and its code hashes are kept already (nothing to write)."""
    folder = texts_dir(db_dir)
    return (folder / f"{sha256}.json").exists() and (folder / f"{sha256}.py").exists()


def read_text(db_dir: str | os.PathLike[str], sha256: str) -> str | None:
    """The kept text with this hash, or None."""
    if not is_sha256(sha256):
        return None
    try:
        with open(texts_dir(db_dir) / f"{sha256}.py", encoding="utf-8",
                  errors="surrogateescape", newline="") as f:
            return f.read()
    except OSError:
        return None


def read_meta(db_dir: str | os.PathLike[str], sha256: str) -> dict[str, Any] | None:
    """``{"sha256", "first_run", "code": {name: hash}}`` of a kept text, or None."""
    if not is_sha256(sha256):
        return None
    try:
        meta = json.loads((texts_dir(db_dir) / f"{sha256}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and isinstance(meta.get("code"), dict) else None


def _write_once(path: Path, content: str) -> None:
    if path.exists():
        return
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
    try:
        # newline="": the text exactly as it was loaded (its hash is of these characters).
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape",
                       newline="") as f:
            f.write(content)
        shared_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
