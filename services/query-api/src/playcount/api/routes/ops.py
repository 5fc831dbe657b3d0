"""Operations: liveness, readiness, pipeline status and history, file reports, Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, HTTPException, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from playcount.api import telemetry
from playcount.api.deps import CacheDep, HistoryDep, ProbeDep, ReadAccess, S3Dep, SettingsDep, StoreDep
from playcount.api.models import ErrorResponse, Health, HistoryResponse, PipelineStatus
from playcount.api.params import FileIdPath
from playcount.api.problems import COMMON_ERRORS
from playcount.core import lake
from playcount.core.reports import FileReport
from playcount.core.s3 import is_missing

router = APIRouter(tags=["ops"])
READY_TIMEOUT_SECONDS = 2.0


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Liveness: the process answers (it does not look at dependencies)."""
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses={503: {"model": ErrorResponse}})
async def ready(store: StoreDep) -> Health:
    """Readiness: the KPI table answers within 2 s; 503 otherwise."""
    try:
        await asyncio.wait_for(store.ping(), timeout=READY_TIMEOUT_SECONDS)
    except (TimeoutError, ClientError, BotoCoreError, OSError) as exc:
        reason = str(exc) or f"no answer within {READY_TIMEOUT_SECONDS:g} s"
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"DynamoDB is not reachable: {reason}") from exc
    return Health(status="ready")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}, "description": "metrics"}},
)
async def metrics(probe: ProbeDep, cache: CacheDep) -> Response:
    """Prometheus text format: requests and latencies per route; queue, DLQ, counter and freshness gauges.

    The pipeline gauges are refreshed at each scrape (from a status at most API_STATUS_SECONDS old);
    when AWS cannot be reached they keep their last values and `playcount_api_pipeline_status_up` is 0.
    """
    telemetry.publish_cache(cache)
    try:
        telemetry.publish(await probe.read())
    except (ClientError, BotoCoreError, OSError):
        telemetry.publish(None)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/pipeline/status", response_model=PipelineStatus, dependencies=[ReadAccess], responses=COMMON_ERRORS)
async def pipeline_status(probe: ProbeDep) -> PipelineStatus:
    """Counters, queue and DLQ depths, idle flag and freshness lag (at most API_STATUS_SECONDS old)."""
    return await probe.read()


@router.get("/pipeline/history", response_model=HistoryResponse, dependencies=[ReadAccess], responses=COMMON_ERRORS)
async def pipeline_history(history: HistoryDep) -> HistoryResponse:
    """Samples of the status since this process started (see the dashboard); oldest first."""
    return HistoryResponse(interval_seconds=history.interval, capacity=history.capacity, samples=history.samples())


@router.get(
    "/files/{file_id}",
    response_model=FileReport,
    dependencies=[ReadAccess],
    responses={404: {"model": ErrorResponse}, **COMMON_ERRORS},
)
async def file_report(file_id: FileIdPath, settings: SettingsDep, s3: S3Dep) -> Any:
    """A file's validation report: accepted or rejected, why, and what became of its rows."""
    try:
        obj = await s3.get_object(Bucket=settings.s3_bucket, Key=lake.report_key(settings, file_id))
        body = await obj["Body"].read()
    except ClientError as exc:
        if is_missing(exc):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report for file {file_id}") from exc
        raise
    try:
        return FileReport.model_validate_json(body)
    except ValidationError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"the stored report of {file_id} is unreadable") from exc
