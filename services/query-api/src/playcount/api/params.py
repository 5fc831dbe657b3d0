"""Validated path parameters: a real ISO date, a genre name, a file id, a pipeline stage.

Whatever passes here is safe to put in a key: `keys` would refuse anything else, but a bad value
is answered with a 422 naming the parameter before any key is built.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator
from starlette.convertors import Convertor, register_url_convertor

from playcount.core.keys import GENRE_MAX_BYTES, genre_problem, normalise_genre

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_iso_date(value: Any) -> dt.date:
    """Only `YYYY-MM-DD` naming a day that exists (pydantic alone would take `0` or a datetime)."""
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value} is not a real date ({exc})") from exc


DatePath = Annotated[
    dt.date,
    BeforeValidator(parse_iso_date),
    Path(description="a UTC date, YYYY-MM-DD", examples=["2025-06-24"]),
]


def parse_genre(value: Any) -> str:
    """The stored form of a genre name (as the validator stores it), when it can be a key."""
    if not isinstance(value, str):
        raise ValueError("must be text")
    genre = normalise_genre(value)
    problem = genre_problem(genre)
    if problem is not None:
        raise ValueError(f"the genre name {problem}")
    return genre


class GenreSegments(Convertor[str]):
    """`{genre:genre}` in a route: any text, `/` and line breaks included, so every name reaches
    `parse_genre` (and a bad one gets its 422). Starlette's `path` stops at a line break."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("genre", GenreSegments())

GenrePath = Annotated[
    str,
    BeforeValidator(parse_genre),
    Path(
        description="a genre name in any script, percent-encoded (`r%26b`, `m%C3%BAsica%20mexicana`, "
        "`hip-hop%2Frap`). It is looked up as the validator stores it: trimmed, Unicode NFC, "
        f"lower-cased, so `R%26B` finds `r&b`. At most {GENRE_MAX_BYTES} bytes of UTF-8; no control, "
        "separator or invisible format character (zero-width (non-)joiners excepted); not `.` or `..`",
        examples=["r&b"],
    ),
]
FileIdPath = Annotated[
    str, Path(pattern=r"^[0-9a-f]{24}$", description="a file id (24 hex digits) from a report", examples=["0" * 24])
]
Stage = Literal["s3-events", "validated", "kpi-results"]  # = resources.STAGES (a test checks)
StagePath = Annotated[Stage, Path(description="a pipeline stage (its queue's DLQ is redriven)")]


MAX_RANGE_DAYS = 366  # a range holds at most this many days, both ends included


def _end(end: str) -> Any:
    which = "first" if end == "from" else "last"
    return Query(alias=end, description=f"the range's {which} UTC date, YYYY-MM-DD (included)", examples=["2025-06-24"])


From = Annotated[dt.date, BeforeValidator(parse_iso_date), _end("from")]
To = Annotated[dt.date, BeforeValidator(parse_iso_date), _end("to")]
OpenFrom = Annotated[dt.date | None, BeforeValidator(parse_iso_date), _end("from")]
OpenTo = Annotated[dt.date | None, BeforeValidator(parse_iso_date), _end("to")]


@dataclass(frozen=True)
class DateRange:
    """Dates `first` to `last`, both included; an end left open is None."""

    first: dt.date | None
    last: dt.date | None

    def __post_init__(self) -> None:
        if self.first is None or self.last is None:
            return
        problem = None
        if self.first > self.last:
            problem = f"from ({self.first}) is after to ({self.last})"
        elif (self.last - self.first).days + 1 > MAX_RANGE_DAYS:
            problem = f"the range holds {(self.last - self.first).days + 1} days; at most {MAX_RANGE_DAYS} are allowed"
        if problem:
            error = {"loc": ("query", "to"), "msg": f"Value error, {problem}", "type": "value_error"}
            raise RequestValidationError([error])


async def closed_range(first: From, last: To) -> DateRange:
    """`from` and `to`, both required."""
    return DateRange(first, last)


async def open_range(first: OpenFrom = None, last: OpenTo = None) -> DateRange:
    """`from` and `to`, each optional (an open end)."""
    return DateRange(first, last)


RANKING_MAX_LIMIT = 500
Limit = Annotated[int, Query(ge=1, le=RANKING_MAX_LIMIT, description="genres per page")]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="`next_cursor` of the previous page; absent for the first page"),
]

ClosedRange = Annotated[DateRange, Depends(closed_range)]
OpenRange = Annotated[DateRange, Depends(open_range)]
