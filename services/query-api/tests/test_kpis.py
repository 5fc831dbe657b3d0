"""KPI lookups over real HTTP, on data the real writer put in the emulator's table."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import httpx
import pytest

from playcount.core import aws
from playcount.core.config import Settings
from playcount.core.kpis import DayKpis, GenreDay, GenreRank, SongRank
from playcount.devstack.emulator import free_port
from playcount.writer.apply import apply
from tests.support.helpers import wait_for


@pytest.fixture
def api(shared_api):
    return shared_api


@pytest.fixture
def written(shared_written):
    return shared_written


def test_genre_day_serves_exactly_what_was_written(api, written):
    # GIVEN every genre of every day, as computed by the oracle and applied by the writer
    for day, expected in written.expected.items():
        # every genre of the first day, the top genre of the second (each lookup is a real query)
        genres = expected["genres"] if day == written.days[0] else [expected["top_genres"][0]["genre"]]
        for genre in genres:
            want = expected["genres"][genre]
            # WHEN a client asks for it
            response = httpx.get(f"{api}/genres/{genre}/days/{day}")
            # THEN it gets the same figures, the version and when they were computed
            assert response.status_code == 200, response.text
            got = response.json()
            assert got["genre"] == genre and got["date"] == day
            for field in ("listen_count", "unique_listeners", "total_listening_time_ms", "top_songs"):
                assert got[field] == want[field], (day, genre, field)
            assert got["avg_listening_time_per_user_ms"] == pytest.approx(want["avg_listening_time_per_user_ms"])
            assert got["version"] == 1
            assert got["computed_at"] == written.kpis[day].computed_at.isoformat()


def test_top_genres_and_hours_of_each_day(api, written):
    for day, expected in written.expected.items():
        top = httpx.get(f"{api}/days/{day}/top-genres")
        assert top.status_code == 200
        assert top.json() == {"date": day, "genres": expected["top_genres"]}
        hours = httpx.get(f"{api}/days/{day}/hours")
        assert hours.status_code == 200
        got = hours.json()["hours"]
        want = [expected["hours"][h] for h in sorted(expected["hours"])]
        assert [h["hour"] for h in got] == [h["hour"] for h in want]
        for g, w in zip(got, want, strict=True):
            assert g == pytest.approx(w), g["hour"]


def test_days_and_genres_list_what_exists(api, written):
    days = httpx.get(f"{api}/days").json()["days"]
    assert [d["date"] for d in days] == written.days == ["2025-06-24", "2025-06-25"]
    for entry in days:
        kpis = written.kpis[entry["date"]]
        assert entry["version"] == kpis.version
        assert entry["events"] == kpis.events
        assert entry["genres"] == sorted(written.expected[entry["date"]]["genres"])
    genres = httpx.get(f"{api}/genres").json()["genres"]
    assert genres == sorted({g for e in written.expected.values() for g in e["genres"]})


def test_discovery_is_empty_before_any_data(settings, serve):
    api = serve(settings).url
    assert httpx.get(f"{api}/days").json() == {"days": []}
    assert httpx.get(f"{api}/genres").json() == {"genres": []}


def test_missing_data_is_a_404_that_says_what_is_missing(api, written):
    day = written.days[0]
    present = next(iter(written.expected[day]["genres"]))
    cases = {
        f"/genres/no-such-genre/days/{day}": ["'no-such-genre'", day],
        f"/genres/{present}/days/2024-01-01": [repr(present), "2024-01-01"],
        "/days/2024-01-01/top-genres": ["2024-01-01"],
        "/days/2024-01-01/hours": ["2024-01-01"],
        "/files/" + "ab" * 12: ["ab" * 12],
    }
    for path, words in cases.items():
        response = httpx.get(api + path)
        assert response.status_code == 404, path
        detail = response.json()["detail"]
        for word in words:
            assert word in detail, (path, detail)


BAD_DATES = ["2025-02-30", "2025-13-01", "20250624", "0", "1700000000", "2025-06-24T00:00:00", "yesterday", "2025-6-4"]
# names that cannot be a key: control characters, over 256 bytes of UTF-8, invisible format characters,
# blank; and (below) the URL dot segments, sent encoded: clients remove a literal one from a path
BAD_GENRES = ["rock\x00", "rock\nroll", "\x7f", "a" * 257, "é" * 129, "\u202erock", "ro\u200bck", "   ", ""]


@pytest.mark.parametrize("date", BAD_DATES)
def test_a_bad_date_is_a_readable_422(api, date):
    for path in (f"/genres/rock/days/{date}", f"/days/{date}/top-genres", f"/days/{date}/hours"):
        response = httpx.get(api + path)
        assert response.status_code == 422, (path, response.text)
        body = response.json()
        assert body["detail"].startswith("date: "), body
        assert body["errors"][0]["loc"] == ["path", "date"]


@pytest.mark.parametrize("path", [f"/genres/{quote(g, safe='')}/days/2025-06-24" for g in BAD_GENRES] + [
    "/genres/%2E/days/2025-06-24", "/genres/%2E%2E/days/2025-06-24"
])  # fmt: skip
def test_a_bad_genre_is_a_readable_422_and_reaches_no_key(api, written, path):
    response = httpx.get(api + path)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("genre: ")


def test_a_genre_naming_another_day_stays_in_its_own_partition(api, written):
    # GIVEN a genre with data on 2025-06-25
    genre = next(iter(written.expected["2025-06-25"]["genres"]))
    # WHEN a client asks for that genre with `#DATE#2025-06-25` appended, on 2025-06-24
    response = httpx.get(f"{api}/genres/{quote(genre + '#DATE#2025-06-25', safe='')}/days/2025-06-24")
    # THEN that is the genre `{genre}#date#2025-06-25` on 2025-06-24: nobody's data, a 404
    assert response.status_code == 404, response.text
    assert repr(f"{genre}#date#2025-06-25") in response.json()["detail"]


def _genre_days(day: dt.date, names: list[str]) -> DayKpis:
    """A day of the named genres, with distinct figures (a crossed partition would show)."""
    genres = [
        GenreDay(
            genre=name,
            listen_count=10 + i,
            unique_listeners=1 + i,
            total_listening_time_ms=60_000 * (10 + i),
            avg_listening_time_per_user_ms=60_000 * (10 + i) / (1 + i),
            top_songs=[SongRank(rank=1, track_id=f"t{i}", track_name=f"S{i}", artists="A", listen_count=10 + i)],
        )
        for i, name in enumerate(names)
    ]
    ranked = sorted(genres, key=lambda g: (-g.listen_count, g.genre))[:5]
    return DayKpis(
        date=day,
        version=1,
        computed_at=dt.datetime.now(dt.UTC),
        events=sum(g.listen_count for g in genres),
        genres=genres,
        top_genres=[GenreRank(rank=i + 1, genre=g.genre, listen_count=g.listen_count) for i, g in enumerate(ranked)],
        hours=[],
    )


def test_any_genre_name_is_served_by_its_percent_encoded_name_in_any_case(settings, serve):
    # GIVEN genres in several scripts, with '&', '/' and '#', applied by the writer as the validator stores them
    asked = {
        "música mexicana": ["música mexicana", "Música Mexicana", "  MÚSICA MEXICANA ", "mu\u0301sica mexicana"],
        "r&b": ["r&b", "R&B"],
        "forró": ["forró", "FORRO\u0301"],
        "k-pop": ["K-Pop"],
        "hip-hop/rap": ["hip-hop/rap", "Hip-Hop/Rap"],
        "c#": ["C#"],
    }
    kpis = _genre_days(dt.date(2025, 6, 24), list(asked))
    apply(aws.client(settings, "dynamodb"), settings.dynamodb_table_name, kpis, lease_seconds=30, wait_seconds=10)
    api = serve(settings).url
    for stored, spellings in asked.items():
        want = next(g for g in kpis.genres if g.genre == stored)
        for name in spellings:
            # WHEN a client asks with the name percent-encoded, as stored or as a person writes it
            response = httpx.get(f"{api}/genres/{quote(name, safe='')}/days/2025-06-24")
            # THEN it gets exactly that genre's day, under its stored name
            assert response.status_code == 200, (name, response.text)
            body = response.json()
            assert body["genre"] == stored, name
            assert (
                body["listen_count"] == want.listen_count
                and body["top_songs"][0]["track_id"] == want.top_songs[0].track_id
            )
    # a '/' need not be encoded: the date is the last segment, everything between is the genre
    assert httpx.get(f"{api}/genres/hip-hop/rap/days/2025-06-24").json()["genre"] == "hip-hop/rap"
    assert httpx.get(f"{api}/genres/hip-hop/days/2025-06-24").status_code == 404
    # a close but different name is another genre
    response = httpx.get(f"{api}/genres/{quote('musica mexicana')}/days/2025-06-24")
    assert response.status_code == 404 and "'musica mexicana'" in response.json()["detail"]
    # discovery names them as stored
    assert httpx.get(f"{api}/genres").json()["genres"] == sorted(asked)
    top = httpx.get(f"{api}/days/2025-06-24/top-genres").json()["genres"]
    assert [g["genre"] for g in top] == [g.genre for g in sorted(kpis.genres, key=lambda g: -g.listen_count)][:5]


def test_etag_and_cache_control_give_304s(api, written):
    genre = next(iter(written.expected["2025-06-24"]["genres"]))
    for path in (f"/genres/{genre}/days/2025-06-24", "/days/2025-06-24/top-genres", "/days/2025-06-24/hours", "/days"):
        first = httpx.get(api + path)
        etag = first.headers["etag"]
        assert etag.startswith('"') and first.headers["cache-control"].startswith("public, max-age=")
        again = httpx.get(api + path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        other = httpx.get(api + path, headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200 and other.json() == first.json()


def test_cached_reads_within_the_lifetime_then_the_new_version(settings, fresh_written, serve):
    # GIVEN an API caching for 30 s that has served version 1 (and one caching for 0.5 s)
    written = fresh_written
    slow = serve(settings.model_copy(update={"api_cache_seconds": 30.0})).url
    fast_server = serve(settings.model_copy(update={"api_cache_seconds": 0.5}))
    fast, fast_cache = fast_server.url, fast_server.app.state.cache
    top, v2 = written.bumped("2025-06-24")
    path = f"/genres/{top}/days/2025-06-24"
    before = httpx.get(slow + path)
    assert httpx.get(fast + path).json()["version"] == 1
    # while the date's HEAD keeps version 1, an expired entry is kept after one HEAD read, not reloaded
    loads = fast_cache.loads
    wait_for(lambda: httpx.get(fast + path) and fast_cache.revalidated >= 1, timeout=10, what="a revalidation")
    assert fast_cache.loads == loads
    assert before.headers["cache-control"] == "public, max-age=30"
    # WHEN the writer applies version 2
    written.apply(v2)
    # THEN the 30 s cache still serves version 1 (the lookup cost no DynamoDB call) ...
    assert httpx.get(slow + path).json() == before.json()
    # ... and the 0.5 s cache serves version 2 once its lifetime has passed, with a new ETag
    after = wait_for(
        lambda: (r := httpx.get(fast + path)).json()["version"] == 2 and r, timeout=10, what="version 2 to be served"
    )
    assert after.json()["listen_count"] == written.expected["2025-06-24"]["genres"][top]["listen_count"] + 1
    assert after.headers["etag"] != before.headers["etag"]
    assert httpx.get(fast + path, headers={"If-None-Match": before.headers["etag"]}).status_code == 200


def test_unreachable_dynamodb_is_a_503_never_a_500(settings: Settings, serve):
    dead = serve(settings.model_copy(update={"aws_endpoint_url": f"http://127.0.0.1:{free_port()}"})).url
    for path in ("/genres/rock/days/2025-06-24", "/days/2025-06-24/top-genres", "/days", "/pipeline/status"):
        response = httpx.get(dead + path, timeout=30)
        assert response.status_code == 503, (path, response.text)
        assert "cannot be reached" in response.json()["detail"]
