"""KPI lookups: a genre's day, a day's top genres and hours, and what exists.

Bodies are cached encoded (see `cache`): a hit costs a dictionary lookup and, when the client
sends the ETag it holds, a 304 without a body. A date's body is always one whole version, read
between two HEAD reads (`consistent.DateVersions.whole`); its cache entry is tagged with that
version and revalidated with the date's other entries by one HEAD read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status

from playcount.api import cursors
from playcount.api.deps import Reads, ReadsDep
from playcount.api.etag import Encoded, encode
from playcount.api.export import CSV_RESPONSE, Format, respond
from playcount.api.models import (
    DayEntry,
    DaysResponse,
    ErrorResponse,
    GenreDayResponse,
    GenresResponse,
    HoursResponse,
    RankingResponse,
    TopGenresResponse,
    TrendResponse,
)
from playcount.api.params import ClosedRange, Cursor, DatePath, DateRange, GenrePath, Limit, OpenRange
from playcount.api.problems import COMMON_ERRORS
from playcount.api.trends import whole_trend
from playcount.core.kpis import RANKING_CHUNK


@dataclass(frozen=True)
class Tagged:
    encoded: Encoded | None  # None: no data (a 404)
    version: int  # the date's committed version, read before the items


Build = Callable[[], Awaitable[tuple[Encoded | None, set[int]]]]


async def _for_date(reads: Reads, key: str, day: dt.date, build: Build) -> Tagged:
    """`build()`'s body for a lookup of `day`: one whole version, through the cache, revalidated by HEAD."""

    async def load() -> Tagged:
        encoded, version = await reads.versions.whole(day, build)
        return Tagged(encoded, version)

    if reads.cache.ttl <= 0:
        return await load()

    async def revalidate(old: Tagged) -> float | None:
        return await reads.versions.unchanged_since(day, old.version)

    tagged: Tagged = await reads.cache.get(key, load, revalidate)
    return tagged


router = APIRouter(tags=["kpis"], responses=COMMON_ERRORS)
STALE_CURSOR: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "the day was recomputed since the cursor was issued"}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "no data for this"},
    **CSV_RESPONSE,
}


# `:genre` (params.GenreSegments): a genre may hold `/` (`hip-hop/rap`) and the server decodes `%2F`
# before routing; a date never holds `/`, so the last `/days/{date}` is the date, the rest the genre
@router.get("/genres/{genre:genre}/days/{date}", response_model=GenreDayResponse, responses=NOT_FOUND)
async def genre_day(
    genre: GenrePath, date: DatePath, reads: ReadsDep, request: Request, format: Format = None
) -> Response:
    """A genre's KPIs on one UTC day, with its top songs (the genre's name percent-encoded, any case)."""

    async def load() -> tuple[Encoded | None, set[int]]:
        found, versions = await reads.store.genre_day(genre, date)
        if found is None:
            return None, versions
        day, version, computed_at = found
        body = GenreDayResponse(date=date, version=version, computed_at=computed_at, **day.model_dump())
        return encode(body.model_dump(mode="json")), versions

    encoded = (await _for_date(reads, f"genre-day:{genre}:{date}", date, load)).encoded
    if encoded is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no KPIs for genre {genre!r} on {date.isoformat()} (GET /days lists the days and genres with data)",
        )
    return respond(request, encoded, reads.cache.ttl, format, GenreDayResponse, "top_songs", nested=True)


@router.get("/days/{date}/top-genres", response_model=TopGenresResponse, responses=NOT_FOUND)
async def top_genres(date: DatePath, reads: ReadsDep, request: Request, format: Format = None) -> Response:
    """The day's top genres by listens (rank 1 first; ties broken by genre name)."""

    async def load() -> tuple[Encoded | None, set[int]]:
        ranks, versions = await reads.store.top_genres(date)
        body = encode(TopGenresResponse(date=date, genres=ranks).model_dump(mode="json")) if ranks else None
        return body, versions

    encoded = (await _for_date(reads, f"top-genres:{date}", date, load)).encoded
    if encoded is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _no_day(date))
    return respond(request, encoded, reads.cache.ttl, format, TopGenresResponse, "genres")


@router.get("/days/{date}/hours", response_model=HoursResponse, responses=NOT_FOUND)
async def hours(date: DatePath, reads: ReadsDep, request: Request, format: Format = None) -> Response:
    """The day's engagement per UTC hour (hours without listens are absent)."""

    async def load() -> tuple[Encoded | None, set[int]]:
        found, versions = await reads.store.hours(date)
        body = encode(HoursResponse(date=date, hours=found).model_dump(mode="json")) if found else None
        return body, versions

    encoded = (await _for_date(reads, f"hours:{date}", date, load)).encoded
    if encoded is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _no_day(date))
    return respond(request, encoded, reads.cache.ttl, format, HoursResponse, "hours")


