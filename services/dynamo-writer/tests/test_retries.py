"""Throttling: retried with exponential backoff and jitter, nothing dropped, and a bounded effort.

The emulator never throttles; these tests inject DynamoDB's throttling answers with a botocore
hook on the writer's client (`tests.support.writer.Throttle`), before the request leaves it.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from boto3.dynamodb.types import TypeSerializer

from playcount.core import aws
from playcount.core.errors import TransientError
from playcount.core.kpi_items import all_items
from playcount.writer.apply import apply
from playcount.writer.config import WriterOptions, dynamodb_client
from playcount.writer.retry import Backoff
from playcount.writer.writes import Write, write_all
from tests.support.writer import DAY, Throttle, assert_holds_exactly, client_without_retries, kpi_items_of, make_day

SHAPE = {g: (10 + i, [f"{g}{n}" for n in range(3)]) for i, g in enumerate(["rock", "pop", "jazz", "folk", "soul"])}
FAST = WriterOptions(backoff_base_seconds=0.01, backoff_cap_seconds=0.1)
_ser = TypeSerializer()


def test_backoff_is_exponential_with_full_jitter():
    b = Backoff(base=0.05, cap=2.0, rounds=8, sleep=lambda s: None, rng=random.Random(1))
    assert [b.ceiling(n) for n in range(8)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    jitter = b.jitter  # the core policy's wait (`playcount.core.retrying.Jitter`) with these figures
    for n in (0, 3, 7):
        delays = [jitter.delay(n) for _ in range(400)]
        assert all(0 <= d <= b.ceiling(n) for d in delays)
        # full jitter: spread over the whole interval, not bunched at the ceiling
        assert min(delays) < 0.1 * b.ceiling(n) and max(delays) > 0.9 * b.ceiling(n)


def test_throttled_writes_are_retried_until_every_item_is_written(settings, table):
    # GIVEN a client (botocore's own retries off) on which 40% of the writes are throttled
    rng = random.Random(3)
    throttle = Throttle(lambda n: rng.random() < 0.4)
    ddb = throttle.install(client_without_retries(settings))

    # WHEN a day is applied through it
    kpis = make_day(DAY, 1, SHAPE)
    applied = apply(ddb, table, kpis, options=FAST)

    # THEN every refused write was sent again in a later round, and nothing is missing
    assert throttle.refused > 10
    assert applied.retried == throttle.refused
    assert applied.written == len(all_items(kpis))
    assert_holds_exactly(aws.client(settings, "dynamodb"), table, kpis)


def test_rounds_wait_exponentially_longer_with_jitter(settings, table):
    # GIVEN 20 writes and a table that throttles the first 50 requests it sees
    throttle = Throttle(lambda n: n <= 50)
    ddb = throttle.install(client_without_retries(settings))
    waits: list[float] = []
    backoff = Backoff(base=0.01, cap=1.0, rounds=8, sleep=waits.append, rng=random.Random(2))
    kpis = make_day(DAY, 1, {"rock": (5, ["a", "b", "c"]), "pop": (4, ["d", "e", "f"])})
    writes = [Write((i["pk"], i["sk"]), {k: _ser.serialize(v) for k, v in i.items()}) for i in all_items(kpis)][:20]

    # WHEN they are written
    with ThreadPoolExecutor(4) as pool:
        tally = write_all(ddb, table, 1, writes, pool=pool, backoff=backoff)

    # THEN three rounds were refused (20 + 20 + 10 requests), each followed by a jittered
    # wait under a doubling ceiling, and the fourth round wrote the rest
    assert tally.puts == 20 and tally.transient_errors == 50 and tally.retried == 50
    assert len(waits) == 3
    assert all(0 <= w <= backoff.ceiling(n) for n, w in enumerate(waits))
    assert [backoff.ceiling(n) for n in range(3)] == [0.01, 0.02, 0.04]


def test_botocore_and_the_writer_retry_together_on_the_writers_client(settings, table):
    # GIVEN the writer's own client (botocore "standard" retries) and a burst of throttling
    # (with "adaptive" retries the same burst throttles the client itself: 28 s instead of 1 s)
    throttle = Throttle(lambda n: n <= 12, code="ThrottlingException")
    ddb = throttle.install(dynamodb_client(settings))

    # WHEN a day is applied
    kpis = make_day(DAY, 1, SHAPE)
    applied = apply(ddb, table, kpis, options=FAST)

    # THEN botocore's retries absorbed the throttling (counted in the requests made)
    assert throttle.refused == 12
    assert applied.requests >= len(all_items(kpis)) + throttle.refused
    assert_holds_exactly(aws.client(settings, "dynamodb"), table, kpis)


def test_throttling_that_never_ends_fails_the_message_and_a_redelivery_completes_it(settings, table):
    # GIVEN a table that throttles every write
    throttle = Throttle(lambda n: True)
    ddb = throttle.install(client_without_retries(settings))
    kpis = make_day(DAY, 1, SHAPE)

    # WHEN a day is applied, THEN the writer gives up after its rounds (the message is retried)
    with pytest.raises(TransientError):
        apply(ddb, table, kpis, options=FAST.replace(retry_rounds=3))
    assert throttle.refused == 4 * len(all_items(kpis))  # the first try and 3 rounds, every write
    assert kpi_items_of(aws.client(settings, "dynamodb"), table, DAY) == {}

    # WHEN the throttling ends and SQS redelivers, THEN the day is applied in full
    throttle.decide = lambda n: False
    apply(ddb, table, kpis, options=FAST)
    assert_holds_exactly(aws.client(settings, "dynamodb"), table, kpis)
