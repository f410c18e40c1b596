"""The folder's settings (``metameta``), read with their defaults
(:mod:`runtable.store.settings`)."""

from __future__ import annotations

import secrets
from typing import Any

from .. import settings
from ..errors import (
    ValidationError,
)
from .core import FolderCore


class FolderSettings(FolderCore):
    """Settings: reading (with defaults), setting, deleting; the proposal and the
    database's id."""

    def get_setting(self, key: str) -> Any:
        """A setting's stored value, or its default when it was never set."""
        setting = settings.lookup(key)
        row = self.conn.execute(
            "SELECT value FROM metameta WHERE key = ?", (setting.key,)
        ).fetchone()
        return settings.value_or_default(setting.key, row[0] if row is not None else None)

    def set_setting(self, key: str, value: Any) -> Any:
        """Validate and store a setting; returns the stored value."""
        setting = settings.lookup(key)
        if setting.readonly:
            raise ValidationError(f"{setting.key!r} is managed by runtable and cannot be set")
        parsed = setting.parse(value)
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO metameta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (setting.key, parsed),
            )
        return parsed

    def delete_setting(self, key: str) -> None:
        """Remove a stored setting (its default applies again)."""
        setting = settings.lookup(key)
        if setting.readonly or setting.key in ("db_id", "proposal"):
            raise ValidationError(f"{setting.key!r} cannot be deleted")
        with self.transaction() as conn:
            conn.execute("DELETE FROM metameta WHERE key = ?", (setting.key,))

    def settings(self) -> dict[str, Any]:
        """Every known setting with its value (stored or default)."""
        return settings.with_defaults(self.stored_settings())

    def stored_settings(self) -> dict[str, Any]:
        """The settings stored in this folder (``metameta``), without defaults."""
        return dict(self.conn.execute("SELECT key, value FROM metameta"))

    @property
    def proposal(self) -> int | None:
        value = self.get_setting("proposal")
        return int(value) if value is not None else None

    @property
    def db_id(self) -> str | None:
        return self.get_setting("db_id")

    def new_db_id(self) -> str:
        """Give this database a new random id (e.g. after copying a folder)."""
        db_id = secrets.token_hex(20)
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO metameta(key, value) VALUES ('db_id', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (db_id,),
            )
        return db_id
