"""The validation report of one file (written by the validator, served by the API)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from playcount.core.messages import FileKind


class FileReport(BaseModel):
    file_id: str
    bucket: str
    key: str
    kind: FileKind
    status: Literal["accepted", "rejected"]
    reason: str | None = Field(default=None, description="why the whole file was rejected")
    detail: str | None = None
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    quarantined_by_reason: dict[str, int] = Field(default_factory=dict)
    duplicates: int = 0
    dates: list[dt.date] = Field(default_factory=list)
    changed_ids: int = Field(default=0, description="metadata: ids whose attributes changed")
    rejected_rows_key: str | None = None
    rejected_file_key: str | None = None
    archived_key: str | None = None
    uploaded_at: dt.datetime | None = None
    validated_at: dt.datetime
    timings: dict[str, float] = Field(default_factory=dict)
