"""The analysts' endpoints over real HTTP, on data the real writer put in the emulator's table:
a genre's trend over a range, a day's full ranking a page at a time, each day's totals, and
every KPI endpoint as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from urllib.parse import quote

import httpx
import pytest
from prometheus_client import REGISTRY

from playcount.api import cursors
from playcount.api.trends import unsettled
from playcount.core import aws, keys
from playcount.core.kpis import RANKING_CHUNK, DayKpis, GenreDay, GenreRank, SongRank, TrendDay
from playcount.writer.apply import apply

DAY1, DAY2 = "2025-06-24", "2025-06-25"


def _ranked(expected: dict) -> list[tuple[str, dict]]:
    return sorted(expected["genres"].items(), key=lambda kv: (-kv[1]["listen_count"], kv[0]))


def test_a_genres_trend_is_its_days_in_range_oldest_first(shared_api, shared_written):
    api, written = shared_api, shared_written
    every = {g for e in written.expected.values() for g in e["genres"]}
    for genre in sorted(every):
        # WHEN a client asks for the genre over a range holding both days
        response = httpx.get(f"{api}/genres/{quote(genre, safe='')}/days", params={"from": "2025-06-01", "to": DAY2})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["genre"], body["from"], body["to"]) == (genre, "2025-06-01", DAY2)
        # THEN it gets each day that has the genre, oldest first, with the oracle's figures
        want_days = [d for d in written.days if genre in written.expected[d]["genres"]]
        assert [d["date"] for d in body["days"]] == want_days
        for got in body["days"]:
            expected = written.expected[got["date"]]
            want = expected["genres"][genre]
            for field in ("listen_count", "unique_listeners", "total_listening_time_ms"):
                assert got[field] == want[field], (genre, got["date"], field)
            assert got["avg_listening_time_per_user_ms"] == pytest.approx(want["avg_listening_time_per_user_ms"])
            assert got["rank"] == [g for g, _ in _ranked(expected)].index(genre) + 1
            assert got["share"] == pytest.approx(want["listen_count"] / expected["listens"], abs=1e-6)
            assert got["version"] == written.kpis[got["date"]].version
            assert got["computed_at"] == written.kpis[got["date"]].computed_at.isoformat()
    # a range of one day, and one without data
    top = written.expected[DAY2]["top_genres"][0]["genre"]
    one = httpx.get(f"{api}/genres/{quote(top, safe='')}/days", params={"from": DAY2, "to": DAY2}).json()
    assert [d["date"] for d in one["days"]] == [DAY2]
    none = httpx.get(f"{api}/genres/{quote(top, safe='')}/days", params={"from": "2024-01-01", "to": "2024-12-31"})
    assert none.status_code == 200 and none.json()["days"] == []


def _dynamodb_calls() -> dict[str, float]:
    """The API's DynamoDB calls so far, per operation (its Prometheus counter; the API under test
    runs in this process, and `/metrics` itself would read DynamoDB)."""
    return {
        op: REGISTRY.get_sample_value("playcount_api_dynamodb_seconds_count", {"operation": op}) or 0.0
        for op in ("query", "get_item")
    }


def test_a_trend_costs_two_queries_whatever_its_range(settings, fresh_written, serve):
    # GIVEN an API without a cache (every request reads DynamoDB)
    api = serve(settings.model_copy(update={"api_cache_seconds": 0.0})).url
    genre = fresh_written.expected[DAY1]["top_genres"][0]["genre"]
    for first, last in ((DAY1, DAY1), ("2024-06-25", DAY2)):  # one day, and 366 days (both ends included)
        before = _dynamodb_calls()
        # WHEN it serves a trend
        assert httpx.get(f"{api}/genres/{genre}/days", params={"from": first, "to": last}).status_code == 200
        # THEN it made two queries (the genre's items and the days' versions), nothing per day
        after = _dynamodb_calls()
        calls = {op: after[op] - before[op] for op in after if after[op] != before[op]}
        assert calls == {"query": 2}, (first, last, calls)


def test_the_days_totals_are_exact_and_a_range_selects_them(shared_api, shared_written):
    api, written = shared_api, shared_written
    days = httpx.get(f"{api}/days").json()["days"]
    for entry in days:
        expected, kpis = written.expected[entry["date"]], written.kpis[entry["date"]]
        assert (entry["listens"], entry["unique_listeners"]) == (expected["listens"], expected["unique_listeners"])
        # distinct over the day: fewer than the genres' listeners summed (a user hears several genres)
        assert entry["unique_listeners"] < sum(g["unique_listeners"] for g in expected["genres"].values())
        assert entry["computed_at"] == kpis.computed_at.isoformat()
    assert [d["date"] for d in httpx.get(f"{api}/days", params={"from": DAY2}).json()["days"]] == [DAY2]
    assert [d["date"] for d in httpx.get(f"{api}/days", params={"to": DAY1}).json()["days"]] == [DAY1]
    both = httpx.get(f"{api}/days", params={"from": DAY1, "to": DAY2}).json()["days"]
    assert both == days


def test_a_days_full_ranking_pages_through_every_genre(shared_api, shared_written):
    api, written = shared_api, shared_written
    for day in written.days:
        expected = written.expected[day]
        want = [
            {
                "rank": i + 1,
                "genre": g,
                "listen_count": v["listen_count"],
                "unique_listeners": v["unique_listeners"],
                "share": pytest.approx(v["listen_count"] / expected["listens"], abs=1e-6),
            }
            for i, (g, v) in enumerate(_ranked(expected))
        ]
        whole = httpx.get(f"{api}/days/{day}/genres").json()
        assert whole["genres"] == want and whole["total"] == len(want) and whole["next_cursor"] is None
        assert whole["listens"] == expected["listens"]
        # its first five are the top five, rank for rank
        top = httpx.get(f"{api}/days/{day}/top-genres").json()["genres"]
        assert [{k: g[k] for k in ("rank", "genre", "listen_count")} for g in whole["genres"][:5]] == top
        # pages of 3 follow each other to the end
        pages, cursor = [], None
        while True:
            params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
            page = httpx.get(f"{api}/days/{day}/genres", params=params).json()
            pages += page["genres"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == whole["genres"]


def _many_genres(day: dt.date, count: int, version: int = 1) -> DayKpis:
    """A day of `count` genres whose listens make a known order (ties by name included)."""
    genres = [
        GenreDay(
            genre=f"g{i:04d}",
            listen_count=1 + i // 3,
            unique_listeners=1,
            total_listening_time_ms=1000,
            avg_listening_time_per_user_ms=1000.0,
            top_songs=[SongRank(rank=1, track_id=f"t{i}", track_name="S", artists="A", listen_count=1 + i // 3)],
        )
        for i in range(count)
    ]
    order = sorted(genres, key=lambda g: (-g.listen_count, g.genre))
    return DayKpis(
        date=day,
        version=version,
        computed_at=dt.datetime.now(dt.UTC),
        events=sum(g.listen_count for g in genres),
        unique_listeners=1,
        genres=genres,
        top_genres=[GenreRank(rank=i + 1, genre=g.genre, listen_count=g.listen_count) for i, g in enumerate(order[:5])],
        hours=[],
    )


def test_a_ranking_longer_than_one_item_and_a_cursor_of_an_older_version(settings, serve):
    # GIVEN a day with more genres than one ranking item holds, applied by the writer
    day = dt.date(2025, 7, 1)
    ddb = aws.client(settings, "dynamodb")
    kpis = _many_genres(day, RANKING_CHUNK + 20)
    apply(ddb, settings.dynamodb_table_name, kpis, lease_seconds=30, wait_seconds=10)
    api = serve(settings.model_copy(update={"api_cache_seconds": 0.0})).url
    order = [g.genre for g in sorted(kpis.genres, key=lambda g: (-g.listen_count, g.genre))]
    # WHEN a client pages through it across the items' boundary
    first = httpx.get(f"{api}/days/{day}/genres", params={"limit": RANKING_CHUNK - 10}).json()
    second = httpx.get(f"{api}/days/{day}/genres", params={"limit": 500, "cursor": first["next_cursor"]}).json()
    # THEN the pages hold every genre once, in rank order
    assert [g["genre"] for g in first["genres"] + second["genres"]] == order
    assert [g["rank"] for g in second["genres"]] == list(range(RANKING_CHUNK - 9, len(order) + 1))
    assert second["next_cursor"] is None and second["total"] == len(order)
    # WHEN the day is recomputed and the client continues with a cursor of the old version
    ddb_kpis = _many_genres(day, 30, version=2)
    apply(ddb, settings.dynamodb_table_name, ddb_kpis, lease_seconds=30, wait_seconds=10)
    stale = httpx.get(f"{api}/days/{day}/genres", params={"limit": 10, "cursor": first["next_cursor"]})
    # THEN it is told to start again, and the first page is of the new version
    assert stale.status_code == 409 and "start again" in stale.json()["detail"], stale.text
    fresh = httpx.get(f"{api}/days/{day}/genres").json()
    assert fresh["version"] == 2 and fresh["total"] == 30
    # the old version's second ranking item is gone with it (complete replacement)
    items = ddb.query(
        TableName=settings.dynamodb_table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
        ExpressionAttributeValues={":pk": {"S": keys.day_pk(day)}, ":sk": {"S": keys.RANKING_PREFIX}},
        ConsistentRead=True,
    )["Items"]
    assert [i["sk"]["S"] for i in items] == [keys.ranking_sk(0)]


def _csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


@pytest.mark.parametrize(
    ("path", "rows"),
    [
        (f"/days/{DAY1}/top-genres", "genres"),
        (f"/days/{DAY1}/hours", "hours"),
        (f"/days/{DAY1}/genres", "genres"),
        ("/days", "days"),
        ("/genres", "genres"),
        ("/genres/{top}/days?from=2025-06-01&to=2025-06-30", "days"),
    ],
)
def test_every_list_endpoint_exports_csv_with_the_jsons_columns(shared_api, shared_written, path, rows):
    api = shared_api
    top = shared_written.expected[DAY1]["top_genres"][0]["genre"]
    url = api + path.format(top=quote(top, safe=""))
    body = httpx.get(url).json()
    sep = "&" if "?" in url else "?"
    # WHEN a client asks for CSV, by query parameter or by Accept header
    by_param = _csv(httpx.get(f"{url}{sep}format=csv"))
    by_accept = _csv(httpx.get(url, headers={"Accept": "text/csv"}))
    # THEN both are the JSON's rows, the response's own fields repeated before each row's
    assert by_param == by_accept
    elements = body[rows]
    assert len(by_param) == len(elements) > 0
    outer = {k: v for k, v in body.items() if k != rows}
    for line, element in zip(by_param, elements, strict=True):
        fields = {**outer, **element} if isinstance(element, dict) else {**outer, rows: element}
        assert line == {k: _cell(v) for k, v in fields.items()}, line


def test_a_genres_day_exports_a_line_per_top_song(shared_api, shared_written):
    top = shared_written.expected[DAY1]["top_genres"][0]["genre"]
    url = f"{shared_api}/genres/{quote(top, safe='')}/days/{DAY1}"
    body = httpx.get(url).json()
    lines = _csv(httpx.get(url, params={"format": "csv"}))
    assert len(lines) == len(body["top_songs"])
    for line, song in zip(lines, body["top_songs"], strict=True):
        assert line["genre"] == top and line["listen_count"] == str(body["listen_count"])
        assert {k.removeprefix("top_songs."): v for k, v in line.items() if k.startswith("top_songs.")} == {
            k: str(v) for k, v in song.items()
        }


def test_a_csv_cell_a_spreadsheet_would_run_is_quoted(settings, serve):
    day = dt.date(2025, 7, 2)
    kpis = _many_genres(day, 1)
    kpis = kpis.model_copy(update={"genres": [kpis.genres[0].model_copy(update={"genre": "=hyperlink"})]})
    apply(aws.client(settings, "dynamodb"), settings.dynamodb_table_name, kpis, lease_seconds=30, wait_seconds=10)
    api = serve(settings).url
    lines = _csv(httpx.get(f"{api}/days/{day}/genres", params={"format": "csv"}))
    assert [line["genre"] for line in lines] == ["'=hyperlink"]
    assert httpx.get(f"{api}/days/{day}/genres").json()["genres"][0]["genre"] == "=hyperlink"


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"from": DAY2, "to": DAY1}, "is after to"),
        ({"from": "2024-06-24", "to": DAY2}, "at most 366"),
        ({"from": "2025-02-30", "to": DAY2}, "not a real date"),
        ({"from": "yesterday", "to": DAY2}, "YYYY-MM-DD"),
        ({"to": DAY2}, "from"),
    ],
)
def test_a_bad_range_is_a_readable_422(shared_api, shared_written, params, says):
    top = shared_written.expected[DAY1]["top_genres"][0]["genre"]
    response = httpx.get(f"{shared_api}/genres/{quote(top, safe='')}/days", params=params)
    assert response.status_code == 422 and says in response.json()["detail"], response.text
    if says in ("is after to", "at most 366"):  # the same rules bound /days when both ends are given
        assert httpx.get(f"{shared_api}/days", params=params).status_code == 422


def test_unknown_genres_bad_cursors_and_limits_are_4xx(shared_api):
    assert httpx.get(f"{shared_api}/genres/no-such-genre/days", params={"from": DAY1, "to": DAY2}).status_code == 404
    for cursor in ("garbage", "eyJ2IjotMSwibyI6MH0", "e30"):
        response = httpx.get(f"{shared_api}/days/{DAY1}/genres", params={"cursor": cursor})
        assert response.status_code == 422 and "cursor" in response.json()["detail"], response.text
    for limit in (0, 501, "x"):
        assert httpx.get(f"{shared_api}/days/{DAY1}/genres", params={"limit": limit}).status_code == 422
    assert httpx.get(f"{shared_api}/days/1999-01-01/genres").status_code == 404
    # a cursor past the day's last genre (which the API never issues) finds nothing
    version = httpx.get(f"{shared_api}/days/{DAY1}/genres").json()["version"]
    past = cursors.encode(cursors.Page(version, 1000))
    assert httpx.get(f"{shared_api}/days/{DAY1}/genres", params={"cursor": past}).status_code == 404
    assert httpx.get(f"{shared_api}/days", params={"format": "xml"}).status_code == 422


def _trend_day(day: str, version: int) -> TrendDay:
    return TrendDay(
        date=dt.date.fromisoformat(day),
        listen_count=1,
        unique_listeners=1,
        total_listening_time_ms=1,
        avg_listening_time_per_user_ms=1.0,
        rank=1,
        share=1.0,
        version=version,
        computed_at="",
    )


def _entry(day: str, version: int, genres: list[str], flagged: bool = True) -> dict:
    return {"date": day, "version": Decimal(version), "genres": genres} | ({"trend_items": True} if flagged else {})


@pytest.mark.fast
def test_a_trend_is_served_only_when_each_day_agrees_with_its_committed_version():
    rock = [_entry(DAY1, 3, ["rock"]), _entry(DAY2, 5, ["rock"])]
    # every day's item carries the version its catalogue entry holds: whole
    assert unsettled("rock", [_trend_day(DAY1, 3), _trend_day(DAY2, 5)], rock) is None
    # an item newer than its entry: an apply under way (it may yet be cut short)
    assert unsettled("rock", [_trend_day(DAY1, 3), _trend_day(DAY2, 6)], rock) == dt.date(2025, 6, 25)
    # an entry naming the genre without its item: an apply under way removed it
    assert unsettled("rock", [_trend_day(DAY2, 5)], rock) == dt.date(2025, 6, 24)
    # an item whose day has no entry yet: written before the entry
    assert unsettled("rock", [_trend_day(DAY1, 3)], []) == dt.date(2025, 6, 24)
    # a day whose entry does not name the genre has no item: whole
    assert unsettled("rock", [], [_entry(DAY1, 3, ["jazz"])]) is None
    # a day written before trend items existed is not checked, unless an item appears (an apply under way)
    assert unsettled("rock", [], [_entry(DAY1, 3, ["rock"], flagged=False)]) is None
    assert unsettled("rock", [_trend_day(DAY1, 4)], [_entry(DAY1, 3, ["rock"], flagged=False)]) == dt.date(2025, 6, 24)


def test_a_trend_over_an_unfinished_apply_is_a_503_not_a_mix(settings, fresh_written, serve):
    # GIVEN a trend item of a version whose apply has not finished (its catalogue entry is older)
    genre = fresh_written.expected[DAY1]["top_genres"][0]["genre"]
    ddb = aws.client(settings, "dynamodb")
    key = {"pk": {"S": keys.trend_pk(genre)}, "sk": {"S": keys.date_sk(dt.date.fromisoformat(DAY1))}}
    ddb.update_item(
        TableName=settings.dynamodb_table_name,
        Key=key,
        UpdateExpression="SET version = :v",
        ExpressionAttributeValues={":v": {"N": "99"}},
    )
    api = serve(settings.model_copy(update={"api_cache_seconds": 0.0})).url
    # WHEN a client asks for a range holding that day
    response = httpx.get(f"{api}/genres/{genre}/days", params={"from": DAY1, "to": DAY2})
    # THEN it is told to retry, rather than given a version the day may never commit
    assert response.status_code == 503 and response.headers["retry-after"] == "1", response.text
    assert DAY1 in response.json()["detail"]
    # and a range without that day is served
    assert httpx.get(f"{api}/genres/{genre}/days", params={"from": DAY2, "to": DAY2}).status_code == 200
