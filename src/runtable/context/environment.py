"""What a context file sees of the interpreter while it loads and runs.

Two things make files written for the reference system work unchanged:

- **The database folder comes first on ``sys.path``**, as when the reference runs a
  file there with ``python -m``: scientists keep helper modules beside ``context.py``
  (``from visar import VISAR``).
- **``damnit_ctx`` and ``damnit.context`` are runtable's classes.** Each is a module of
  its own name (so a missing name is reported as missing from the module the user
  imported) holding this package's objects. They replace the reference's modules of
  those names while a file loads or runs, also when the reference's ``damnit`` package
  is installed or already imported, and put those back afterwards.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path

#: Module names that context files written for the reference import from.
COMPAT_MODULES = ("damnit_ctx", "damnit.context")
#: Names the reference's modules offer that are runtable objects here too.
_EXTRA_NAMES = ("GroupBoundVariable",)

_compat: dict[str, types.ModuleType] = {}


def compat_module(name: str) -> types.ModuleType:
    """The module ``name`` (one of :data:`COMPAT_MODULES`) holding runtable's classes."""
    module = _compat.get(name)
    if module is None:
        package = sys.modules[__package__]
        from .group import GroupBoundVariable

        module = types.ModuleType(name, f"runtable's context-file classes, importable as "
                                        f"{name!r} for files written for DAMNIT.")
        for attr in package.__all__:
            setattr(module, attr, getattr(package, attr))
        module.__dict__.update(GroupBoundVariable=GroupBoundVariable,
                               __all__=[*package.__all__, *_EXTRA_NAMES])
        _compat[name] = module
    return module


@contextlib.contextmanager
def context_environment(folder: str | os.PathLike[str] | None) -> Iterator[None]:
    """While a context file from ``folder`` loads or runs: ``folder`` first on
    ``sys.path`` and the compatibility modules in place.

    Both are undone on exit, except compatibility modules that replaced nothing and
    were used without an error: they stay (objects made by the file refer to them).
    """
    saved: dict[str, types.ModuleType | None] = {}
    for name in (*COMPAT_MODULES, "damnit"):
        saved[name] = sys.modules.get(name)
    for name in COMPAT_MODULES:
        sys.modules[name] = compat_module(name)
    parent = compat_module("damnit.context")
    added_parent = False
    if saved["damnit"] is None and importlib.util.find_spec("damnit") is None:
        # ``import damnit.context`` needs a parent package; only when there is no
        # real one (whose API a context file may use) is a stand-in made.
        stub = types.ModuleType("damnit", "Stand-in parent of damnit.context (runtable).")
        stub.__path__ = []
        stub.__dict__["context"] = parent
        sys.modules["damnit"] = stub
        added_parent = True
    entry = str(Path(folder).absolute()) if folder is not None else None
    added_path = entry if entry is not None and (not sys.path or sys.path[0] != entry) else None
    if added_path is not None:
        sys.path.insert(0, added_path)
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        if added_path is not None:
            with contextlib.suppress(ValueError):
                sys.path.remove(added_path)
        for name, module in saved.items():
            if module is not None:
                sys.modules[name] = module
            elif failed or (name == "damnit" and added_parent):
                sys.modules.pop(name, None)


def context_folder(path: str | os.PathLike[str]) -> Path | None:
    """The folder of a context file at ``path`` (None when it does not exist)."""
    folder = Path(path).absolute().parent
    return folder if folder.is_dir() else None


_EXPLAINED = "_runtable_explained"  # set on an exception already explained


def explain_missing_module(exc: BaseException, folder: Path | None) -> None:
    """Add where runtable looked to a ``ModuleNotFoundError`` raised by a context file."""
    if not isinstance(exc, ModuleNotFoundError) or getattr(exc, _EXPLAINED, False):
        return
    where = f"the context file's folder {folder}, then " if folder is not None else ""
    others = [p for p in sys.path if p and p != str(folder)]
    exc.msg = (f"{exc.msg}; looked in {where}the Python environment of {sys.executable} "
               f"({os.pathsep.join(others)})")
    exc.args = (exc.msg, *exc.args[1:])
    setattr(exc, _EXPLAINED, True)
