"""GET requests to our own HTTP endpoints (the API, the emulator, a health URL): http(s) only.

`urllib.request.urlopen` also opens `file:` and custom schemes, so a URL taken from the
environment could read local files. Every plain GET of the project goes through `get`, which
refuses anything but http and https.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from http.client import HTTPResponse

SCHEMES = ("http", "https")


def get(url: str, timeout: float) -> HTTPResponse:
    """Open `url` for reading (a context manager); ValueError for any scheme but http(s)."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ValueError(f"{url!r}: only http and https URLs are opened, not {scheme or 'a bare path'!r}")
    # bandit B310 warns of file: and custom schemes: the scheme is checked above
    response: HTTPResponse = urllib.request.urlopen(url, timeout=timeout)  # nosec B310
    return response
