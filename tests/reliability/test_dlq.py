"""DLQ depth, peek and redrive (library and `playcount dlq`), against the emulator's real redrive policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from playcount.core import aws
from playcount.core.resources import RESULTS, S3_EVENTS, VALIDATED, resources
from playcount.devstack import emulator as emu
from playcount.ops import dlq
from tests.support.helpers import wait_for


def _urls(settings, stage):
    sqs = aws.client(settings, "sqs")
    spec = resources(settings).queue(stage)
    return sqs, aws.queue_url(sqs, spec.name), aws.queue_url(sqs, spec.dlq_name)


def _dead_letter(settings, stage, bodies):
    """Send `bodies` to the stage's queue and receive them until SQS itself moves them to the DLQ."""
    sqs, url, _ = _urls(settings, stage)
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    # the redrive policy moves a message on the receive after its maxReceiveCount-th
    for _ in range(settings.sqs_max_receive_count + 1):
        while sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages"):
            pass
    assert dlq.depth(settings, stage) == len(bodies)


def _drain(sqs, url):
    bodies = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages"):
        bodies += [m["Body"] for m in batch]
    return bodies


def test_names_resolve_by_stage_queue_or_dlq(settings):
    spec = resources(settings).queue(VALIDATED)
    assert dlq.queue_spec(settings, VALIDATED) == spec
    assert dlq.queue_spec(settings, spec.name) == spec
    assert dlq.queue_spec(settings, spec.dlq_name) == spec
    with pytest.raises(dlq.UnknownQueue):
        dlq.queue_spec(settings, "someone-elses-queue")


def test_redrive_moves_every_dead_letter_back_once(settings):
    # GIVEN 13 messages that the queue's own redrive policy dead-lettered (more than one batch)
    bodies = [json.dumps({"n": i}) for i in range(13)]
    _dead_letter(settings, RESULTS, bodies)
    peeked = dlq.peek(settings, RESULTS, max_messages=5)
    assert len(peeked) == 5 and all(p.receive_count >= 1 for p in peeked)
    assert dlq.depth(settings, RESULTS) == 13, "peek must leave messages in place"

    # WHEN they are redriven
    moved = dlq.redrive(settings, RESULTS)

    # THEN each is back in the source queue exactly once and the DLQ is empty
    assert moved == 13
    sqs, url, _ = _urls(settings, RESULTS)
    assert sorted(_drain(sqs, url)) == sorted(bodies)
    assert dlq.depth(settings, RESULTS) == 0
    assert {d.stage: d.depth for d in dlq.depths(settings)} == {S3_EVENTS: 0, VALIDATED: 0, RESULTS: 0}


def test_redrive_respects_max_messages(settings):
    _dead_letter(settings, VALIDATED, ["a", "b", "c"])
    assert dlq.redrive(settings, VALIDATED, max_messages=2) == 2
    assert dlq.depth(settings, VALIDATED) == 1


def test_redriving_a_still_poison_message_terminates(settings):
    # GIVEN a dead letter, and a consumer that fails it at once every time (as a live service would)
    _dead_letter(settings, VALIDATED, ["still poison"])
    sqs, url, _ = _urls(settings, VALIDATED)
    stop = threading.Event()

    def failing_consumer():
        while not stop.is_set():
            sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=0)

    consumer = threading.Thread(target=failing_consumer)
    consumer.start()
    try:
        # WHEN it is redriven with no limit
        t0 = time.monotonic()
        moved = dlq.redrive(settings, VALIDATED)
        took = time.monotonic() - t0

        # THEN the call moves what was there once and returns, instead of chasing it round and round
        assert moved == 1
        assert took < 30
        wait_for(lambda: dlq.depth(settings, VALIDATED) == 1, timeout=30, what="the poison back in the DLQ")
    finally:
        stop.set()
        consumer.join()


def _cli(settings, *args):
    """`playcount ...` as a child process (the CLI configures logging for its whole process)."""
    env = {**os.environ, **settings.to_env(), **emu.EMBEDDED_CREDENTIALS}
    done = subprocess.run(
        [sys.executable, "-m", "playcount.cli.main", *args], env=env, capture_output=True, text=True, timeout=60
    )
    return SimpleNamespace(code=done.returncode, out=done.stdout, err=done.stderr)


def test_cli_lists_and_redrives(settings):
    _dead_letter(settings, VALIDATED, ["not json"])
    dlq_name = resources(settings).queue(VALIDATED).dlq_name

    listing = _cli(settings, "dlq", "list")
    rows = [[cell.strip() for cell in line.strip("│ ").split("│")] for line in listing.out.splitlines() if "│" in line]
    assert listing.code == 0 and [r for r in rows if r[1:] == [dlq_name, "1"]], listing.out
    peeked = _cli(settings, "dlq", "peek", VALIDATED)
    assert peeked.code == 0 and "not json" in peeked.out

    moved = _cli(settings, "dlq", "redrive", resources(settings).queue(VALIDATED).name)
    assert moved.code == 0 and "moved 1 message" in moved.out, moved.err
    sqs, url, _ = _urls(settings, VALIDATED)
    assert _drain(sqs, url) == ["not json"]

    unknown = _cli(settings, "dlq", "redrive", "nope")
    assert unknown.code == 2 and "no queue 'nope'" in unknown.err
