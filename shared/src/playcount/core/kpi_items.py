"""DayKpis <-> DynamoDB items, through the key schema in `keys` (writer writes, API reads)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from playcount.core import keys
from playcount.core.kpis import (
    RANKING_CHUNK,
    DayKpis,
    GenreDay,
    GenreRank,
    HourStats,
    RankedGenre,
    SongRank,
    TrendDay,
    ranked,
    share,
)

Item = dict[str, Any]


def to_decimal(value: float | int) -> Decimal:
    """DynamoDB numbers: ints exactly, ratios through their shortest repr (boto3 rejects float)."""
    if isinstance(value, int):
        return Decimal(value)
    return Decimal(repr(value))


def _stamp(item: Item, kpis: DayKpis) -> Item:
    item["version"] = kpis.version
    item["computed_at"] = kpis.computed_at.isoformat()
    return item


def genre_items(kpis: DayKpis, genre: GenreDay) -> list[Item]:
    pk = keys.genre_day_pk(genre.genre, kpis.date)
    items = [
        _stamp(
            {
                "pk": pk,
                "sk": keys.metric_sk(name),
                "genre": genre.genre,
                "date": kpis.date.isoformat(),
                "value": to_decimal(getattr(genre, name)),
            },
            kpis,
        )
        for name in keys.METRICS
    ]
    items += [
        _stamp(
            {
                "pk": pk,
                "sk": keys.song_sk(song.rank, song.track_id),
                "rank": song.rank,
                "track_id": song.track_id,
                "track_name": song.track_name,
                "artists": song.artists,
                "listen_count": song.listen_count,
            },
            kpis,
        )
        for song in genre.top_songs
    ]
    return items


def trend_item(kpis: DayKpis, genre: GenreDay, rank: int) -> Item:
    """The genre's day in one item of its trend partition (a range of days is one query)."""
    return _stamp(
        {
            "pk": keys.trend_pk(genre.genre),
            "sk": keys.date_sk(kpis.date),
            "genre": genre.genre,
            "date": kpis.date.isoformat(),
            "listen_count": genre.listen_count,
            "unique_listeners": genre.unique_listeners,
            "total_listening_time_ms": genre.total_listening_time_ms,
            "avg_listening_time_per_user_ms": to_decimal(genre.avg_listening_time_per_user_ms),
            "rank": rank,
            "share": to_decimal(share(genre.listen_count, kpis.events)),
        },
        kpis,
    )


