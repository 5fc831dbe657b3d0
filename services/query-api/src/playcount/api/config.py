"""API settings: the shared settings, plus where it listens, its keys, cache and limits."""

from __future__ import annotations

from pydantic import Field, field_validator

from playcount.core.config import Settings


class ApiSettings(Settings):
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_key: str | None = None
    api_read_key: str | None = None
    # a KPI body is never served more than this long after the read that produced it began, so a
    # newly applied version is served within it; revalidating costs one HEAD read per date, not per request
    api_cache_seconds: float = Field(default=2.0, ge=0, le=300)
    # the pipeline status (two SQS calls per queue and a DynamoDB query) is read at most this often
    api_status_seconds: float = Field(default=2.0, ge=0, le=300)
    api_max_body_bytes: int = Field(default=64 << 10, ge=0, le=16 << 20)  # no route reads a body; 413 above

    @field_validator("api_key", "api_read_key")
    @classmethod
    def _keys_are_strong(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:
            raise ValueError("API keys must be at least 16 characters long")
        return value


__all__ = ["ApiSettings"]
