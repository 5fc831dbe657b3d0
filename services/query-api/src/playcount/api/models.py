"""Response models: the API's contract, published in the OpenAPI schema."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from playcount.core.kpis import GenreRank, HourStats, SongRank


class GenreDayResponse(BaseModel):
    genre: str
    date: dt.date
    listen_count: int
    unique_listeners: int
    total_listening_time_ms: int
    avg_listening_time_per_user_ms: float
    top_songs: list[SongRank]
    version: int
    computed_at: str


class TopGenresResponse(BaseModel):
    date: dt.date
    genres: list[GenreRank]


class HoursResponse(BaseModel):
    date: dt.date
    hours: list[HourStats]


class DayEntry(BaseModel):
    date: dt.date
    version: int
    events: int
    genres: list[str]


class DaysResponse(BaseModel):
    days: list[DayEntry]


class GenresResponse(BaseModel):
    genres: list[str]


class QueueStatus(BaseModel):
    name: str
    visible: int
    in_flight: int
    delayed: int
    dlq: str
    dlq_depth: int


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
    queues: list[QueueStatus]
    dlq_total: int
    freshness_lag_seconds: float | None
    freshness_measured_at: str | None


class Health(BaseModel):
    status: str


class ErrorResponse(BaseModel):
    detail: str
