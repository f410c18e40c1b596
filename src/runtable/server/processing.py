"""Processing control: reprocess runs, list and cancel jobs, follow logs, delete variables, pre-create rows."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api")
