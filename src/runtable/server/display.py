"""``GET /api/display``: how the page shows what it shows, from the folder's settings
(the time zone of timestamps), so that the GUI, its exports, ``runtable table`` and
``Database.table()`` agree."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

router = APIRouter(prefix="/api", tags=["table"])


class DisplayOut(BaseModel):
    """The display settings of the folder."""

    timezone: str = Field(description="IANA name of the zone times are shown in "
                          "(setting `timezone`)")


@router.get("/display", response_model=DisplayOut)
def display(request: Request) -> DisplayOut:
    """The folder's display settings."""
    return DisplayOut(timezone=request.app.state.folder.reader().get_setting("timezone"))
