"""API abuse: no path parameter can reach another partition; a 10k-request burst leaves memory flat.

- property (pure): every key `keys` builds from a genre and a date either is refused or splits
  back into exactly that genre and date, so two different parameters never share a partition
  (genres may hold any script, `#` and `/`);
- property (over HTTP, the real query-api process): arbitrary genre/date/file-id path segments
  get 200 only for exactly a stored (genre, date), with that partition's values (the genre as
  the validator stores it: trimmed, NFC, lower-cased); everything else is 404 or 422, never a
  5xx and never someone else's data;
- burst: 10 000 requests (hits, misses, invalid input, unknown paths) from 32 loopback clients;
  the API answers all of them without a 5xx, and its resident memory (psutil, on the uvicorn
  process) stops growing once its bounded caches are full.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import json
import random
import re
import urllib.parse

import psutil
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from playcount.core import aws, keys
from playcount.core.kpis import DayKpis, GenreDay, GenreRank, HourStats, SongRank
from tests.support.helpers import get_json, wait_for

STORED_GENRES = ("rock", "rock&roll", "pop", "hip-hop", "hip-hop/rap", "r&b", "música mexicana", "forró", "c#")
STORED_DAYS = (dt.date(2025, 6, 24), dt.date(2025, 6, 25))

# genre-ish text: names a key may hold, stored genres as a person writes them or with an attempt
# appended, and anything at all
_ATTACKS = [
    "#DATE#2025-06-25", "#", "/", "/../pop", "/rap", "/days/2025-06-25", "%23", " ", "\x00", "\n", "'", "\u202e",
    "\u200b", "#METRIC#x", "?", "%2F", "\u0301", ".", "é" * 130,
]  # fmt: skip
genres = st.one_of(
    st.text(st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp")), min_size=1, max_size=40),
    st.sampled_from(STORED_GENRES),
    st.builds(lambda g, a: g + a, st.sampled_from(STORED_GENRES), st.sampled_from(_ATTACKS)),
    st.builds(lambda g: f" {g.upper()} ", st.sampled_from(STORED_GENRES)),
    st.sampled_from([".", "..", "", " ", "a" * 257]),
    st.text(max_size=80),
)
dates = st.one_of(
    st.dates().map(dt.date.isoformat),
    st.sampled_from([d.isoformat() for d in STORED_DAYS]),
    st.builds(lambda d, a: d.isoformat() + a, st.sampled_from(STORED_DAYS), st.sampled_from([*_ATTACKS, "T00:00"])),
    st.text(max_size=30),
)


# -- the key schema itself ------------------------------------------------------------------------
def _valid(genre: str) -> bool:
    """The API's rule: the name, normalised as the validator stores it, can be a key."""
    return keys.genre_problem(keys.normalise_genre(genre)) is None


@pytest.mark.fast
@hsettings(max_examples=500, deadline=None)
@given(genre=st.one_of(genres, st.text()), day=st.dates())
def test_a_genre_key_is_refused_or_names_exactly_its_own_partition(genre: str, day: dt.date):
    for name in (genre, keys.normalise_genre(genre)):
        try:
            pk = keys.genre_day_pk(name, day)
        except keys.KeyError_:
            assert keys.genre_problem(name) is not None
            continue
        # the date is the key's fixed-width tail: whatever `#` the genre holds, the key splits back
        assert pk == f"GENRE#{name}#DATE#{day.isoformat()}"
        assert keys.parse_genre_day_pk(pk) == (name, day)
        assert not pk.startswith((keys.CATALOG_DAYS_PK, keys.COUNTERS_PK, "DATE#", "PIPELINE#"))


@pytest.mark.fast
@hsettings(max_examples=500, deadline=None)
@given(a=st.tuples(genres, st.dates()), b=st.tuples(genres, st.dates()))
def test_different_parameters_never_share_a_partition(a, b):
    try:
        ka, kb = keys.genre_day_pk(*a), keys.genre_day_pk(*b)
    except keys.KeyError_:
        return
    assert (ka == kb) == (a == b)


@pytest.mark.fast
@given(hour=st.integers(), metric=st.text(max_size=40))
def test_sort_keys_refuse_what_is_out_of_range(hour: int, metric: str):
    if 0 <= hour <= 23:
        assert keys.hour_sk(hour) == f"HOUR#{hour:02d}"
    else:
        with pytest.raises(keys.KeyError_):
            keys.hour_sk(hour)
    if metric not in keys.METRICS:
        with pytest.raises(keys.KeyError_):
            keys.metric_sk(metric)


