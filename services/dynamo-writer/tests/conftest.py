"""Fixtures for the writer tests (the factories themselves live in `writer_fixtures`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from playcount.core import aws

# under --import-mode=importlib neither this directory (writer_fixtures) nor the repository's
# `tests` package (helpers) is importable by default: put both on the path
for _path in (Path(__file__).resolve().parent, Path(__file__).resolve().parents[3]):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))


@pytest.fixture
def ddb(settings: Any) -> Any:
    return aws.client(settings, "dynamodb")


@pytest.fixture
def table(settings: Any) -> str:
    return str(settings.dynamodb_table_name)
