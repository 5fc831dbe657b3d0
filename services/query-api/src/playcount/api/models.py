"""Response models: the API's contract, published in the OpenAPI schema."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from playcount.core.kpis import GenreRank, HourStats, RankedGenre, SongRank, TrendDay
from playcount.ops.pipeline import QueueDepth


class GenreDayResponse(BaseModel):
    genre: str
    date: dt.date
    listen_count: int
    unique_listeners: int
    total_listening_time_ms: int
    avg_listening_time_per_user_ms: float
    top_songs: list[SongRank]
    version: int = Field(description="the version of the date these figures belong to")
    computed_at: str = Field(description="when the runner computed this version (ISO 8601, UTC)")


class TopGenresResponse(BaseModel):
    date: dt.date
    genres: list[GenreRank]


class HoursResponse(BaseModel):
    date: dt.date
    hours: list[HourStats] = Field(description="only hours with listens, in order")


class DayEntry(BaseModel):
    date: dt.date
    version: int
    computed_at: str | None = Field(description="when the runner computed this version (ISO 8601, UTC)")
    events: int = Field(description="distinct events of the day (= listens)")
    listens: int = Field(description="the day's listens, every genre and unknown track included")
    unique_listeners: int | None = Field(
        description="distinct users who listened that day, exact (not a sum over genres or hours); "
        "null for a day computed before this figure existed"
    )
    genres: list[str]


class TrendResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    genre: str
    from_: dt.date = Field(alias="from", serialization_alias="from")
    to: dt.date
    days: list[TrendDay] = Field(description="oldest first; days without listens of the genre are absent")


class RankingResponse(BaseModel):
    date: dt.date
    version: int = Field(description="the version of the date this ranking belongs to")
    computed_at: str
    listens: int = Field(description="the day's listens (`share` = listen_count / listens)")
    total: int = Field(description="how many genres the day has")
    genres: list[RankedGenre] = Field(description="most listens first, ties by genre name (as the top five)")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class DaysResponse(BaseModel):
    days: list[DayEntry]


class GenresResponse(BaseModel):
    genres: list[str] = Field(description="every genre with data on at least one day, sorted")


class PipelineStatus(BaseModel):
    idle: bool = Field(description="true only when every queue, in flight included, is empty")
    files_received: int
    files_validated: int
    files_rejected: int
    files_processed: int
    rows_accepted: int
    rows_quarantined: int
    dates_computed: int
    dates_written: int
    queues: list[QueueDepth] = Field(description="upstream first")
    backlog: int = Field(description="messages in every queue: visible, in flight and delayed")
    dlq_total: int
    freshness_lag_seconds: float | None = Field(description="upload to queryable, for the last file written")
    freshness_measured_at: str | None
    checked_at: float = Field(description="when this was read (Unix seconds)")


class Sample(BaseModel):
    at: float = Field(description="Unix seconds")
    files_received: int
    files_validated: int
    files_rejected: int
    files_processed: int
    rows_accepted: int
    rows_quarantined: int
    backlog: int
    dlq_total: int
    freshness_lag_seconds: float | None
    freshness_measured_at: str | None


class HistoryResponse(BaseModel):
    interval_seconds: float
    capacity: int
    samples: list[Sample] = Field(description="oldest first; kept in this process only")


class RedriveResponse(BaseModel):
    stage: str
    moved: int = Field(description="messages moved from the DLQ back to its queue")


class Health(BaseModel):
    status: str


class ErrorResponse(BaseModel):
    detail: str


class ValidationErrorResponse(BaseModel):
    detail: str = Field(description="a readable summary, e.g. `date: 2025-02-30 is not a real date`")
    errors: list[dict[str, Any]] = Field(description="every problem: where (`loc`), what (`msg`), `type`")
