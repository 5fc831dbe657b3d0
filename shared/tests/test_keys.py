import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from playcount.core import genre_columns, keys

pytestmark = pytest.mark.fast

DAY = dt.date(2025, 6, 24)
PERSIAN_POP_ROCK = "\u067e\u0627\u067e\u200c\u0631\u0627\u06a9"  # needs the zero-width non-joiner (U+200C)
EXAMPLES = {
    "Música Mexicana": "música mexicana",
    "forro\u0301": "forró",  # decomposed (o + combining acute) is stored composed (NFC)
    " R&B ": "r&b",
    "K-Pop": "k-pop",
    "Hip-Hop/Rap": "hip-hop/rap",
    "C#": "c#",
    "ΣΟΥΛ": "σουλ",
    PERSIAN_POP_ROCK: PERSIAN_POP_ROCK,
}


def test_seed_key_layout():
    assert keys.genre_day_pk("rock", DAY) == "GENRE#rock#DATE#2025-06-24"
    assert keys.metric_sk("listen_count") == "METRIC#listen_count"
    assert keys.song_sk(1, "t1") == "SONG#1#t1"
    assert keys.day_pk(DAY) == "DATE#2025-06-24"
    assert keys.genre_rank_sk(2) == "GENRE_RANK#2"
    assert keys.hour_sk(7) == "HOUR#07"


@pytest.mark.parametrize(("raw", "stored"), EXAMPLES.items())
def test_any_genre_name_is_stored_trimmed_nfc_lower_case_and_can_be_a_key(raw, stored):
    assert keys.normalise_genre(raw) == stored
    assert keys.genre_problem(stored) is None
    assert keys.genre_day_pk(stored, DAY) == f"GENRE#{stored}#DATE#2025-06-24"
    assert keys.parse_genre_day_pk(keys.genre_day_pk(stored, DAY)) == (stored, DAY)


@pytest.mark.parametrize(
    ("genre", "problem"),
    [
        ("", "is empty"),
        ("a" * 257, "longer than 256 bytes"),
        ("é" * 129, "longer than 256 bytes"),  # 129 characters, 258 bytes
        ("rock\x00", "control character"),
        ("rock\nroll", "control character"),
        ("rock\x7f", "control character"),
        ("rock\u0085", "control character"),
        ("rock\u2028roll", "separator"),
        ("\u202erock", "invisible format character"),  # right-to-left override
        ("ro\u200bck", "invisible format character"),  # zero-width space
        ("rock\ufeff", "invisible format character"),
        (".", "dot segment"),
        ("..", "dot segment"),
        ("Rock", "stored form"),
        (" rock", "stored form"),
        ("forro\u0301", "stored form"),  # not NFC
        ("rock\ud800", "not valid Unicode"),
    ],
)
def test_genres_that_cannot_be_a_key_are_refused_with_their_reason(genre, problem):
    assert problem in (keys.genre_problem(genre) or "")
    with pytest.raises(keys.KeyError_, match=problem):
        keys.genre_day_pk(genre, DAY)


def test_the_byte_bound_is_inclusive():
    assert keys.genre_problem("a" * 256) is None
    assert keys.genre_problem("é" * 128) is None  # 256 bytes


def test_one_value_and_a_column_follow_the_same_rule():
    names = [*EXAMPLES, "a\x00", "", "é" * 129, ".", "Rock", "x" * 300, "ΟΔΟΣ", "İstanbul", "ꟋA"]
    column = pa.array(names, pa.string())
    stored = genre_columns.normalise_genres(column).to_pylist()
    assert stored == [keys.normalise_genre(n) for n in names]
    assert genre_columns.genre_problems(pa.array(stored)).to_pylist() == [keys.genre_problem(s) for s in stored]


# genre-ish text: any Unicode, names built from the characters that separate key parts, and keys
_PARTS = st.sampled_from(["#", "DATE", "#DATE#", "2025-06-24", "/", "GENRE#", "é", "e\u0301", " ", "R&B"])
names = st.one_of(
    st.text(max_size=40),
    st.lists(_PARTS, max_size=8).map("".join),
    st.builds(lambda a, d: f"{a}#DATE#{d.isoformat()}", st.text(max_size=10), st.dates()),
)


@hsettings(max_examples=400, deadline=None)
@given(name=names)
def test_normalising_is_idempotent(name):
    stored = keys.normalise_genre(name)
    assert keys.normalise_genre(stored) == stored


@hsettings(max_examples=400, deadline=None)
@given(name=names, day=st.dates())
def test_a_genre_key_is_refused_or_splits_back_into_exactly_its_genre_and_date(name, day):
    for genre in (name, keys.normalise_genre(name)):
        try:
            pk = keys.genre_day_pk(genre, day)
        except keys.KeyError_:
            assert keys.genre_problem(genre) is not None
            continue
        assert keys.parse_genre_day_pk(pk) == (genre, day)
        assert pk.startswith("GENRE#") and not pk.startswith((keys.CATALOG_DAYS_PK, "DATE#", "PIPELINE#"))


@hsettings(max_examples=400, deadline=None)
@given(a=st.tuples(names, st.dates()), b=st.tuples(names, st.dates()))
def test_two_different_genre_days_never_share_a_partition(a, b):
    (ga, da), (gb, db) = (keys.normalise_genre(a[0]), a[1]), (keys.normalise_genre(b[0]), b[1])
    try:
        ka, kb = keys.genre_day_pk(ga, da), keys.genre_day_pk(gb, db)
    except keys.KeyError_:
        return
    assert (ka == kb) == ((ga, da) == (gb, db))


def test_a_genre_holding_a_date_key_stays_in_its_own_partition():
    # the genre `x#DATE#2025-06-25` on 2025-06-24 is not the genre `x` on 2025-06-25
    tricky = keys.genre_day_pk("x#date#2025-06-25", DAY)
    assert tricky != keys.genre_day_pk("x", dt.date(2025, 6, 25))
    assert keys.parse_genre_day_pk(tricky) == ("x#date#2025-06-25", DAY)
    with pytest.raises(keys.KeyError_):
        keys.genre_day_pk("x#DATE#2025-06-25", DAY)  # not stored form (upper case): refused


@pytest.mark.parametrize(
    "pk", ["DATE#2025-06-24", "GENRE#DATE#2025-06-24", "GENRE#rock#DATE#2025-W26-2", "GENRE#Rock#DATE#2025-06-24"]
)
def test_what_is_not_a_genre_day_key_does_not_parse(pk):
    with pytest.raises(keys.KeyError_):
        keys.parse_genre_day_pk(pk)


def test_hours_and_metrics_are_bounded():
    with pytest.raises(keys.KeyError_):
        keys.hour_sk(24)
    with pytest.raises(keys.KeyError_):
        keys.metric_sk("listen_count#x")