# -- over HTTP, against the real query-api process ------------------------------------------------
def _kpis(day: dt.date, version: int) -> DayKpis:
    """Distinct, recognisable figures per (genre, day), so a crossed partition would show."""
    genres_ = [
        GenreDay(
            genre=g,
            listen_count=100 * (i + 1) + day.day,
            unique_listeners=10 * (i + 1) + day.day,
            total_listening_time_ms=1_000_000 * (i + 1) + day.day,
            avg_listening_time_per_user_ms=round((1_000_000 * (i + 1) + day.day) / (10 * (i + 1) + day.day), 6),
            top_songs=[SongRank(rank=1, track_id=f"t-{g}-{day}", track_name="x", artists="y", listen_count=1)],
        )
        for i, g in enumerate(STORED_GENRES)
    ]
    ranked = sorted(genres_, key=lambda g: (-g.listen_count, g.genre))[:5]
    return DayKpis(
        date=day,
        version=version,
        computed_at=dt.datetime.now(dt.UTC),
        events=sum(g.listen_count for g in genres_),
        genres=genres_,
        top_genres=[GenreRank(rank=i + 1, genre=g.genre, listen_count=g.listen_count) for i, g in enumerate(ranked)],
        hours=[HourStats(hour=12, listen_count=1, unique_listeners=1, avg_listens_per_user=1.0,
                         track_diversity_index=1.0, top_artist="y", most_engaged_age_group="25-34")],
    )  # fmt: skip


@pytest.fixture
def api(settings, stack):
    """The query-api process serving KPIs written by the writer's own `apply`."""
    from playcount.writer.apply import apply

    ddb = aws.client(settings, "dynamodb")
    for day in STORED_DAYS:
        apply(ddb, settings.dynamodb_table_name, _kpis(day, 1), lease_seconds=30, wait_seconds=10)
    s = stack(settings, services=("query-api",))
    base = f"http://127.0.0.1:{settings.api_port}"
    wait_for(lambda: get_json(f"{base}/ready")[0] == 200, timeout=60, what="API ready")
    return s, settings


def _follow(conn: http.client.HTTPConnection, path: str) -> tuple[str, int, bytes]:
    """GET `path`, following the router's trailing-slash redirects (same host, at most 3)."""
    for _ in range(3):
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 307:
            return path, response.status, body
        target = urllib.parse.urlsplit(response.getheader("location") or "")
        assert target.hostname in (None, "127.0.0.1") and target.path, target
        path = target.path + (f"?{target.query}" if target.query else "")
    raise AssertionError(f"redirect loop at {path}")


@pytest.mark.e2e
def test_no_path_parameter_reaches_another_partition(api):
    _, settings = api
    conn = http.client.HTTPConnection("127.0.0.1", settings.api_port, timeout=10)
    stored = {(g.genre, d.isoformat()): g for d in STORED_DAYS for g in _kpis(d, 1).genres}

    @hsettings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(genre=genres, date=dates)
    def check(genre: str, date: str) -> None:
        asked = f"/genres/{urllib.parse.quote(genre, safe='')}/days/{urllib.parse.quote(date, safe='')}"
        path, status, body = _follow(conn, asked)
        assert status in (200, 404, 422), (asked, path, status, body[:300])
        if path != asked:
            # the router's trailing-slash redirect; it decodes the path once more (%2500 -> %00),
            # which is harmless only because the redirected request is validated again: below
            assert path.startswith("/genres/") and not path.endswith("/"), (asked, path)
        if status == 200:
            served = json.loads(body)
            named = _named(path)
            assert named in stored, f"{asked} served data for a partition nobody stored"
            want = stored[named]
            assert (served["genre"], served["date"]) == named
            assert served["listen_count"] == want.listen_count
            assert served["top_songs"][0]["track_id"] == want.top_songs[0].track_id
        elif _valid(genre) and (keys.normalise_genre(genre), date) in stored:
            raise AssertionError(f"{asked}: stored data answered {status}")
        if status == 422:
            assert not (_valid(genre) and _real(date)), f"{asked}: valid parameters refused"

    check()

    @hsettings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(file_id=st.one_of(st.text(max_size=40), st.just("../" * 3 + "metadata"), st.from_regex(r"[0-9a-f]{24}")))
    def check_files(file_id: str) -> None:
        _, status, body = _follow(conn, f"/files/{urllib.parse.quote(file_id, safe='')}")
        assert status in (404, 422), (file_id, status, body[:300])

    check_files()
    conn.close()


