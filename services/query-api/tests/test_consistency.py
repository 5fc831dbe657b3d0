"""No response mixes two versions of a date, while the real writer applies version after version.

Each version of the date differs from the others in every figure (listens + version) and, from
one version to the next, in its set of genres and hours (keys come and go), so a body that
mixed two versions, or caught one half-written, matches no version at all. Readers poll the
API over HTTP the whole time, with the cache off (every request reads DynamoDB) and on.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from playcount.core.kpis import DayKpis, GenreRank

VERSIONS = 10


def _variant(base: DayKpis, version: int) -> DayKpis:
    """`base` at `version`: every count moved by the version, odd versions with two genres and hours fewer."""
    genres = base.genres[:-2] if version % 2 else base.genres
    genres = [g.model_copy(update={"listen_count": g.listen_count + version}) for g in genres]
    ranked = sorted(genres, key=lambda g: (-g.listen_count, g.genre))[:5]
    hours = [h for h in base.hours if not (version % 2 and h.hour >= 20)]
    hours = [h.model_copy(update={"listen_count": h.listen_count + version}) for h in hours]
    return base.model_copy(
        update={
            "version": version,
            "genres": genres,
            "top_genres": [
                GenreRank(rank=i + 1, genre=g.genre, listen_count=g.listen_count) for i, g in enumerate(ranked)
            ],
            "hours": hours,
        }
    )


def _signatures(kpis: DayKpis) -> dict[str, Any]:
    return {
        "top": tuple((g.genre, g.listen_count) for g in kpis.top_genres),
        "hours": tuple((h.hour, h.listen_count) for h in kpis.hours),
        "genre": {g.genre: g.listen_count for g in kpis.genres},
    }


class Readers:
    """Threads polling three lookups of one date; each body must be exactly one version's."""

    def __init__(self, api: str, day: str, watched: str, expected: dict[int, dict[str, Any]]) -> None:
        self.api, self.expected, self.watched = api, expected, watched
        self.stop = threading.Event()
        self.seen: Counter[str] = Counter()
        self.mixed: list[str] = []
        self.versions: set[int] = set()
        checks = {
            f"/days/{day}/top-genres": self.top,
            f"/days/{day}/hours": self.hours,
            f"/genres/{watched}/days/{day}": self.genre,
        }
        self.threads = [threading.Thread(target=self.read, args=item) for item in checks.items()]

    def __enter__(self) -> Readers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def read(self, path: str, check: Callable[[httpx.Response], str | None]) -> None:
        with httpx.Client(base_url=self.api, timeout=30) as client:
            while not self.stop.is_set():
                r = client.get(path)
                if r.status_code == 503:  # "being updated, retry": honest, never a mix
                    self.seen["503"] += 1
                    continue
                self.seen[path] += 1
                problem = check(r)
                if problem:
                    self.mixed.append(f"{path}: {problem}")

    def one_of(self, kind: str, got: Any) -> str | None:
        matches = [v for v, e in self.expected.items() if e[kind] == got]
        self.versions.update(matches)
        return None if matches else f"{got} is no version's {kind}"

    def top(self, r: httpx.Response) -> str | None:
        return self.one_of("top", tuple((g["genre"], g["listen_count"]) for g in r.json()["genres"]))

    def hours(self, r: httpx.Response) -> str | None:
        return self.one_of("hours", tuple((h["hour"], h["listen_count"]) for h in r.json()["hours"]))

    def genre(self, r: httpx.Response) -> str | None:
        if r.status_code == 404:
            return None
        body = r.json()
        want = self.expected[body["version"]]["genre"].get(self.watched)
        return (
            None if want == body["listen_count"] else f"version {body['version']} with {body['listen_count']} listens"
        )


@pytest.mark.parametrize("cache_seconds", [0.0, 0.5], ids=["no-cache", "cache"])
def test_no_response_mixes_versions_while_the_writer_applies(settings, fresh_written, serve, cache_seconds):
    # GIVEN a date at its first variant (the fixture wrote version 1), and the versions to come
    day = fresh_written.days[0]
    base = fresh_written.kpis[day]
    versions = {v: _variant(base, v) for v in range(2, VERSIONS + 2)}
    fresh_written.apply(versions[2])
    expected = {v: _signatures(k) for v, k in versions.items()}
    watched = base.genres[-1].genre  # present in even versions only
    api = serve(settings.model_copy(update={"api_cache_seconds": cache_seconds})).url

    # WHEN the writer applies version after version while clients read (a new version every
    # ~0.3 s besides the apply itself, as under a steady stream of files for one date)
    with Readers(api, day, watched, expected) as readers:
        for v in range(3, VERSIONS + 2):
            fresh_written.apply(versions[v])
            time.sleep(0.3)

    # THEN every response was one whole version (and the readers really overlapped the applies)
    print(f"responses while applying: {dict(readers.seen)}, versions served: {sorted(readers.versions)}")
    assert not readers.mixed, f"{len(readers.mixed)} mixed responses, e.g.:\n" + "\n".join(readers.mixed[:10])
    assert len(readers.versions) >= 3 and sum(readers.seen.values()) >= 30, (readers.versions, readers.seen)
    assert readers.seen["503"] <= sum(readers.seen.values()) / 10, f"readers were mostly turned away: {readers.seen}"
