"""Which kind of object an S3 key names, and whether it is ours to judge at all.

Decided by the key's prefix alone, first match wins: songs, users, replayed rows (quarantined
rows sent again by `replay_quarantine`, judged like streams), then streams. Anything else, or
any object in another bucket, is not ours: `route` returns None and the handler only logs it.
"""

from __future__ import annotations

from playcount.core import lake
from playcount.core.config import Settings
from playcount.core.messages import FileKind, S3ObjectRef


def kind_of(settings: Settings, key: str) -> FileKind | None:
    s = settings
    if key.startswith(s.songs_prefix):
        return "songs"
    if key.startswith(s.users_prefix):
        return "users"
    if key.startswith(lake.replay_prefix(s)):
        return "replay"  # quarantined rows sent again by `replay_quarantine`: judged like streams
    if key.startswith(s.s3_raw_data_prefix):
        return "streams"
    return None


def route(settings: Settings, ref: S3ObjectRef) -> FileKind | None:
    """The kind of the object `ref` names; None when it is not ours to judge."""
    kind = kind_of(settings, ref.key)
    if kind is None or ref.bucket != settings.s3_bucket:
        return None
    return kind
