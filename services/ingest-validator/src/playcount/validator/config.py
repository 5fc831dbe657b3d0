"""Validator settings: the shared settings, plus the reconciliation sweep's knobs."""

from __future__ import annotations

from pydantic import Field

from playcount.core.config import Settings
from playcount.core.reconcile import DEFAULT_GRACE_SECONDS


class ValidatorSettings(Settings):
    # the reconciliation sweep (core.reconcile), in one validator at a time: how often (0: never),
    # and how old an unnotified input file must be before it is sent through
    reconcile_seconds: float = Field(default=300.0, ge=0, le=86400)
    reconcile_grace_seconds: float = Field(default=DEFAULT_GRACE_SECONDS, ge=0, le=7 * 86400)


__all__ = ["ValidatorSettings"]
