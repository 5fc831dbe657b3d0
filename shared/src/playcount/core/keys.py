"""The DynamoDB single-table key schema: the only place that builds keys.

pk=GENRE#{genre}#DATE#{date}  sk=METRIC#{name} | SONG#{rank}#{track_id}
pk=DATE#{date}                sk=GENRE_RANK#{rank} | HOUR#{HH} | HEAD | LOCK
pk=CATALOG#DAYS               sk=DATE#{date}            (discovery: days and their genres)
pk=PIPELINE#COUNTERS          sk={counter}               (pipeline counters)
pk=PIPELINE#FILE#{file_id}    sk=STATE#{state}           (one item per file state reached)
"""

from __future__ import annotations

import datetime as dt
import re

METRICS = (
    "listen_count",
    "unique_listeners",
    "total_listening_time_ms",
    "avg_listening_time_per_user_ms",
)
METRIC_PREFIX = "METRIC#"
SONG_PREFIX = "SONG#"
GENRE_RANK_PREFIX = "GENRE_RANK#"
HOUR_PREFIX = "HOUR#"
HEAD_SK = "HEAD"
LOCK_SK = "LOCK"
CATALOG_DAYS_PK = "CATALOG#DAYS"
COUNTERS_PK = "PIPELINE#COUNTERS"
FRESHNESS_SK = "FRESHNESS"

GENRE_MAX_LEN = 64
GENRE_PATTERN = r"^[a-z0-9][a-z0-9 &'+.,_()-]{0,63}$"
_GENRE_RE = re.compile(GENRE_PATTERN)


class KeyError_(ValueError):
    """A value that cannot be part of a key (it could address another partition)."""


def check_genre(genre: str) -> str:
    """A genre is a bounded lower-case slug with no `#` or `/`, so it never crosses a partition."""
    if not _GENRE_RE.fullmatch(genre):
        raise KeyError_(f"genre {genre!r} is not a valid genre slug")
    return genre


def genre_day_pk(genre: str, day: dt.date) -> str:
    return f"GENRE#{check_genre(genre)}#DATE#{day.isoformat()}"


def metric_sk(name: str) -> str:
    if name not in METRICS:
        raise KeyError_(f"unknown metric {name!r}")
    return f"{METRIC_PREFIX}{name}"


def song_sk(rank: int, track_id: str) -> str:
    return f"{SONG_PREFIX}{rank}#{track_id}"


def day_pk(day: dt.date) -> str:
    return f"DATE#{day.isoformat()}"


def genre_rank_sk(rank: int) -> str:
    return f"{GENRE_RANK_PREFIX}{rank}"


def hour_sk(hour: int) -> str:
    if not 0 <= hour <= 23:
        raise KeyError_(f"hour {hour} is not in 0..23")
    return f"{HOUR_PREFIX}{hour:02d}"


def catalog_day_sk(day: dt.date) -> str:
    return f"DATE#{day.isoformat()}"


def file_state_pk(file_id: str) -> str:
    return f"PIPELINE#FILE#{file_id}"


def file_state_sk(state: str) -> str:
    return f"STATE#{state}"