def _no_day(date: dt.date) -> str:
    return f"no KPIs for {date.isoformat()} (GET /days lists the days)"


@router.get("/days/{date}/genres", response_model=RankingResponse, responses={**NOT_FOUND, **STALE_CURSOR})
async def ranking(
    date: DatePath,
    reads: ReadsDep,
    request: Request,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = None,
) -> Response:
    """Every genre of the day, ranked as the top five are (most listens first, ties by genre name), a page
    at a time: `next_cursor` continues where the page ends, within the same version of the day."""
    page = cursors.decode(cursor) if cursor is not None else cursors.Page(version=None, offset=0)

    async def load() -> tuple[Encoded | None, set[int]]:
        chunks = (page.offset // RANKING_CHUNK, (page.offset + limit - 1) // RANKING_CHUNK)
        found, versions = await reads.store.ranking(date, *chunks)
        if found is None or page.offset >= found.total:
            return None, versions
        first = chunks[0] * RANKING_CHUNK
        genres = found.genres[page.offset - first : page.offset - first + limit]
        more = page.offset + limit < found.total
        body = RankingResponse(
            date=date,
            version=found.version,
            computed_at=found.computed_at,
            listens=found.listens,
            total=found.total,
            genres=genres,
            next_cursor=cursors.encode(cursors.Page(found.version, page.offset + limit)) if more else None,
        )
        return encode(body.model_dump(mode="json")), versions

    tagged = await _for_date(reads, f"ranking:{date}:{page.offset}:{limit}", date, load)
    if page.version is not None and tagged.version != page.version:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{date.isoformat()} was recomputed since this cursor was issued (version {page.version}, now "
            f"{tagged.version}): start again without a cursor",
        )
    if tagged.encoded is None:
        where = "beyond the day's ranking" if page.offset else "for this day"
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ranked genres {where} ({_no_day(date)})")
    return respond(request, tagged.encoded, reads.cache.ttl, format, RankingResponse, "genres")


@router.get("/genres/{genre:genre}/days", response_model=TrendResponse, responses=NOT_FOUND)
async def trend(
    genre: GenrePath, reads: ReadsDep, request: Request, span: ClosedRange, format: Format = None
) -> Response:
    """The genre's daily KPIs from `from` to `to` (both included, at most 366 days), oldest first, each
    with its rank that day and the version it belongs to; days without the genre are absent."""
    first, last = span.first, span.last
    assert first is not None and last is not None

    async def load() -> Encoded | None:
        days = await whole_trend(reads.store, genre, first, last)
        # two queries whatever the range; an empty range also asks the days list (cached) whether the genre exists
        if not days and genre not in {g for d in await _days(reads, DateRange(None, None)) for g in d.genres}:
            return None
        return encode(
            TrendResponse(genre=genre, from_=first, to=last, days=days).model_dump(mode="json", by_alias=True)
        )

    encoded = await reads.cache.get(f"trend:{genre}:{first}:{last}", load)
    if encoded is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no day has KPIs for genre {genre!r} (GET /genres lists the genres with data)"
        )
    return respond(request, encoded, reads.cache.ttl, format, TrendResponse, "days")


async def _days(reads: ReadsDep, span: DateRange) -> list[DayEntry]:
    async def load() -> list[DayEntry]:
        entries = [
            DayEntry(
                date=dt.date.fromisoformat(str(i["date"])),
                version=int(i["version"]),
                computed_at=i.get("computed_at"),
                events=int(i.get("events", 0)),
                listens=int(i.get("events", 0)),  # every distinct event of the day is a listen
                unique_listeners=int(i["unique_listeners"]) if "unique_listeners" in i else None,
                genres=sorted(i.get("genres", [])),
            )
            for i in await reads.store.days(span.first, span.last)
        ]
        return [e for e in entries if e.events > 0]

    return await reads.cache.get(f"days:{span.first}:{span.last}", load)


@router.get("/days", response_model=DaysResponse, responses=CSV_RESPONSE)
async def days(reads: ReadsDep, request: Request, span: OpenRange, format: Format = None) -> Response:
    """Every day with data (from `from` to `to` when given, both included), oldest first: its version,
    listens, unique listeners and genres."""
    entries = await _days(reads, span)
    encoded = encode(DaysResponse(days=entries).model_dump(mode="json"))
    return respond(request, encoded, reads.cache.ttl, format, DaysResponse, "days")


@router.get("/genres", response_model=GenresResponse, responses=CSV_RESPONSE)
async def genres(reads: ReadsDep, request: Request, format: Format = None) -> Response:
    """Every genre with data on at least one day."""
    names = sorted({g for d in await _days(reads, DateRange(None, None)) for g in d.genres})
    encoded = encode(GenresResponse(genres=names).model_dump(mode="json"))
    return respond(request, encoded, reads.cache.ttl, format, GenresResponse, "genres")
