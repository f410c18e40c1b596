"""Exceptions raised by the store."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for problems with a database folder."""


class UnsupportedVersionError(StoreError):
    """The database uses a data format this version of runtable cannot open."""


class ReadOnlyError(StoreError):
    """A write was attempted on a database folder opened read-only."""


class ValidationError(StoreError, ValueError):
    """A value given by a person (setting, user variable, name) is not acceptable."""
