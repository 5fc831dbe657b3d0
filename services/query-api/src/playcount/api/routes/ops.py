"""Operations: liveness, readiness, pipeline status, file reports, Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, HTTPException, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from playcount.api.deps import ReadAccess, S3Dep, SettingsDep, StoreDep
from playcount.api.models import ErrorResponse, Health, PipelineStatus, QueueStatus
from playcount.api.params import FileIdPath
from playcount.core import lake, pipeline
from playcount.core.ledger import parse_counters
from playcount.core.reports import FileReport

router = APIRouter(tags=["ops"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses={503: {"model": ErrorResponse}})
async def ready(store: StoreDep) -> Health:
    try:
        await asyncio.wait_for(store.ping(), timeout=2.0)
    except (TimeoutError, ClientError, BotoCoreError, OSError) as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"DynamoDB is not reachable: {exc}") from exc
    return Health(status="ready")


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/pipeline/status",
    response_model=PipelineStatus,
    dependencies=[ReadAccess],
    responses={503: {"model": ErrorResponse}},
)
async def pipeline_status(settings: SettingsDep, store: StoreDep) -> PipelineStatus:
    try:
        depths = await asyncio.to_thread(pipeline.queue_depths, settings)
        counters_item, freshness = await store.counters_and_freshness()
    except (ClientError, BotoCoreError, OSError) as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"AWS is not reachable: {exc}") from exc
    counters = parse_counters(counters_item)
    return PipelineStatus(
        idle=all(q.empty for q in depths),
        queues=[QueueStatus(**q.model_dump()) for q in depths],
        dlq_total=sum(q.dlq_depth for q in depths),
        freshness_lag_seconds=float(freshness["lag_seconds"]) if freshness else None,
        freshness_measured_at=str(freshness["at"]) if freshness else None,
        **counters,
    )


@router.get(
    "/files/{file_id}", response_model=FileReport, dependencies=[ReadAccess], responses={404: {"model": ErrorResponse}}
)
async def file_report(file_id: FileIdPath, settings: SettingsDep, s3: S3Dep) -> Any:
    try:
        obj = await s3.get_object(Bucket=settings.s3_bucket, Key=lake.report_key(settings, file_id))
        body = await obj["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report for file {file_id}") from exc
        raise
    return FileReport.model_validate_json(body)