def ranking_items(kpis: DayKpis) -> list[Item]:
    """The day's every genre in rank order, `RANKING_CHUNK` genres per item (a page is one or two)."""
    order = ranked(kpis.genres)
    pk = keys.day_pk(kpis.date)
    return [
        _stamp(
            {
                "pk": pk,
                "sk": keys.ranking_sk(start // RANKING_CHUNK),
                "rank_from": start + 1,
                "total": len(order),
                "listens": kpis.events,
                "genres": [
                    {"genre": g.genre, "listen_count": g.listen_count, "unique_listeners": g.unique_listeners}
                    for g in order[start : start + RANKING_CHUNK]
                ],
            },
            kpis,
        )
        for start in range(0, len(order), RANKING_CHUNK)
    ]


def day_items(kpis: DayKpis) -> list[Item]:
    pk = keys.day_pk(kpis.date)
    items = [
        _stamp(
            {
                "pk": pk,
                "sk": keys.genre_rank_sk(r.rank),
                "rank": r.rank,
                "genre": r.genre,
                "listen_count": r.listen_count,
            },
            kpis,
        )
        for r in kpis.top_genres
    ]
    for h in kpis.hours:
        item: Item = {
            "pk": pk,
            "sk": keys.hour_sk(h.hour),
            "hour": h.hour,
            "listen_count": h.listen_count,
            "unique_listeners": h.unique_listeners,
            "avg_listens_per_user": to_decimal(h.avg_listens_per_user),
            "track_diversity_index": to_decimal(h.track_diversity_index),
        }
        if h.top_artist is not None:
            item["top_artist"] = h.top_artist
        if h.most_engaged_age_group is not None:
            item["most_engaged_age_group"] = h.most_engaged_age_group
        items.append(_stamp(item, kpis))
    return items


def all_items(kpis: DayKpis) -> list[Item]:
    """Every KPI item of the day (not the HEAD or catalogue bookkeeping items)."""
    items = day_items(kpis) + ranking_items(kpis)
    for rank, genre in enumerate(ranked(kpis.genres), start=1):
        items += genre_items(kpis, genre)
        items.append(trend_item(kpis, genre, rank))
    return items


def _num(value: Any) -> float:
    return float(value)


def parse_genre_day(genre: str, items: Iterable[Mapping[str, Any]]) -> tuple[GenreDay, int, str] | None:
    """A genre's day from its partition's items; None when no metric is stored."""
    metrics: dict[str, Any] = {}
    songs: list[SongRank] = []
    version, computed_at = 0, ""
    for item in items:
        sk = str(item["sk"])
        version = max(version, int(item.get("version", 0)))
        computed_at = max(computed_at, str(item.get("computed_at", "")))
        if sk.startswith(keys.METRIC_PREFIX):
            metrics[sk.removeprefix(keys.METRIC_PREFIX)] = item["value"]
        elif sk.startswith(keys.SONG_PREFIX):
            songs.append(
                SongRank(
                    rank=int(item["rank"]),
                    track_id=str(item["track_id"]),
                    track_name=str(item["track_name"]),
                    artists=str(item["artists"]),
                    listen_count=int(item["listen_count"]),
                )
            )
    if set(metrics) != set(keys.METRICS):
        return None
    day = GenreDay(
        genre=genre,
        listen_count=int(metrics["listen_count"]),
        unique_listeners=int(metrics["unique_listeners"]),
        total_listening_time_ms=int(metrics["total_listening_time_ms"]),
        avg_listening_time_per_user_ms=_num(metrics["avg_listening_time_per_user_ms"]),
        top_songs=sorted(songs, key=lambda s: s.rank),
    )
    return day, version, computed_at


def parse_top_genres(items: Iterable[Mapping[str, Any]]) -> list[GenreRank]:
    ranks = [
        GenreRank(rank=int(i["rank"]), genre=str(i["genre"]), listen_count=int(i["listen_count"]))
        for i in items
        if str(i["sk"]).startswith(keys.GENRE_RANK_PREFIX)
    ]
    return sorted(ranks, key=lambda r: r.rank)


def parse_hours(items: Iterable[Mapping[str, Any]]) -> list[HourStats]:
    hours = [
        HourStats(
            hour=int(i["hour"]),
            listen_count=int(i["listen_count"]),
            unique_listeners=int(i["unique_listeners"]),
            avg_listens_per_user=_num(i["avg_listens_per_user"]),
            track_diversity_index=_num(i["track_diversity_index"]),
            top_artist=i.get("top_artist"),
            most_engaged_age_group=i.get("most_engaged_age_group"),
        )
        for i in items
        if str(i["sk"]).startswith(keys.HOUR_PREFIX)
    ]
    return sorted(hours, key=lambda h: h.hour)


def parse_trend(items: Iterable[Mapping[str, Any]]) -> list[TrendDay]:
    """A genre's trend items, oldest first."""
    days = [
        TrendDay(
            date=dt.date.fromisoformat(str(i["date"])),
            listen_count=int(i["listen_count"]),
            unique_listeners=int(i["unique_listeners"]),
            total_listening_time_ms=int(i["total_listening_time_ms"]),
            avg_listening_time_per_user_ms=_num(i["avg_listening_time_per_user_ms"]),
            rank=int(i["rank"]),
            share=_num(i["share"]),
            version=int(i["version"]),
            computed_at=str(i["computed_at"]),
        )
        for i in items
    ]
    return sorted(days, key=lambda d: d.date)


def parse_ranking(items: Iterable[Mapping[str, Any]]) -> list[RankedGenre]:
    """The genres of a day's ranking chunks, in rank order."""
    out: list[RankedGenre] = []
    for item in sorted(items, key=lambda i: int(i["rank_from"])):
        listens = int(item["listens"])
        for offset, g in enumerate(item["genres"]):
            out.append(
                RankedGenre(
                    rank=int(item["rank_from"]) + offset,
                    genre=str(g["genre"]),
                    listen_count=int(g["listen_count"]),
                    unique_listeners=int(g["unique_listeners"]),
                    share=share(int(g["listen_count"]), listens),
                )
            )
    return out


def day_of(value: str) -> dt.date:
    return dt.date.fromisoformat(value)
