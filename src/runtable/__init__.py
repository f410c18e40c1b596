"""runtable: a live, self-filling table of an experiment's runs.

The context-file language is importable from here::

    from runtable import Variable, Cell, Skip, Group, Pipeline
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Resolved lazily so that `import runtable` (and the CLI's --help) stays fast.
_LAZY = {
    "Variable": "runtable.context",
    "Cell": "runtable.context",
    "Skip": "runtable.context",
    "Group": "runtable.context",
    "Pipeline": "runtable.context",
    "Database": "runtable.api",
    "Damnit": "runtable.api",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runtable' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
