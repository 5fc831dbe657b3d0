"""Typed dependencies: settings, the KPI store, the S3 client, the cache, API keys."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request, status

from playcount.api.cache import TtlCache
from playcount.api.store import KpiStore
from playcount.core.config import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> KpiStore:
    return request.app.state.store


def get_cache(request: Request) -> TtlCache:
    return request.app.state.cache


def get_s3(request: Request) -> Any:
    return request.app.state.s3


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[KpiStore, Depends(get_store)]
CacheDep = Annotated[TtlCache, Depends(get_cache)]
S3Dep = Annotated[Any, Depends(get_s3)]


def _check(expected: str | None, given: str | None) -> None:
    if expected is None:
        return
    if given is None or not secrets.compare_digest(expected.encode(), given.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid X-API-Key header is required")


def require_read_key(settings: SettingsDep, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """Reads are open unless API_READ_KEY is set."""
    _check(settings.api_read_key, x_api_key) if settings.api_read_key else None


def require_admin_key(settings: SettingsDep, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """State-changing operations need API_KEY; without one configured they are disabled."""
    if settings.api_key is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "operations are disabled: set API_KEY to enable them")
    _check(settings.api_key, x_api_key)


ReadAccess = Depends(require_read_key)
AdminAccess = Depends(require_admin_key)
