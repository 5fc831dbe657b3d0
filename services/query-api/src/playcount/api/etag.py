"""JSON bodies encoded once, with a strong ETag; responses carry Cache-Control, `If-None-Match` gets a 304."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response


@dataclass(frozen=True)
class Encoded:
    """A response body ready to send: cached as is, so a cache hit costs no serialisation."""

    body: bytes
    etag: str


def encode(body: Any) -> Encoded:
    return tagged(json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode())


def tagged(payload: bytes) -> Encoded:
    """`payload` with its strong ETag."""
    return Encoded(payload, '"' + hashlib.blake2b(payload, digest_size=12).hexdigest() + '"')


def _matches(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match")
    if not given:
        return False
    return given.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in given.split(",")]


def cached_json(
    request: Request,
    encoded: Encoded,
    max_age: float,
    media_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Response:
    """200 with the body, or 304 when the client already holds this exact body."""
    headers = {"ETag": encoded.etag, "Cache-Control": f"public, max-age={max(0, int(max_age))}", **(headers or {})}
    if _matches(request, encoded.etag):
        return Response(status_code=304, headers=headers)
    return Response(encoded.body, media_type=media_type, headers=headers)
