"""The base of the store's errors, below every package that raises one.

``StoreError`` lives here rather than in :mod:`runtable.store.errors` (which builds its
hierarchy on it) because the execute package raises it too, for a value it could not
write to a fragment, and the execute package runs in jobs that never import the store.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class for problems with stored data: a database folder, or a value that could
    not be written to a fragment (recorded there as that variable's error)."""
