"""KPI lookups: a genre's day, a day's top genres and hours, and what exists.

Bodies are cached encoded (see `cache`): a hit costs a dictionary lookup and, when the client
sends the ETag it holds, a 304 without a body. A date's body is always one whole version, read
between two HEAD reads (`versions.DateVersions.whole`); its cache entry is tagged with that
version and revalidated with the date's other entries by one HEAD read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status

from playcount.api.deps import Reads, ReadsDep
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


@dataclass(frozen=True)
class Tagged:
    encoded: Encoded | None  # None: no data (a 404)
    version: int  # the date's committed version, read before the items


Build = Callable[[], Awaitable[tuple[Encoded | None, set[int]]]]


async def _for_date(reads: Reads, key: str, day: dt.date, build: Build) -> Any:
    """`build()`'s body for a lookup of `day`: one whole version, through the cache, revalidated by HEAD."""
    if reads.cache.ttl <= 0:
        encoded, _ = await reads.versions.whole(day, build)
        return encoded

    async def load() -> Tagged:
        encoded, version = await reads.versions.whole(day, build)
        return Tagged(encoded, version)

    async def revalidate(old: Tagged) -> float | None:
        return await reads.versions.unchanged_since(day, old.version)

    tagged: Tagged = await reads.cache.get(key, load, revalidate)
    return tagged.encoded


router = APIRouter(tags=["kpis"], responses=COMMON_ERRORS)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "no data for this"}}


# `:genre` (params.GenreSegments): a genre may hold `/` (`hip-hop/rap`) and the server decodes `%2F`
# before routing; a date never holds `/`, so the last `/days/{date}` is the date, the rest the genre
@router.get("/genres/{genre:genre}/days/{date}", response_model=GenreDayResponse, responses=NOT_FOUND)
async def genre_day(genre: GenrePath, date: DatePath, reads: ReadsDep, request: Request) -> Response:
    """A genre's KPIs on one UTC day, with its top songs (the genre's name percent-encoded, any case)."""

    async def load() -> tuple[Encoded | None, set[int]]:
        found, versions = await reads.store.genre_day(genre, date)
        if found is None:
            return None, versions
        day, version, computed_at = found
        body = GenreDayResponse(date=date, version=version, computed_at=computed_at, **day.model_dump())
        return encode(body.model_dump(mode="json")), versions

    encoded = await _for_date(reads, f"genre-day:{genre}:{date}", date, load)
    if encoded is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no KPIs for genre {genre!r} on {date.isoformat()} (GET /days lists the days and genres with data)",
        )
    return cached_json(request, encoded, reads.cache.ttl)


@router.get("/days/{date}/top-genres", response_model=TopGenresResponse, responses=NOT_FOUND)
async def top_genres(date: DatePath, reads: ReadsDep, request: Request) -> Response:
    """The day's top genres by listens (rank 1 first; ties broken by genre name)."""

    async def load() -> tuple[Encoded | None, set[int]]:
        ranks, versions = await reads.store.top_genres(date)
        body = encode(TopGenresResponse(date=date, genres=ranks).model_dump(mode="json")) if ranks else None
        return body, versions

    encoded = await _for_date(reads, f"top-genres:{date}", date, load)
    if encoded is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no KPIs for {date.isoformat()} (GET /days lists the days)")
    return cached_json(request, encoded, reads.cache.ttl)


@router.get("/days/{date}/hours", response_model=HoursResponse, responses=NOT_FOUND)
async def hours(date: DatePath, reads: ReadsDep, request: Request) -> Response:
    """The day's engagement per UTC hour (hours without listens are absent)."""

    async def load() -> tuple[Encoded | None, set[int]]:
        found, versions = await reads.store.hours(date)
        body = encode(HoursResponse(date=date, hours=found).model_dump(mode="json")) if found else None
        return body, versions

    encoded = await _for_date(reads, f"hours:{date}", date, load)
    if encoded is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no KPIs for {date.isoformat()} (GET /days lists the days)")
    return cached_json(request, encoded, reads.cache.ttl)


async def _days(reads: ReadsDep) -> list[DayEntry]:
    async def load() -> list[DayEntry]:
        entries = [
            DayEntry(
                date=dt.date.fromisoformat(str(i["date"])),
                version=int(i["version"]),
                events=int(i.get("events", 0)),
                genres=sorted(i.get("genres", [])),
            )
            for i in await reads.store.days()
        ]
        return [e for e in entries if e.events > 0]

    return await reads.cache.get("days", load)


@router.get("/days", response_model=DaysResponse)
async def days(reads: ReadsDep, request: Request) -> Response:
    """Every day with data, oldest first, with its version, event count and genres."""
    entries = await _days(reads)
    return cached_json(request, encode(DaysResponse(days=entries).model_dump(mode="json")), reads.cache.ttl)


@router.get("/genres", response_model=GenresResponse)
async def genres(reads: ReadsDep, request: Request) -> Response:
    """Every genre with data on at least one day."""
    names = sorted({g for d in await _days(reads) for g in d.genres})
    return cached_json(request, encode(GenresResponse(genres=names).model_dump(mode="json")), reads.cache.ttl)
