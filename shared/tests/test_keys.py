import datetime as dt

import pytest

from playcount.core import keys

DAY = dt.date(2025, 6, 24)


def test_seed_key_layout():
    assert keys.genre_day_pk("rock", DAY) == "GENRE#rock#DATE#2025-06-24"
    assert keys.metric_sk("listen_count") == "METRIC#listen_count"
    assert keys.song_sk(1, "t1") == "SONG#1#t1"
    assert keys.day_pk(DAY) == "DATE#2025-06-24"
    assert keys.genre_rank_sk(2) == "GENRE_RANK#2"
    assert keys.hour_sk(7) == "HOUR#07"


@pytest.mark.parametrize("genre", ["", "Rock", "rock#DATE#x", "a/b", "x" * 65, "-rock", "rock\n"])
def test_genres_that_could_cross_a_partition_are_refused(genre):
    with pytest.raises(keys.KeyError_):
        keys.genre_day_pk(genre, DAY)


def test_hours_and_metrics_are_bounded():
    with pytest.raises(keys.KeyError_):
        keys.hour_sk(24)
    with pytest.raises(keys.KeyError_):
        keys.metric_sk("listen_count#x")
