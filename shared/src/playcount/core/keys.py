"""The DynamoDB single-table key schema: the only place that builds keys, and the genre rule.

pk=GENRE#{genre}#DATE#{date}  sk=METRIC#{name} | SONG#{rank}#{track_id}
pk=DATE#{date}                sk=GENRE_RANK#{rank} | HOUR#{HH} | RANKING#{chunk:05d} | HEAD | LOCK
pk=TREND#{genre}              sk=DATE#{date}            (a genre's day in one item: its trend)
pk=CATALOG#DAYS               sk=DATE#{date}            (discovery: days and their genres)
pk=PIPELINE#COUNTERS          sk=SHARD#{nn} | FRESHNESS  (pipeline counters in shards; the lag)
pk=PIPELINE#FILE#{file_id}    sk=STATE#{state}           (one item per file state reached)
pk=PIPELINE#VERSIONS          sk=ALL                     (the runners' shared version counter)
pk=PIPELINE#RECONCILE         sk=LEASE                   (which validator sweeps, until when)

A genre may be any name in any script (`música mexicana`, `forró`, `r&b`, `hip-hop/rap`). It is
stored in one form: trimmed, Unicode NFC, lower-cased (`normalise_genres`). A stored genre can
be a key when it is not empty, holds at most 256 bytes of UTF-8, and holds no control character
(Cc), line or paragraph separator (Zl, Zp) or invisible format character (Cf) other than the
zero-width (non-)joiners that Persian, Indic scripts and emoji sequences need; nor is it `.` or
`..`, which HTTP clients remove from a URL path. `#` and `/` are allowed: the date that follows
the genre in its key always has the fixed form YYYY-MM-DD, so `GENRE#{genre}#DATE#{date}` splits
back into exactly one (genre, date) (`parse_genre_day_pk`), whatever `#` the genre holds.

The rule runs on pyarrow arrays (the validator judges a whole column at once); the one-value
functions run the very same kernels on one value, so the validator, the writer and the API can
never disagree about a name (Python's own `str.lower` and `unicodedata` follow another Unicode
version than pyarrow's, and differ from it on some characters).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

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
RANKING_PREFIX = "RANKING#"
HEAD_SK = "HEAD"
LOCK_SK = "LOCK"
CATALOG_DAYS_PK = "CATALOG#DAYS"
COUNTERS_PK = "PIPELINE#COUNTERS"
VERSIONS_PK = "PIPELINE#VERSIONS"
VERSIONS_SK = "ALL"
RECONCILE_PK = "PIPELINE#RECONCILE"
LEASE_SK = "LEASE"
FRESHNESS_SK = "FRESHNESS"

GENRE_PK_PREFIX = "GENRE#"
TREND_PK_PREFIX = "TREND#"
_DATE_INFIX = "#DATE#"
# DynamoDB allows 2048 bytes in a partition key: a genre's 256 keep every key far below it
GENRE_MAX_BYTES = 256
# RE2 syntax (pyarrow's regex engine): every character is outside Cc, Cf, Zl and Zp, or is ZWNJ/ZWJ
GENRE_CHARS_RE2 = r"^(?:[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]|[\x{200C}\x{200D}])*$"
_DOT_SEGMENTS = pa.array([".", ".."], pa.string())


class KeyError_(ValueError):
    """A value that cannot be part of a key (it could address another partition)."""


def normalise_genres(names: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The stored form of genre names: whitespace trimmed, Unicode NFC, lower-cased."""
    return pc.utf8_lower(pc.utf8_normalize(pc.utf8_trim_whitespace(names), "NFC"))


_TOO_LONG = f"is longer than {GENRE_MAX_BYTES} bytes in UTF-8"
_RULES: tuple[tuple[str, Callable[[pa.Array], pa.Array]], ...] = (
    ("is empty", lambda g: pc.equal(pc.binary_length(g), 0)),
    (_TOO_LONG, lambda g: pc.greater(pc.binary_length(g), GENRE_MAX_BYTES)),
    (
        "holds a control character, a line or paragraph separator or an invisible format character",
        lambda g: pc.invert(pc.match_substring_regex(g, GENRE_CHARS_RE2)),
    ),
    ("is a URL dot segment ('.' or '..')", lambda g: pc.is_in(g, value_set=_DOT_SEGMENTS)),
    ("is not in its stored form (trimmed, NFC, lower-case)", lambda g: pc.not_equal(g, normalise_genres(g))),
)


