"""The row rules, vectorised with pyarrow: each row is accepted or gets exactly one reason.

Reasons, first match wins: missing_user_id, missing_track_id, missing_listen_time,
bad_user_id, bad_track_id, bad_listen_time, listen_time_out_of_range, unknown_track_id,
unknown_user_id. (Duplicates are judged later, per date: `duplicate_event`.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from playcount.core.idindex import IdLookup

MAX_ID_LENGTH = 128
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
FUTURE_SLACK = dt.timedelta(days=1)

_TS = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(\.\d{1,6})?([Zz]|[+-]([01]\d|2[0-3]):?[0-5]\d)?$"
)
_HAS_OFFSET = r"([Zz]|[+-]\d\d:?\d\d)$"
UTC_US = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class JudgedEvents:
    """One batch, judged: the clean events and the rejected rows with their reasons."""

    accepted: pa.Table  # user_id, track_id, listen_time (timestamp[us, UTC]), line
    rejected: pa.Table  # line, user_id, track_id, listen_time (original text), reason


def parse_timestamps(values: pa.Array) -> pa.Array:
    """ISO-ish timestamps to UTC microseconds; null where the text is not a valid timestamp."""
    shaped = pc.match_substring_regex(values, _TS)
    candidates = pc.utf8_upper(pc.if_else(shaped, values, pa.scalar(None, pa.string())))
    with_offset = pc.if_else(
        pc.match_substring_regex(candidates, _HAS_OFFSET),
        candidates,
        pc.binary_join_element_wise(candidates, pa.scalar("Z"), ""),
    )
    try:
        return pc.cast(with_offset, UTC_US)
    except pa.ArrowInvalid:
        # a well-shaped but impossible date (Feb 30) somewhere in the batch: null those, cast the rest
        real = pc.fill_null(_real_days(with_offset), False)
        return pc.cast(pc.if_else(real, with_offset, pa.scalar(None, pa.string())), UTC_US)


_DAYS_IN_MONTH = pa.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], pa.int32())


def _divisible(values: pa.Array, by: int) -> pa.Array:
    return pc.equal(pc.subtract(values, pc.multiply(pc.divide(values, by), by)), 0)


def _real_days(shaped: pa.Array) -> pa.Array:
    """Whether the day of month exists (the regex already bounds month 1-12 and day 1-31)."""
    year = pc.cast(pc.utf8_slice_codeunits(shaped, 0, 4), pa.int32())
    month = pc.cast(pc.utf8_slice_codeunits(shaped, 5, 7), pa.int32())
    day = pc.cast(pc.utf8_slice_codeunits(shaped, 8, 10), pa.int32())
    leap = pc.and_(_divisible(year, 4), pc.or_(pc.invert(_divisible(year, 100)), _divisible(year, 400)))
    feb29 = pc.and_(pc.equal(month, 2), leap)
    last = pc.add(pc.take(_DAYS_IN_MONTH, pc.subtract(month, 1)), pc.cast(feb29, pa.int32()))
    return pc.less_equal(day, last)


def _missing(values: pa.Array) -> pa.Array:
    return pc.or_kleene(pc.is_null(values), pc.equal(pc.utf8_length(values), 0))


def _unknown(ids: pa.Array, known: IdLookup | None) -> pa.Array:
    """Whether each id is unknown; only ids that pass the earlier rules are looked up."""
    if known is None:
        return pa.repeat(True, len(ids))
    plausible = pc.and_(pc.invert(_missing(ids)), pc.less_equal(pc.utf8_length(ids), MAX_ID_LENGTH))
    candidates = pc.if_else(pc.fill_null(plausible, False), ids, pa.scalar(None, ids.type))
    return pc.invert(known.contains(candidates))


def judge_streams(
    batch: pa.RecordBatch,
    first_line: int,
    known_tracks: IdLookup | None,
    known_users: IdLookup | None,
    now: dt.datetime,
) -> JudgedEvents:
    """Judge a batch of stream rows; `first_line` is the 1-based data line of its first row.

    `known_tracks` / `known_users` answer membership for the batch's distinct ids (None: no
    catalog yet, every id is unknown), so the cost follows the batch, not the catalog.
    """
    n = batch.num_rows
    raw_user = batch.column("user_id")
    raw_track = batch.column("track_id")
    raw_time = batch.column("listen_time")
    user = pc.utf8_trim_whitespace(raw_user)
    track = pc.utf8_trim_whitespace(raw_track)
    when_text = pc.utf8_trim_whitespace(raw_time)
    when = parse_timestamps(when_text)
    lines = pa.array(range(first_line, first_line + n), pa.int64())

    earliest = pa.scalar(EARLIEST, UTC_US)
    latest = pa.scalar(now + FUTURE_SLACK, UTC_US)
    rules: list[tuple[str, pa.Array]] = [
        ("missing_user_id", _missing(user)),
        ("missing_track_id", _missing(track)),
        ("missing_listen_time", _missing(when_text)),
        ("bad_user_id", pc.greater(pc.utf8_length(user), MAX_ID_LENGTH)),
        ("bad_track_id", pc.greater(pc.utf8_length(track), MAX_ID_LENGTH)),
        ("bad_listen_time", pc.is_null(when)),
        ("listen_time_out_of_range", pc.or_(pc.less(when, earliest), pc.greater(when, latest))),
        ("unknown_track_id", _unknown(track, known_tracks)),
        ("unknown_user_id", _unknown(user, known_users)),
    ]

    reason = pa.nulls(n, pa.string())
    for code, hit in reversed(rules):  # earlier rules win
        reason = pc.if_else(pc.fill_null(hit, False), pa.scalar(code), reason)
    ok = pc.is_null(reason)
    accepted = pa.table({"user_id": user, "track_id": track, "listen_time": when, "line": lines}).filter(ok)
    rejected = pa.table(
        {"line": lines, "user_id": raw_user, "track_id": raw_track, "listen_time": raw_time, "reason": reason}
    ).filter(pc.invert(ok))
    return JudgedEvents(accepted=accepted, rejected=rejected)
