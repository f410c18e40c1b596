"""Exceptions raised by the store."""

from __future__ import annotations

from ..errors import StoreError

__all__ = ["DamagedDatabase", "EditConflict", "ReadOnlyError", "StoreError",
           "UnsupportedVersionError", "ValidationError"]


class UnsupportedVersionError(StoreError):
    """The database uses a data format this version of runtable cannot open."""


class ReadOnlyError(StoreError):
    """A write was attempted on a database folder opened read-only."""


class ValidationError(StoreError, ValueError):
    """A value given by a person (setting, user variable, name) is not acceptable."""


class EditConflict(StoreError):
    """An edit made on a value that someone else has changed since; ``current`` is the
    value stored now (nothing was changed)."""

    def __init__(self, message: str, current: object) -> None:
        super().__init__(message)
        self.current = current


class DamagedDatabase(StoreError):
    """``runs.sqlite`` cannot be read as a database (truncated, overwritten, empty).
    Nothing was changed."""

    def __init__(self, db_path: object, reason: object) -> None:
        super().__init__(
            f"{db_path} is damaged ({reason}): runtable cannot read it, and changed "
            "nothing. Restore it from a backup (the per-run files in extracted_data/ "
            "and the context file are not affected), or move it away and make a new "
            "one with `runtable init`.")
