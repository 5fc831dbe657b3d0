"""JSON responses with a strong ETag and Cache-Control; `If-None-Match` gets a 304."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import Request, Response


def cached_json(request: Request, body: Any, max_age: float) -> Response:
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    etag = '"' + hashlib.blake2b(payload, digest_size=12).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={int(max_age)}"}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(payload, media_type="application/json", headers=headers)
