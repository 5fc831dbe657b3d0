"""Validated path parameters: a real ISO date, a bounded genre slug, a file id."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Path

from playcount.core.keys import GENRE_MAX_LEN, GENRE_PATTERN

DatePath = Annotated[dt.date, Path(description="a UTC date, YYYY-MM-DD", examples=["2025-06-24"])]
GenrePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=GENRE_MAX_LEN,
        pattern=GENRE_PATTERN,
        description="a genre slug: lower-case letters, digits, spaces and -_&'+.,() (no '#' or '/')",
        examples=["rock"],
    ),
]
FileIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$", description="a file id from /pipeline or a report")]
