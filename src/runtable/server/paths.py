"""What the routes' paths name: run numbers and ids, and the proposal a run number
stands for in this folder."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path as PathParam

from ..store.uservars import INT64_MAX
from .access import FolderAccess
from .problems import HTTPProblem

#: A run number or an id in a path: what SQLite's INTEGER holds (beyond: 422, no crash).
RunPath = Annotated[int, PathParam(ge=0, le=INT64_MAX, description="run number")]
IdPath = Annotated[int, PathParam(ge=0, le=INT64_MAX, description="id")]


def proposal_of(folder: FolderAccess, run: int) -> int:
    """The proposal of run number ``run`` in this table; a 404 answer if it has none."""
    proposal = folder.run_proposal(run)
    if proposal is None:
        raise HTTPProblem(404, f"Run {run} is not in this table")
    return proposal
