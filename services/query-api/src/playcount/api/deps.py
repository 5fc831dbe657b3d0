"""Typed dependencies: settings, the KPI store, the S3 client, the cache, status, history, API keys.

Every dependency is `async def` although none awaits: FastAPI runs plain `def` dependencies in
a worker thread, which on the hot path cost more than the whole cached lookup.

API keys travel in the `X-API-Key` header (declared as a security scheme, so /docs can send it):
- reads are open unless API_READ_KEY is set; then they need that key (or API_KEY);
- state-changing operations need API_KEY, and are disabled (403) when none is configured.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from playcount.api.cache import TtlCache
from playcount.api.config import ApiSettings
from playcount.api.consistent import DateVersions
from playcount.api.history import History
from playcount.api.status import StatusProbe
from playcount.api.store import KpiStore

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client


async def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


async def get_store(request: Request) -> KpiStore:
    return request.app.state.store


async def get_cache(request: Request) -> TtlCache:
    return request.app.state.cache


async def get_s3(request: Request) -> S3Client:
    return request.app.state.s3


async def get_probe(request: Request) -> StatusProbe:
    return request.app.state.probe


async def get_history(request: Request) -> History:
    return request.app.state.history


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
StoreDep = Annotated[KpiStore, Depends(get_store)]
CacheDep = Annotated[TtlCache, Depends(get_cache)]
if TYPE_CHECKING:
    S3Dep = Annotated[S3Client, Depends(get_s3)]
else:  # FastAPI reads this alias at run time, where the (dev-only) stubs are not installed
    S3Dep = Annotated[Any, Depends(get_s3)]
ProbeDep = Annotated[StatusProbe, Depends(get_probe)]
HistoryDep = Annotated[History, Depends(get_history)]

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="API_READ_KEY or API_KEY for reads (when reads are closed); API_KEY for operations",
)
ApiKey = Annotated[str | None, Security(api_key_header)]


def _same(expected: str, given: str | None) -> bool:
    return given is not None and secrets.compare_digest(expected.encode(), given.encode())


def _check_read_key(settings: ApiSettings, api_key: str | None) -> None:
    if settings.api_read_key is None:
        return
    if _same(settings.api_read_key, api_key) or (settings.api_key is not None and _same(settings.api_key, api_key)):
        return
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "reads are closed: send a valid X-API-Key header")


async def require_read_key(settings: SettingsDep, api_key: ApiKey) -> None:
    """Reads are open unless API_READ_KEY is set; the admin key opens them too."""
    _check_read_key(settings, api_key)


@dataclass(frozen=True)
class Reads:
    """What a KPI lookup needs, in one dependency (each dependency costs time on the hot path)."""

    store: KpiStore
    cache: TtlCache
    versions: DateVersions


async def kpi_reads(request: Request, api_key: ApiKey) -> Reads:
    """The read key check (as `require_read_key`) and the store and cache."""
    state = request.app.state
    _check_read_key(state.settings, api_key)
    return Reads(state.store, state.cache, state.versions)


ReadsDep = Annotated[Reads, Depends(kpi_reads)]


async def require_admin_key(settings: SettingsDep, api_key: ApiKey) -> None:
    """State-changing operations need API_KEY; without one configured they are disabled."""
    if settings.api_key is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "operations are disabled: set API_KEY to enable them")
    if not _same(settings.api_key, api_key):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "this operation needs a valid X-API-Key header")


ReadAccess = Depends(require_read_key)
AdminAccess = Depends(require_admin_key)
