"""Opt-in: the bootstrap and S3 -> SQS notifications on real LocalStack (testcontainers).

Runs only where a Docker engine answers (skipped cleanly otherwise, as on our machines, where
the embedded moto emulator covers the same ground). Uses the LocalStack image docker-compose.yml
pins, so it checks the compose stack's emulator, not just any LocalStack.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from playcount.core.config import Settings, load_settings
from playcount.core.messages import parse_s3_event
from playcount.core.resources import S3_EVENTS, resources
from playcount.ops.bootstrap import bootstrap
from tests.support.deploy import compose
from tests.support.helpers import wait_for

pytestmark = pytest.mark.docker


def _engine_problem() -> str | None:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:  # any failure to reach an engine means: not here
        return f"no Docker engine reachable ({type(exc).__name__}: {exc})"
    return None


@pytest.fixture(scope="module")
def localstack() -> Iterator[str]:
    problem = _engine_problem()
    if problem:
        pytest.skip(problem)
    from testcontainers.community.localstack import LocalStackContainer

    spec = compose()["services"]["localstack"]
    container = LocalStackContainer(image=spec["image"], region_name="us-east-1").with_services("s3", "sqs", "dynamodb")
    with container:
        yield container.get_url()


@pytest.fixture
def ls_settings(localstack: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    suffix = uuid.uuid4().hex[:8]
    return load_settings(
        {
            "AWS_ENDPOINT_URL": localstack,
            "S3_BUCKET": f"ls-{suffix}",
            "DYNAMODB_TABLE_NAME": f"ls-{suffix}",
            "SQS_QUEUE_PREFIX": f"ls-{suffix}-",
        }
    )


def _receive_created(sqs: Any, url: str) -> list[Any]:
    refs = []
    for m in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2, MaxNumberOfMessages=10).get("Messages", []):
        refs += parse_s3_event(m["Body"])
    return refs


def test_bootstrap_is_idempotent_and_uploads_notify_the_queue(ls_settings: Settings) -> None:
    from playcount.core import aws

    res = bootstrap(ls_settings)
    assert bootstrap(ls_settings) == res
    s3, sqs = aws.client(ls_settings, "s3"), aws.client(ls_settings, "sqs")
    url = aws.queue_url(sqs, res.queue(S3_EVENTS).name)
    s3.put_object(Bucket=res.bucket, Key=f"{ls_settings.s3_raw_data_prefix}a b.csv", Body=b"user_id\n1\n")
    s3.put_object(Bucket=res.bucket, Key=f"{ls_settings.s3_validated_prefix}ignored.csv", Body=b"x\n")
    refs = wait_for(lambda: _receive_created(sqs, url), timeout=60, what="the S3 event on the queue")
    assert [r.key for r in refs] == [f"{ls_settings.s3_raw_data_prefix}a b.csv"]
    assert not _receive_created(sqs, url), "an output prefix must not notify"
    ddb = aws.client(ls_settings, "dynamodb")
    assert ddb.describe_table(TableName=resources(ls_settings).table)["Table"]["TableStatus"] == "ACTIVE"
