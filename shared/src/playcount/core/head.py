"""A date's HEAD item: the commit protocol between the writer and the readers of a date.

pk=DATE#{date} sk=HEAD
  version, computed_at, date, events, genres   the version committed last
  manifest                                     the keys of its KPI items (the writer's own)
  lease_owner, lease_expires                   the writer applying now (epoch seconds)
  applying, pending_genres                     write-ahead intent: set when a writer claims the
                                               date, removed when it commits

The writer (`playcount.writer.lease`) claims a date before it writes anything of a new version
(`applying` set), writes every item of that version (each carrying `version`), then commits:
HEAD gets the version, and `applying` goes, in one write. So a reader sees one whole version
`v` of a date's items when (`is_whole`):

- HEAD, read before the items, had committed `v` with no apply under way;
- every item read carries `v`;
- HEAD, read again after the items, still has `v` with no apply under way.

The query API relies on it for every per-date read and to revalidate its cache
(`playcount.api.consistent`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Set
from dataclasses import dataclass
from typing import Any

from playcount.core import keys

VERSION = "version"
APPLYING = "applying"
PENDING_GENRES = "pending_genres"
LEASE_OWNER = "lease_owner"
LEASE_EXPIRES = "lease_expires"
MANIFEST = "manifest"
GENRES = "genres"


def head_key(day: dt.date) -> dict[str, Any]:
    """The HEAD item's key, in DynamoDB's attribute-value form."""
    return {"pk": {"S": keys.day_pk(day)}, "sk": {"S": keys.HEAD_SK}}


@dataclass(frozen=True)
class HeadState:
    """What a reader needs of HEAD: the committed version (0 without one) and whether an apply is under way."""

    version: int
    applying: bool

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> HeadState:
        item = item or {}
        return cls(int(item.get(VERSION, {}).get("N", 0)), APPLYING in item)

    @property
    def settled(self) -> bool:
        return not self.applying


def is_whole(before: HeadState, seen: Set[int], after: HeadState) -> bool:
    """Whether items carrying the versions `seen`, read between `before` and `after`, are one whole version."""
    return before.settled and after.settled and before.version == after.version and seen <= {before.version}
