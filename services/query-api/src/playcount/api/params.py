"""Validated path parameters: a real ISO date, a bounded genre slug, a file id, a pipeline stage.

Whatever passes here is safe to put in a key: `keys` would refuse anything else, but a bad value
is answered with a 422 naming the parameter before any key is built.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BeforeValidator

from playcount.core.keys import GENRE_MAX_LEN, GENRE_PATTERN

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
GenrePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=GENRE_MAX_LEN,
        pattern=GENRE_PATTERN,
        description="a genre slug: lower-case letters, digits, spaces and -_&'+.,() (no '#' or '/'), at most "
        f"{GENRE_MAX_LEN} characters",
        examples=["rock"],
    ),
]
FileIdPath = Annotated[
    str, Path(pattern=r"^[0-9a-f]{24}$", description="a file id (24 hex digits) from a report", examples=["0" * 24])
]
Stage = Literal["s3-events", "validated", "kpi-results"]  # = resources.STAGES (a test checks)
StagePath = Annotated[Stage, Path(description="a pipeline stage (its queue's DLQ is redriven)")]
