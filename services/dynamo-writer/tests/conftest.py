"""Fixtures for the writer tests (the factories themselves live in `tests.support.writer`)."""

from __future__ import annotations

from typing import Any

import pytest

from playcount.core import aws


@pytest.fixture
def ddb(settings: Any) -> Any:
    return aws.client(settings, "dynamodb")


@pytest.fixture
def table(settings: Any) -> str:
    return str(settings.dynamodb_table_name)
