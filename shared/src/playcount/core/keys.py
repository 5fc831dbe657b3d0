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

The validator judges a whole column at once with pyarrow's kernels (`core.genre_columns`); the
writer and the API judge one value here, in plain Python, so they need no pyarrow. The two must
never disagree about a name: this module takes its Unicode data from `unicodedata2` at the
version pyarrow's kernels follow (Python's own `unicodedata` is older), lower-cases one code
point at a time as pyarrow does (no final-sigma context, no one-to-many mappings), and carries
the few simple lower-case mappings Python's `str.lower` lacks. `shared/tests/test_genre_rule.py`
compares both over every Unicode code point and every canonical decomposition, and fails when
an upgrade of either side moves them apart.
"""

from __future__ import annotations

import datetime as dt
import functools

import unicodedata2

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
# code points that may not appear in a genre (general categories), apart from ZWNJ and ZWJ
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
JOINERS = frozenset({"\u200c", "\u200d"})
DOT_SEGMENTS = frozenset({".", ".."})


class KeyError_(ValueError):
    """A value that cannot be part of a key (it could address another partition)."""


class _SimpleLower(dict[int, str]):
    """Code point -> its simple lower-case mapping, as pyarrow's `utf8_lower` has it (filled lazily)."""

    def __missing__(self, cp: int) -> str:
        lower = chr(cp).lower()
        self[cp] = value = lower if len(lower) == 1 else chr(cp)
        return value


# where Python's `str.lower` (an older Unicode) differs from pyarrow's simple mapping
_LOWER = _SimpleLower({k: chr(v) for k, v in {
    0x0130: 0x0069, 0x1C89: 0x1C8A, 0xA7CB: 0x0264, 0xA7CC: 0xA7CD, 0xA7CE: 0xA7CF, 0xA7D2: 0xA7D3, 0xA7D4:
    0xA7D5, 0xA7DA: 0xA7DB, 0xA7DC: 0x019B, 0xA7DD: 0x0277, 0xA7E2: 0x027C, 0xAB6C: 0xAB4B, 0xAB6D: 0xAB4C,
    0x10D50: 0x10D70, 0x10D51: 0x10D71, 0x10D52: 0x10D72, 0x10D53: 0x10D73, 0x10D54: 0x10D74, 0x10D55: 0x10D75,
    0x10D56: 0x10D76, 0x10D57: 0x10D77, 0x10D58: 0x10D78, 0x10D59: 0x10D79, 0x10D5A: 0x10D7A, 0x10D5B: 0x10D7B,
    0x10D5C: 0x10D7C, 0x10D5D: 0x10D7D, 0x10D5E: 0x10D7E, 0x10D5F: 0x10D7F, 0x10D60: 0x10D80, 0x10D61: 0x10D81,
    0x10D62: 0x10D82, 0x10D63: 0x10D83, 0x10D64: 0x10D84, 0x10D65: 0x10D85, 0x16EA0: 0x16EBB, 0x16EA1: 0x16EBC,
    0x16EA2: 0x16EBD, 0x16EA3: 0x16EBE, 0x16EA4: 0x16EBF, 0x16EA5: 0x16EC0, 0x16EA6: 0x16EC1, 0x16EA7: 0x16EC2,
    0x16EA8: 0x16EC3, 0x16EA9: 0x16EC4, 0x16EAA: 0x16EC5, 0x16EAB: 0x16EC6, 0x16EAC: 0x16EC7, 0x16EAD: 0x16EC8,
    0x16EAE: 0x16EC9, 0x16EAF: 0x16ECA, 0x16EB0: 0x16ECB, 0x16EB1: 0x16ECC, 0x16EB2: 0x16ECD, 0x16EB3: 0x16ECE,
    0x16EB4: 0x16ECF, 0x16EB5: 0x16ED0, 0x16EB6: 0x16ED1, 0x16EB7: 0x16ED2, 0x16EB8: 0x16ED3, 0x1DF40: 0x1DF41,
    0x1DF48: 0x1DF49, 0x1DF4A: 0x1DF4B, 0x1DF4D: 0x1DF4E, 0x1DF51: 0x1DF52, 0x1DF68: 0x1DF69, 0x1DF6A: 0x1DF6B,
    0x1DF6C: 0x1DF6D, 0x1DF6E: 0x1DF6F, 0x1DF72: 0x1DF73, 0x1DF74: 0x1DF75, 0x1DF76: 0x1DF77, 0x1DF78: 0x1DF79,
    0x1DF7A: 0x1DF7B, 0x1DF7C: 0x1DF7D, 0x1DF7E: 0x1DF7F
}.items()})  # fmt: skip

TOO_LONG = f"is longer than {GENRE_MAX_BYTES} bytes in UTF-8"
INVISIBLE = "holds a control character, a line or paragraph separator or an invisible format character"
DOT_SEGMENT = "is a URL dot segment ('.' or '..')"
NOT_STORED_FORM = "is not in its stored form (trimmed, NFC, lower-case)"


def _stored_form(name: str) -> str:
    return unicodedata2.normalize("NFC", name.strip()).translate(_LOWER)


def normalise_genre(name: str) -> str:
    """The stored form of one genre name: whitespace trimmed, Unicode NFC, lower-cased."""
    try:
        name.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate: not text that UTF-8 can hold
        raise KeyError_(f"genre {name!r} is not valid Unicode text") from exc
    return _stored_form(name)


def genre_problem(genre: str) -> str | None:
    """Why `genre` cannot be a key (it must already be in stored form), or None when it can."""
    if len(genre) > GENRE_MAX_BYTES:  # more characters than bytes allowed (and kept out of the cache)
        return TOO_LONG
    return _problem(genre)


@functools.lru_cache(maxsize=4096)  # the writer checks each genre of a result once per item
def _problem(genre: str) -> str | None:
    try:
        size = len(genre.encode())
    except UnicodeEncodeError:  # a lone surrogate
        return "is not valid Unicode text"
    if size == 0:
        return "is empty"
    if size > GENRE_MAX_BYTES:
        return TOO_LONG
    if any(unicodedata2.category(c) in FORBIDDEN_CATEGORIES and c not in JOINERS for c in genre):
        return INVISIBLE
    if genre in DOT_SEGMENTS:
        return DOT_SEGMENT
    if _stored_form(genre) != genre:
        return NOT_STORED_FORM
    return None


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