def genre_problems(genres: pa.Array) -> pa.Array:
    """Per genre, why it cannot be a key (the first rule it breaks), or null when it can (or is null)."""
    problem = pa.nulls(len(genres), pa.string())
    for reason, broken in reversed(_RULES):
        problem = pc.if_else(pc.fill_null(broken(genres), False), pa.scalar(reason), problem)
    return problem


def normalise_genre(name: str) -> str:
    """The stored form of one genre name (exactly what `normalise_genres` makes of it)."""
    try:
        values = pa.array([name], pa.string())
    except UnicodeEncodeError as exc:  # a lone surrogate: not text that UTF-8 can hold
        raise KeyError_(f"genre {name!r} is not valid Unicode text") from exc
    return str(normalise_genres(values)[0].as_py())


def genre_problem(genre: str) -> str | None:
    """Why `genre` cannot be a key (it must already be in stored form), or None when it can."""
    if len(genre) > GENRE_MAX_BYTES:  # more characters than bytes allowed (and kept out of the cache)
        return _TOO_LONG
    return _problem(genre)


@functools.lru_cache(maxsize=4096)  # the writer checks each genre of a result once per item
def _problem(genre: str) -> str | None:
    try:
        values = pa.array([genre], pa.string())
    except UnicodeEncodeError:  # a lone surrogate
        return "is not valid Unicode text"
    problem = genre_problems(values)[0].as_py()
    return None if problem is None else str(problem)


def check_genre(genre: str) -> str:
    """`genre`, when it is a stored genre name that can be a key (see the module's docstring)."""
    problem = genre_problem(genre)
    if problem is not None:
        raise KeyError_(f"genre {genre!r} {problem}")
    return genre


def genre_day_pk(genre: str, day: dt.date) -> str:
    return f"{GENRE_PK_PREFIX}{check_genre(genre)}{_DATE_INFIX}{day.isoformat()}"


def parse_genre_day_pk(pk: str) -> tuple[str, dt.date]:
    """The (genre, date) of a key built by `genre_day_pk`: the date is always its last 10 characters."""
    head, iso = pk[:-10], pk[-10:]
    if not (head.startswith(GENRE_PK_PREFIX) and head.endswith(_DATE_INFIX)):
        raise KeyError_(f"{pk!r} is not a genre day key")
    try:
        day = dt.date.fromisoformat(iso)
        if day.isoformat() != iso:
            raise ValueError(f"{iso!r} is not YYYY-MM-DD")
        return check_genre(head[len(GENRE_PK_PREFIX) : -len(_DATE_INFIX)]), day
    except ValueError as exc:  # KeyError_ included
        raise KeyError_(f"{pk!r} is not a genre day key ({exc})") from exc


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


RANKING_MAX_CHUNK = 99_999


def ranking_sk(chunk: int) -> str:
    """One chunk of the day's full genre ranking: zero-padded, so chunks sort in rank order."""
    if not 0 <= chunk <= RANKING_MAX_CHUNK:
        raise KeyError_(f"ranking chunk {chunk} is not in 0..{RANKING_MAX_CHUNK}")
    return f"{RANKING_PREFIX}{chunk:05d}"


def trend_pk(genre: str) -> str:
    """A genre's trend partition: one item per date (sort key `date_sk`), so a range is one query."""
    return f"{TREND_PK_PREFIX}{check_genre(genre)}"


def hour_sk(hour: int) -> str:
    if not 0 <= hour <= 23:
        raise KeyError_(f"hour {hour} is not in 0..23")
    return f"{HOUR_PREFIX}{hour:02d}"


def date_sk(day: dt.date) -> str:
    """The sort key of a date's item in a partition of dates (the days catalogue, a genre's trend)."""
    return f"DATE#{day.isoformat()}"


def file_state_pk(file_id: str) -> str:
    return f"PIPELINE#FILE#{file_id}"


def file_state_sk(state: str) -> str:
    return f"STATE#{state}"
