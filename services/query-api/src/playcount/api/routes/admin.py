"""Operations that change state or show message bodies: they need API_KEY (X-API-Key).

Without API_KEY configured they answer 403: an operator must opt in to them.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request

from playcount.api.deps import AdminAccess, SettingsDep
from playcount.api.models import ErrorResponse, RedriveResponse
from playcount.api.params import StagePath
from playcount.api.problems import COMMON_ERRORS
from playcount.ops import dlq, replay

router = APIRouter(
    prefix="/ops",
    tags=["operations"],
    dependencies=[AdminAccess],
    responses={403: {"model": ErrorResponse, "description": "operations are disabled (no API_KEY)"}, **COMMON_ERRORS},
)


@router.get("/dlq/{stage}", response_model=list[dlq.DeadLetter])
async def dlq_peek(
    stage: StagePath,
    settings: SettingsDep,
    request: Request,
    max_messages: Annotated[int, Query(ge=1, le=100, description="how many to show")] = 10,
) -> list[dlq.DeadLetter]:
    """Up to `max_messages` dead letters of the stage, left in place (bodies cut to a preview)."""
    return await asyncio.to_thread(dlq.peek, settings, stage, max_messages, request.app.state.sqs)


@router.post("/dlq/{stage}/redrive", response_model=RedriveResponse)
async def dlq_redrive(
    stage: StagePath,
    settings: SettingsDep,
    request: Request,
    max_messages: Annotated[int | None, Query(ge=1, le=100_000, description="at most this many (default: all)")] = None,
) -> RedriveResponse:
    """Move the stage's dead letters back to its queue, after the cause is fixed (at least once)."""
    moved = await asyncio.to_thread(dlq.redrive, settings, stage, max_messages, request.app.state.sqs)
    return RedriveResponse(stage=stage, moved=moved)


@router.post("/quarantine/replay", response_model=replay.ReplayResult)
async def quarantine_replay(settings: SettingsDep, request: Request) -> replay.ReplayResult:
    """Send quarantined unknown-id rows that current metadata now knows through the pipeline again.

    One replay at a time per API process; a replay is idempotent (see `playcount.ops.replay`).
    """
    async with request.app.state.replay_lock:
        return await asyncio.to_thread(replay.replay_quarantine, settings)