def _named(path: str) -> tuple[str, str]:
    """The (stored genre, date) a path names, as the server reads it: decoded once (`%2F` is a
    `/`), the date is the last segment after `/days/`, the genre everything before it."""
    genre, _, date = urllib.parse.unquote(path.removeprefix("/genres/")).rpartition("/days/")
    return keys.normalise_genre(genre), date


def _real(date: str) -> bool:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", date):
        return False
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        return False
    return True


# -- a burst of 10k requests ----------------------------------------------------------------------------
def _paths(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.random()
        day = rng.choice(STORED_DAYS).isoformat()
        if kind < 0.4:  # hits
            out.append(f"/genres/{rng.choice(STORED_GENRES)}/days/{day}")
        elif kind < 0.6:  # misses: a new valid genre each time (fills the read cache)
            out.append(f"/genres/g{seed}-{i}/days/{day}")
        elif kind < 0.75:  # invalid genre: any name with a control or invisible format character
            junk = "".join(rng.choice("abcXYZé#%/&") for _ in range(12)) + rng.choice("\x00\n\x7f\u202e\u200b")
            out.append(f"/genres/{urllib.parse.quote(junk, safe='')}/days/{day}")
        elif kind < 0.85:  # invalid date
            out.append(f"/days/{rng.randint(0, 10**9)}/top-genres")
        elif kind < 0.95:
            out.append(f"/days/{day}/hours")
        else:  # no such route
            out.append(f"/nothing/{i}")
    return out


async def _burst(port: int, paths: list[str], errors: list[str], clients: int = 32) -> dict[int, int]:
    import httpx

    statuses: dict[int, int] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for p in paths:
        queue.put_nowait(p)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:

        async def get(path: str) -> int:
            try:
                return (await client.get(path)).status_code
            except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
                # a kept-alive connection the server closed as we reused it: like any HTTP
                # client, retry the idempotent GET once on a fresh connection, and count it
                errors.append(f"retried {path}: {exc!r}")
                return (await client.get(path)).status_code

        async def worker() -> None:
            while not queue.empty():
                path = queue.get_nowait()
                try:
                    code = await get(path)
                except httpx.HTTPError as exc:
                    code = 0
                    errors.append(f"failed {path}: {exc!r}")
                statuses[code] = statuses.get(code, 0) + 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    return statuses


@pytest.mark.e2e
def test_a_burst_of_10k_requests_leaves_the_api_answering_with_flat_memory(api):
    stack_, settings = api
    proc = psutil.Process(stack_.procs["query-api"].pid)
    mib = 1024 * 1024
    errors: list[str] = []
    asyncio.run(_burst(settings.api_port, _paths(2000, seed=1), errors))  # warm-up: allocator, label sets, caches
    rss = [proc.memory_info().rss / mib]

    statuses: dict[int, int] = {}
    for half in (2, 3):
        for code, n in asyncio.run(_burst(settings.api_port, _paths(5000, seed=half), errors)).items():
            statuses[code] = statuses.get(code, 0) + n
        rss.append(proc.memory_info().rss / mib)

    print(
        f"burst statuses {dict(sorted(statuses.items()))}; RSS MiB after warm-up/5k/10k: {[round(r, 1) for r in rss]}"
    )
    assert sum(statuses.values()) == 10_000
    assert set(statuses) <= {200, 404, 422}, (statuses, [e for e in errors if e.startswith("failed")][:5])
    assert proc.is_running() and get_json(f"http://127.0.0.1:{settings.api_port}/ready")[0] == 200
    status, body = get_json(f"http://127.0.0.1:{settings.api_port}/genres/rock/days/2025-06-24")
    assert status == 200 and body["listen_count"] == _kpis(STORED_DAYS[0], 1).genres[0].listen_count
    # flat: the second 5k add (almost) nothing over the first, and the whole burst stays bounded
    assert rss[2] - rss[1] < 8, rss
    assert rss[2] - rss[0] < 24, rss
