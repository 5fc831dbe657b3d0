"""Page cursors of a day's ranking: where the next page starts, and in which version of the day.

A cursor is opaque to clients (URL-safe base64 of a small JSON object). It names the version
its page was read from, so a page never continues a ranking of another version: the API
answers 409 and the client starts again.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from fastapi.exceptions import RequestValidationError

from playcount.core.keys import RANKING_MAX_CHUNK
from playcount.core.kpis import RANKING_CHUNK

MAX_OFFSET = (RANKING_MAX_CHUNK + 1) * RANKING_CHUNK  # the ranking's keys hold no more genres


@dataclass(frozen=True)
class Page:
    version: int | None  # None: the first page, of whatever version is committed
    offset: int  # how many genres come before the page


def encode(page: Page) -> str:
    raw = json.dumps({"v": page.version, "o": page.offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Page:
    """The page a cursor names; a cursor this API did not issue is a 422."""
    try:
        fields = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        version, offset = fields["v"], fields["o"]
        if not (type(version) is int and type(offset) is int and version > 0 and 0 <= offset < MAX_OFFSET):
            raise ValueError("out of range")
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        error = {"loc": ("query", "cursor"), "msg": "Value error, not a cursor this API issued", "type": "value_error"}
        raise RequestValidationError([error]) from exc
    return Page(version, offset)
