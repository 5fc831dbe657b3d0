"""DLQ depth, peek and redrive (library and `playcount dlq`), against the emulator's real redrive policy."""

from __future__ import annotations

import json

import pytest

from playcount.cli.main import main as cli
from playcount.core import aws, dlq
from playcount.core.resources import RESULTS, S3_EVENTS, VALIDATED, resources


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


def test_cli_lists_and_redrives(settings, monkeypatch, capsys):
    for k, v in settings.to_env().items():
        monkeypatch.setenv(k, v)
    _dead_letter(settings, VALIDATED, ["not json"])

    assert cli(["dlq", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"{resources(settings).queue(VALIDATED).dlq_name}" in listing
    assert cli(["dlq", "peek", VALIDATED]) == 0
    assert "not json" in capsys.readouterr().out

    assert cli(["dlq", "redrive", resources(settings).queue(VALIDATED).name]) == 0
    assert "moved 1 message" in capsys.readouterr().out
    sqs, url, _ = _urls(settings, VALIDATED)
    assert _drain(sqs, url) == ["not json"]

    assert cli(["dlq", "redrive", "nope"]) == 2
