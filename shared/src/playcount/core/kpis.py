"""The KPI result of one day: produced by the runner, stored by the writer, served by the API.

Definitions (exact): an event counts once per (user_id, track_id, listen_time); its date and
hour are those of listen_time in UTC. Ratios are rounded to `RATIO_DIGITS` decimal places.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

RATIO_DIGITS = 6
TOP_SONGS = 3
TOP_GENRES = 5
RANKING_CHUNK = 500  # genres per item of a day's full ranking (256-byte names keep it far below 400 KB)
AGE_GROUPS = ("<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
# the youngest age of every group after the first: an age's group is AGE_GROUPS[bisect_right(...)]
AGE_LOWER_BOUNDS = (18, 25, 35, 45, 55, 65)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class SongRank(_Frozen):
    rank: int = Field(ge=1)
    track_id: str
    track_name: str
    artists: str
    listen_count: int = Field(ge=0)


class GenreDay(_Frozen):
    genre: str
    listen_count: int = Field(ge=0)
    unique_listeners: int = Field(ge=0)
    total_listening_time_ms: int = Field(ge=0)
    avg_listening_time_per_user_ms: float = Field(ge=0)
    top_songs: list[SongRank]


class GenreRank(_Frozen):
    rank: int = Field(ge=1)
    genre: str
    listen_count: int = Field(ge=0)


class RankedGenre(_Frozen):
    """A genre's place in the day's full ranking (the same order as the top five)."""

    rank: int = Field(ge=1)
    genre: str
    listen_count: int = Field(ge=0)
    unique_listeners: int = Field(ge=0)
    share: float = Field(ge=0, le=1, description="its part of the day's listens")


class TrendDay(_Frozen):
    """One day of a genre's trend: its KPIs, its rank that day, and the version they belong to."""

    date: dt.date
    listen_count: int = Field(ge=0)
    unique_listeners: int = Field(ge=0)
    total_listening_time_ms: int = Field(ge=0)
    avg_listening_time_per_user_ms: float = Field(ge=0)
    rank: int = Field(ge=1, description="the genre's place in the day's full ranking")
    share: float = Field(ge=0, le=1, description="its part of the day's listens")
    version: int
    computed_at: str


class HourStats(_Frozen):
    hour: int = Field(ge=0, le=23)
    listen_count: int = Field(ge=0)
    unique_listeners: int = Field(ge=0)
    avg_listens_per_user: float = Field(ge=0)
    track_diversity_index: float = Field(ge=0, le=1)
    top_artist: str | None
    most_engaged_age_group: str | None


class DayKpis(_Frozen):
    """Every KPI of one UTC date, computed from all of that date's validated events."""

    date: dt.date
    version: int = Field(ge=1)
    computed_at: dt.datetime
    events: int = Field(ge=0, description="distinct events of the date: its listens")
    unique_listeners: int | None = Field(
        default=None, ge=0, description="distinct users of the date (None: computed by a runner before this field)"
    )
    genres: list[GenreDay]
    top_genres: list[GenreRank]
    hours: list[HourStats]


def ranked(genres: list[GenreDay]) -> list[GenreDay]:
    """Genres in rank order: most listens first, ties by genre name (the top five are the first five)."""
    return sorted(genres, key=lambda g: (-g.listen_count, g.genre))


def share(listens: int, total: int) -> float:
    """A genre's part of the day's listens, rounded as every ratio is."""
    return round(listens / total, RATIO_DIGITS) if total else 0.0
