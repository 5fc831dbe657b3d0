"""The one-value genre rule (plain Python, `core.keys`) and the column rule (pyarrow, `core.genre_columns`)
agree on all of Unicode: the writer and the API can never judge a name otherwise than the validator.

This fails when an upgrade of pyarrow or unicodedata2 moves their Unicode versions apart; the
message names the code points, and `keys._LOWER`'s table is what to regenerate.
"""

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from playcount.core import genre_columns, keys

pytestmark = pytest.mark.fast

CODE_POINTS = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def _agree(values: list[str]) -> None:
    column = pa.array(values, pa.string())
    stored = genre_columns.normalise_genres(column).to_pylist()
    differs = [(v, s) for v, s in zip(values, stored, strict=True) if keys.normalise_genre(v) != s]
    assert not differs, [(f"U+{ord(v[0]):04X}", v, s) for v, s in differs[:20]]
    problems = genre_columns.genre_problems(column).to_pylist()
    differs = [(v, p) for v, p in zip(values, problems, strict=True) if keys.genre_problem(v) != p]
    assert not differs, [(f"U+{ord(v[0]):04X}", p, keys.genre_problem(v)) for v, p in differs[:20]]


@pytest.fixture(scope="module")
def decompositions() -> list[str]:
    """Every canonical and compatibility decomposition of a code point (what NFC composes back)."""
    column = pa.array(CODE_POINTS, pa.string())
    found = set(pc.utf8_normalize(column, "NFD").to_pylist()) | set(pc.utf8_normalize(column, "NFKD").to_pylist())
    return sorted(s for s in found if len(s) > 1)


def test_every_code_point_is_judged_alike():
    _agree(CODE_POINTS)


def test_every_decomposition_is_composed_alike(decompositions):
    assert len(decompositions) > 10_000
    _agree(decompositions)
    _agree([d.upper() + " " for d in decompositions])


def test_lower_case_is_per_code_point_as_pyarrow_has_it():
    # Python's str.lower gives a final sigma and a two-character lower İ; the stored form does not
    assert keys.normalise_genre("ΟΔΟΣ") == "οδοσ"
    assert keys.normalise_genre("İ") == "i"
    _agree(["ΟΔΟΣ ΣΟΥΛ", "İSTANBUL", "\u1c89\u1c89x"])


@hsettings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_any_text_is_judged_alike(text):
    try:
        text.encode()
    except UnicodeEncodeError:
        return  # a lone surrogate: pyarrow refuses the column, keys.normalise_genre raises KeyError_
    _agree([text])
