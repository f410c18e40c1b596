"""The context file: read, validate, save with history, roll back."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api")
