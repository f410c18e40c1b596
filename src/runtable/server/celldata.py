"""A cell's full data for previews and plots (`GET /api/cell/{run}/{name}/data`)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api")
