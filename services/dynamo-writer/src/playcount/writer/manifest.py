"""The manifest: the exact keys of the KPI items a date holds, kept in its HEAD item.

With it, the writer knows which stored items a new result no longer contains without reading
a single partition. It is zlib-compressed JSON (about 12 KB for a day of 114 genres); a key
set too large for one item is not stored, and the next apply finds the keys by querying.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable

Key = tuple[str, str]

# DynamoDB items are limited to 400 KB; leave room for the HEAD item's other attributes
MAX_BYTES = 256 * 1024


def encode(keys: Iterable[Key]) -> bytes | None:
    """The compressed manifest of `keys`, or None when it would not fit in an item."""
    blob = zlib.compress(json.dumps(sorted(keys), separators=(",", ":")).encode(), 6)
    return blob if len(blob) <= MAX_BYTES else None


def decode(blob: bytes) -> frozenset[Key]:
    return frozenset((str(pk), str(sk)) for pk, sk in json.loads(zlib.decompress(blob)))
