"""The FastAPI application: one lifespan owns the AWS clients; routers per resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from playcount.api.cache import TtlCache
from playcount.api.routes import kpis, ops
from playcount.api.store import KpiStore
from playcount.api.telemetry import measure
from playcount.core import aws
from playcount.core.config import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        session = aws.async_session()
        async with AsyncExitStack() as stack:
            ddb = await stack.enter_async_context(aws.async_client(session, settings, "dynamodb"))
            app.state.s3 = await stack.enter_async_context(aws.async_client(session, settings, "s3"))
            app.state.store = KpiStore(ddb, settings.dynamodb_table_name)
            yield

    app = FastAPI(
        title="Playcount query API",
        version="0.1.0",
        description="Daily music-streaming KPIs per genre, day and hour, plus pipeline status.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.cache = TtlCache(settings.api_cache_seconds)
    app.middleware("http")(measure)
    app.include_router(kpis.router)
    app.include_router(ops.router)
    return app
