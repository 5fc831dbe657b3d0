"""KPI lookups: a genre's day, a day's top genres and hours, and what exists.

Bodies are cached encoded (see `cache`): a hit costs a dictionary lookup and, when the client
sends the ETag it holds, a 304 without a body.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status

from playcount.api.deps import CacheDep, ReadAccess, StoreDep
from playcount.api.errors import COMMON_ERRORS
from playcount.api.etag import Encoded, cached_json, encode
from playcount.api.models import (
    DayEntry,
    DaysResponse,
    ErrorResponse,
    GenreDayResponse,
    GenresResponse,
    HoursResponse,
    TopGenresResponse,
)
from playcount.api.params import DatePath, GenrePath

router = APIRouter(tags=["kpis"], dependencies=[ReadAccess], responses=COMMON_ERRORS)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "no data for this"}}


@router.get("/genres/{genre}/days/{date}", response_model=GenreDayResponse, responses=NOT_FOUND)
async def genre_day(genre: GenrePath, date: DatePath, store: StoreDep, cache: CacheDep, request: Request) -> Response:
    """A genre's KPIs on one UTC day, with its top songs."""

    async def load() -> Encoded | None:
        found = await store.genre_day(genre, date)
        if found is None:
            return None
        day, version, computed_at = found
        body = GenreDayResponse(date=date, version=version, computed_at=computed_at, **day.model_dump())
        return encode(body.model_dump(mode="json"))

    encoded = await cache.get(f"genre-day:{genre}:{date}", load)
    if encoded is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no KPIs for genre {genre!r} on {date.isoformat()} (GET /days lists the days and genres with data)",
        )
    return cached_json(request, encoded, cache.ttl)


@router.get("/days/{date}/top-genres", response_model=TopGenresResponse, responses=NOT_FOUND)
async def top_genres(date: DatePath, store: StoreDep, cache: CacheDep, request: Request) -> Response:
    """The day's top genres by listens (rank 1 first; ties broken by genre name)."""

    async def load() -> Encoded | None:
        ranks = await store.top_genres(date)
        return encode(TopGenresResponse(date=date, genres=ranks).model_dump(mode="json")) if ranks else None

    encoded = await cache.get(f"top-genres:{date}", load)
    if encoded is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no KPIs for {date.isoformat()} (GET /days lists the days)")
    return cached_json(request, encoded, cache.ttl)


@router.get("/days/{date}/hours", response_model=HoursResponse, responses=NOT_FOUND)
async def hours(date: DatePath, store: StoreDep, cache: CacheDep, request: Request) -> Response:
    """The day's engagement per UTC hour (hours without listens are absent)."""

    async def load() -> Encoded | None:
        found = await store.hours(date)
        return encode(HoursResponse(date=date, hours=found).model_dump(mode="json")) if found else None

    encoded = await cache.get(f"hours:{date}", load)
    if encoded is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no KPIs for {date.isoformat()} (GET /days lists the days)")
    return cached_json(request, encoded, cache.ttl)


async def _days(store: StoreDep, cache: CacheDep) -> list[DayEntry]:
    async def load() -> list[DayEntry]:
        entries = [
            DayEntry(
                date=dt.date.fromisoformat(str(i["date"])),
                version=int(i["version"]),
                events=int(i.get("events", 0)),
                genres=sorted(i.get("genres", [])),
            )
            for i in await store.days()
        ]
        return [e for e in entries if e.events > 0]

    return await cache.get("days", load)


@router.get("/days", response_model=DaysResponse)
async def days(store: StoreDep, cache: CacheDep, request: Request) -> Response:
    """Every day with data, oldest first, with its version, event count and genres."""
    entries = await _days(store, cache)
    return cached_json(request, encode(DaysResponse(days=entries).model_dump(mode="json")), cache.ttl)


@router.get("/genres", response_model=GenresResponse)
async def genres(store: StoreDep, cache: CacheDep, request: Request) -> Response:
    """Every genre with data on at least one day."""
    names = sorted({g for d in await _days(store, cache) for g in d.genres})
    return cached_json(request, encode(GenresResponse(genres=names).model_dump(mode="json")), cache.ttl)
