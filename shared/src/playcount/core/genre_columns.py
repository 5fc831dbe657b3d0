"""The genre rule of `core.keys` on whole pyarrow columns: what the validator judges a file with.

Same rule, same reasons, same order as `keys.normalise_genre` and `keys.genre_problem`, on
pyarrow's kernels (`shared/tests/test_genre_rule.py` checks they agree on all of Unicode).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from playcount.core.keys import DOT_SEGMENT, GENRE_MAX_BYTES, INVISIBLE, NOT_STORED_FORM, TOO_LONG

# RE2 syntax (pyarrow's regex engine): every character is outside Cc, Cf, Zl and Zp, or is ZWNJ/ZWJ
GENRE_CHARS_RE2 = r"^(?:[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]|[\x{200C}\x{200D}])*$"
_DOT_SEGMENTS = pa.array([".", ".."], pa.string())


def normalise_genres(names: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The stored form of genre names: whitespace trimmed, Unicode NFC, lower-cased."""
    return pc.utf8_lower(pc.utf8_normalize(pc.utf8_trim_whitespace(names), "NFC"))


_RULES: tuple[tuple[str, Callable[[pa.Array], pa.Array]], ...] = (
    ("is empty", lambda g: pc.equal(pc.binary_length(g), 0)),
    (TOO_LONG, lambda g: pc.greater(pc.binary_length(g), GENRE_MAX_BYTES)),
    (INVISIBLE, lambda g: pc.invert(pc.match_substring_regex(g, GENRE_CHARS_RE2))),
    (DOT_SEGMENT, lambda g: pc.is_in(g, value_set=_DOT_SEGMENTS)),
    (NOT_STORED_FORM, lambda g: pc.not_equal(g, normalise_genres(g))),
)


def genre_problems(genres: pa.Array) -> pa.Array:
    """Per genre, why it cannot be a key (the first rule it breaks), or null when it can (or is null)."""
    problem = pa.nulls(len(genres), pa.string())
    for reason, broken in reversed(_RULES):
        problem = pc.if_else(pc.fill_null(broken(genres), False), pa.scalar(reason), problem)
    return problem
