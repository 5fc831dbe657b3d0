"""KPI lookups: a genre's day, a day's top genres and hours, and what exists."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status

from playcount.api.deps import CacheDep, ReadAccess, StoreDep
from playcount.api.etag import cached_json
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

router = APIRouter(tags=["kpis"], dependencies=[ReadAccess])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}}


@router.get("/genres/{genre}/days/{date}", response_model=GenreDayResponse, responses=NOT_FOUND)
async def genre_day(genre: GenrePath, date: DatePath, store: StoreDep, cache: CacheDep, request: Request) -> Response:
    async def load() -> dict[str, Any] | None:
        found = await store.genre_day(genre, date)
        if found is None:
            return None
        day, version, computed_at = found
        return GenreDayResponse(date=date, version=version, computed_at=computed_at, **day.model_dump()).model_dump(
            mode="json"
        )

    body = await cache.get(f"genre-day:{genre}:{date}", load)
    if body is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no KPIs for genre {genre!r} on {date.isoformat()}")
    return cached_json(request, body, cache.ttl)


@router.get("/days/{date}/top-genres", response_model=TopGenresResponse, responses=NOT_FOUND)
async def top_genres(date: DatePath, store: StoreDep, cache: CacheDep, request: Request) -> Response:
    async def load() -> dict[str, Any]:
        ranks = await store.top_genres(date)
        return TopGenresResponse(date=date, genres=ranks).model_dump(mode="json")

    body = await cache.get(f"top-genres:{date}", load)
    if not body["genres"]:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no KPIs for {date.isoformat()}")
    return cached_json(request, body, cache.ttl)


@router.get("/days/{date}/hours", response_model=HoursResponse, responses=NOT_FOUND)
async def hours(date: DatePath, store: StoreDep, cache: CacheDep, request: Request) -> Response:
    async def load() -> dict[str, Any]:
        return HoursResponse(date=date, hours=await store.hours(date)).model_dump(mode="json")

    body = await cache.get(f"hours:{date}", load)
    if not body["hours"]:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no KPIs for {date.isoformat()}")
    return cached_json(request, body, cache.ttl)


async def _days(store: StoreDep, cache: CacheDep) -> list[DayEntry]:
    async def load() -> list[dict[str, Any]]:
        items = await store.days()
        return [
            DayEntry(
                date=dt.date.fromisoformat(str(i["date"])),
                version=int(i["version"]),
                events=int(i.get("events", 0)),
                genres=sorted(i.get("genres", [])),
            ).model_dump(mode="json")
            for i in items
            if int(i.get("events", 0)) > 0
        ]

    return [DayEntry.model_validate(d) for d in await cache.get("days", load)]


@router.get("/days", response_model=DaysResponse)
async def days(store: StoreDep, cache: CacheDep, request: Request) -> Response:
    entries = await _days(store, cache)
    return cached_json(request, DaysResponse(days=entries).model_dump(mode="json"), cache.ttl)


@router.get("/genres", response_model=GenresResponse)
async def genres(store: StoreDep, cache: CacheDep, request: Request) -> Response:
    entries = await _days(store, cache)
    names = sorted({g for d in entries for g in d.genres})
    return cached_json(request, GenresResponse(genres=names).model_dump(mode="json"), cache.ttl)
