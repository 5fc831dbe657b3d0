"""An independent computation of the KPI definitions in plain Python, to check the pipeline against.

It shares no code with the runner: events are de-duplicated on (user_id, track_id, listen_time),
dated and houred in UTC, joined to their track and user, and aggregated by hand.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

AGE_BINS = [("<18", 0, 17), ("18-24", 18, 24), ("25-34", 25, 34), ("35-44", 35, 44), ("45-54", 45, 54),
            ("55-64", 55, 64), ("65+", 65, 10**6)]  # fmt: skip


def parse_time(text: str) -> dt.datetime:
    text = text.strip().replace(" ", "T")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _bin(age: int) -> int:
    for i, (_, lo, hi) in enumerate(AGE_BINS):
        if lo <= age <= hi:
            return i
    raise ValueError(age)


def kpis(
    events: Iterable[tuple[str, str, str]],
    songs: Mapping[str, Mapping[str, Any]],
    users: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """{date: {"genres": {genre: {...}}, "top_genres": [...], "hours": {hour: {...}}}}"""
    unique = {(u.strip(), t.strip(), parse_time(w)) for u, t, w in events}
    by_day: dict[dt.date, list[tuple[str, str, dt.datetime]]] = defaultdict(list)
    for u, t, w in unique:
        by_day[w.date()].append((u, t, w))
    return {day.isoformat(): _day(rows, songs, users) for day, rows in by_day.items()}


def _day(
    rows: list[tuple[str, str, dt.datetime]], songs: Mapping[str, Any], users: Mapping[str, Any]
) -> dict[str, Any]:
    genres: dict[str, dict[str, Any]] = {}
    per_genre: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for u, t, _ in rows:
        per_genre[songs[t]["track_genre"]].append((u, t))
    for genre, evs in per_genre.items():
        total = sum(int(songs[t]["duration_ms"]) for _, t in evs)
        listeners = len({u for u, _ in evs})
        plays = Counter(t for _, t in evs)
        top = sorted(plays.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        genres[genre] = {
            "listen_count": len(evs),
            "unique_listeners": listeners,
            "total_listening_time_ms": total,
            "avg_listening_time_per_user_ms": round(total / listeners, 6),
            "top_songs": [
                {
                    "rank": i + 1,
                    "track_id": t,
                    "track_name": songs[t]["track_name"],
                    "artists": songs[t]["artists"],
                    "listen_count": n,
                }
                for i, (t, n) in enumerate(top)
            ],
        }
    ranked = sorted(genres.items(), key=lambda kv: (-kv[1]["listen_count"], kv[0]))[:5]
    top_genres = [{"rank": i + 1, "genre": g, "listen_count": v["listen_count"]} for i, (g, v) in enumerate(ranked)]
    hours: dict[int, dict[str, Any]] = {}
    per_hour: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for u, t, w in rows:
        per_hour[w.hour].append((u, t))
    for hour, evs in per_hour.items():
        listeners = len({u for u, _ in evs})
        artists: Counter[str] = Counter()
        ages: Counter[int] = Counter()
        for u, t in evs:
            for a in str(songs[t]["artists"]).split(";"):
                if a.strip():
                    artists[a.strip()] += 1
            ages[_bin(int(users[u]["user_age"]))] += 1
        top_artist = min(artists.items(), key=lambda kv: (-kv[1], kv[0]))[0] if artists else None
        top_age = min(ages.items(), key=lambda kv: (-kv[1], kv[0]))[0] if ages else None
        hours[hour] = {
            "hour": hour,
            "listen_count": len(evs),
            "unique_listeners": listeners,
            "avg_listens_per_user": round(len(evs) / listeners, 6),
            "track_diversity_index": round(len({t for _, t in evs}) / len(evs), 6),
            "top_artist": top_artist,
            "most_engaged_age_group": AGE_BINS[top_age][0] if top_age is not None else None,
        }
    return {
        "genres": genres,
        "top_genres": top_genres,
        "hours": hours,
        "listens": len(rows),
        "unique_listeners": len({u for u, _, _ in rows}),
    }


def metadata_from_csv(rows: Iterable[Mapping[str, str]], id_column: str) -> dict[str, dict[str, Any]]:
    """First row per id wins; genres trimmed and lower-cased (as the validator stores them)."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = row[id_column].strip()
        if key and key not in out:
            clean = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
            if "track_genre" in clean:
                clean["track_genre"] = clean["track_genre"].lower()
            out[key] = clean
    return out


def assert_matches(results: list[Any], expected: dict[str, dict[str, Any]]) -> None:
    """Every field of the runner's DayKpis equals the oracle's (ratios to 1e-6)."""
    assert {r.date.isoformat() for r in results} == set(expected)
    for r in results:
        want = expected[r.date.isoformat()]
        got_genres = {g.genre: g for g in r.genres}
        assert set(got_genres) == set(want["genres"]), r.date
        for name, w in want["genres"].items():
            g = got_genres[name]
            assert (g.listen_count, g.unique_listeners, g.total_listening_time_ms) == (
                w["listen_count"], w["unique_listeners"], w["total_listening_time_ms"]), (r.date, name)  # fmt: skip
            assert g.avg_listening_time_per_user_ms == pytest.approx(w["avg_listening_time_per_user_ms"], abs=1e-6)
            assert [s.model_dump() for s in g.top_songs] == w["top_songs"], (r.date, name)
        assert [t.model_dump() for t in r.top_genres] == want["top_genres"], r.date
        assert (r.events, r.unique_listeners) == (want["listens"], want["unique_listeners"]), r.date
        got_hours = {h.hour: h.model_dump() for h in r.hours}
        assert set(got_hours) == set(want["hours"]), r.date
        for hour, w in want["hours"].items():
            got = got_hours[hour]
            for field in ("listen_count", "unique_listeners", "top_artist", "most_engaged_age_group"):
                assert got[field] == w[field], (r.date, hour, field)
            for field in ("avg_listens_per_user", "track_diversity_index"):
                assert got[field] == pytest.approx(w[field], abs=1e-6), (r.date, hour, field)
