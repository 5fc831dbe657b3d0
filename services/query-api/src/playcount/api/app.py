"""The FastAPI application: one lifespan owns the AWS clients and the history sampler."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import boto3
from aiobotocore.config import AioConfig
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from playcount.api import problems
from playcount.api.cache import TtlCache
from playcount.api.config import ApiSettings
from playcount.api.consistent import DateVersions
from playcount.api.history import History, sampling
from playcount.api.routes import admin, kpis, ops, pages
from playcount.api.security import BodyLimit, SecurityHeaders
from playcount.api.status import StatusProbe
from playcount.api.store import KpiStore
from playcount.api.telemetry import Telemetry
from playcount.core import aws

# A request waits for AWS at most a few seconds, then gets a 503: the shared clients retry 8
# times (right for workers, wrong for an HTTP client that is waiting on us). An AioConfig, which
# the aioboto3 clients' stubs ask for, is a botocore Config too: the sync SQS client takes it as is.
CLIENT_CONFIG = AioConfig(
    retries={"max_attempts": 2, "mode": "standard"},
    connect_timeout=2,
    read_timeout=5,
    max_pool_connections=64,
)


def document_open_reads(app: FastAPI, settings: ApiSettings) -> None:
    """While API_READ_KEY is unset the key is optional on reads: say so in the schema (`{}` = none)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            if settings.api_read_key is None:
                for path, item in schema["paths"].items():
                    for operation in item.values():
                        if "security" in operation and not path.startswith("/ops/"):
                            operation["security"] = [{}, *operation["security"]]
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: ApiSettings | None = None, *, history: History | None = None) -> FastAPI:
    """The API for `settings`; `history` sets how often the dashboard's history is sampled."""
    settings = settings or ApiSettings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        session = aws.async_session()
        region, endpoint = settings.aws_region, settings.aws_endpoint_url
        async with AsyncExitStack() as stack:
            ddb = await stack.enter_async_context(
                session.client("dynamodb", config=CLIENT_CONFIG, region_name=region, endpoint_url=endpoint)
            )
            app.state.s3 = await stack.enter_async_context(
                session.client("s3", config=CLIENT_CONFIG, region_name=region, endpoint_url=endpoint)
            )
            # for shared sync helpers
            app.state.sqs = boto3.client("sqs", config=CLIENT_CONFIG, region_name=region, endpoint_url=endpoint)
            stack.callback(app.state.sqs.close)
            app.state.store = KpiStore(ddb, settings.dynamodb_table_name)
            app.state.versions = DateVersions(ddb, settings.dynamodb_table_name, settings.api_cache_seconds / 4)
            app.state.probe = StatusProbe(
                settings, app.state.store, app.state.sqs, TtlCache(settings.api_status_seconds)
            )
            await stack.enter_async_context(sampling(app.state.history, app.state.probe.read))
            # what start-up built lives as long as the process: keep it out of the collector's
            # full passes, whose pauses land on the requests in flight (p99)
            gc.freeze()
            yield

    app = FastAPI(
        title="Playcount query API",
        version="0.2.0",
        description=(
            "Daily music-streaming KPIs per genre, day and hour, plus pipeline status, metrics and a "
            "dashboard (`/dashboard`). Reads are open unless API_READ_KEY is set; operations that change "
            "state need API_KEY in the `X-API-Key` header. KPI responses carry an ETag and "
            "`Cache-Control: max-age=API_CACHE_SECONDS`: a new version of a date is served within that time."
        ),
        lifespan=lifespan,
        # no 307 from /x/ to /x: a trailing slash is a path that does not exist (a plain 404),
        # and a redirect built from a decoded path can re-encode it into another one
        redirect_slashes=False,
        # /docs is served from the vendored Swagger UI (routes.pages); ReDoc would need a CDN
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.cache = TtlCache(settings.api_cache_seconds)
    app.state.history = history or History()
    app.state.replay_lock = asyncio.Lock()
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(Telemetry)
    problems.install(app)
    app.include_router(kpis.router)
    app.include_router(ops.router)
    app.include_router(admin.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    document_open_reads(app, settings)
    return app
