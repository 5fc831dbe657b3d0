"""`apply` against the emulator's DynamoDB: layout, idempotence, complete replacement, monotonicity."""

from __future__ import annotations

import datetime as dt
import random
import threading
from decimal import Decimal

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from playcount.core import aws
from playcount.core.errors import StaleResult, TransientError
from playcount.writer.apply import apply
from playcount.writer.config import WriterOptions
from tests.support.writer import DAY, assert_holds_exactly, expected, kpi_items_of, make_day, scan, versions

ROCK_POP_JAZZ = {"rock": (90, ["r1", "r2", "r3"]), "pop": (120, ["p1", "p2", "p3"]), "jazz": (15, ["j1", "j2"])}


def test_items_answer_the_seeds_queries_as_written(settings, ddb, table):
    # GIVEN a day applied by the writer
    kpis = make_day(DAY, 7, ROCK_POP_JAZZ)
    apply(ddb, table, kpis)

    # WHEN the seed README's queries run, verbatim, through the boto3 resource API
    t = boto3.resource("dynamodb", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url).Table(table)
    metrics = t.query(
        KeyConditionExpression=Key("pk").eq("GENRE#rock#DATE#2025-06-24") & Key("sk").begins_with("METRIC#")
    )["Items"]
    songs = t.query(KeyConditionExpression=Key("pk").eq("GENRE#rock#DATE#2025-06-24") & Key("sk").begins_with("SONG#"))[
        "Items"
    ]
    ranks = t.query(KeyConditionExpression=Key("pk").eq("DATE#2025-06-24") & Key("sk").begins_with("GENRE_RANK#"))[
        "Items"
    ]

    # THEN they return the day's figures as DynamoDB numbers, each item versioned and dated
    rock = next(g for g in kpis.genres if g.genre == "rock")
    assert {m["sk"]: m["value"] for m in metrics} == {
        "METRIC#listen_count": Decimal(90),
        "METRIC#unique_listeners": Decimal(30),
        "METRIC#total_listening_time_ms": Decimal(90 * 181_000 + 7),
        "METRIC#avg_listening_time_per_user_ms": Decimal(str(rock.avg_listening_time_per_user_ms)),
    }
    assert [(s["sk"], s["track_name"], s["artists"], s["listen_count"]) for s in songs] == [
        ("SONG#1#r1", "Song r1 v7", "Ana;Bo", Decimal(89)),
        ("SONG#2#r2", "Song r2 v7", "Ana;Bo", Decimal(88)),
        ("SONG#3#r3", "Song r3 v7", "Ana;Bo", Decimal(87)),
    ]
    assert [(r["sk"], r["genre"], r["listen_count"]) for r in ranks] == [
        ("GENRE_RANK#1", "pop", Decimal(120)),
        ("GENRE_RANK#2", "rock", Decimal(90)),
        ("GENRE_RANK#3", "jazz", Decimal(15)),
    ]
    for item in kpi_items_of(ddb, table, DAY).values():
        assert item["version"] == Decimal(7) and item["computed_at"] == kpis.computed_at.isoformat()
        assert not any(isinstance(v, float | str) and k in ("value", "listen_count") for k, v in item.items())
    assert_holds_exactly(ddb, table, kpis)
    catalogue = scan(ddb, table)[("CATALOG#DAYS", "DATE#2025-06-24")]
    assert catalogue["version"] == 7 and catalogue["genres"] == ["jazz", "pop", "rock"] and catalogue["events"] == 225


def test_same_result_twice_leaves_the_same_table(ddb, table):
    # GIVEN a result applied once
    kpis = make_day(DAY, 3, ROCK_POP_JAZZ)
    first = apply(ddb, table, kpis)
    before = scan(ddb, table)

    # WHEN the same result is applied again (a redelivered message)
    again = apply(ddb, table, kpis)

    # THEN every item, bookkeeping included, is unchanged, and the replay wrote nothing
    assert scan(ddb, table) == before
    assert first.written == len(expected(kpis)) and not first.skipped
    assert again.skipped and again.written == 0 and again.requests == 1


def test_a_result_replaces_the_dates_items_completely(ddb, table):
    # GIVEN rock, pop and jazz applied at version 1
    apply(ddb, table, make_day(DAY, 1, ROCK_POP_JAZZ))

    # WHEN version 2 has a new third rock song, a new genre, and jazz gone (a metadata fix)
    v2 = make_day(DAY, 2, {"rock": (95, ["r1", "r2", "r9"]), "pop": (120, ["p1", "p2", "p3"]), "folk": (4, ["f1"])})
    applied = apply(ddb, table, v2)

    # THEN the date holds exactly version 2: the song that left the top 3 and jazz are gone
    assert_holds_exactly(ddb, table, v2)
    items = scan(ddb, table)
    assert ("GENRE#rock#DATE#2025-06-24", "SONG#3#r3") not in items
    assert not [k for k in items if k[0] == "GENRE#jazz#DATE#2025-06-24"]
    assert ("TREND#jazz", "DATE#2025-06-24") not in items
    assert items[("CATALOG#DAYS", "DATE#2025-06-24")]["genres"] == ["folk", "pop", "rock"]
    # jazz's 4 metrics, 2 songs and trend item, and rock's old third song: found by the manifest, no query
    assert applied.deleted == 8 and applied.queried == 0


def test_a_day_left_with_nothing_is_emptied(ddb, table):
    apply(ddb, table, make_day(DAY, 1, ROCK_POP_JAZZ))
    empty = make_day(DAY, 2, {}, hours=0)
    apply(ddb, table, empty)
    assert kpi_items_of(ddb, table, DAY) == {}
    assert scan(ddb, table)[("CATALOG#DAYS", "DATE#2025-06-24")]["events"] == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_deliveries_end_on_the_newest_version(ddb, table, seed):
    # GIVEN six versions of a date, each with different genres and songs, and duplicates
    day = DAY + dt.timedelta(days=seed)
    results = versions(day, 6, seed)
    deliveries = results + random.Random(seed).sample(results, 3)
    random.Random(seed * 7).shuffle(deliveries)

    # WHEN they are applied in that order, one after the other
    outcomes = []
    for kpis in deliveries:
        try:
            outcomes.append(apply(ddb, table, kpis).skipped)
        except StaleResult:
            outcomes.append("stale")

    # THEN the date holds exactly the newest, whatever came after it was refused or skipped
    assert_holds_exactly(ddb, table, results[-1])
    newest_at = deliveries.index(results[-1])
    assert all(o in ("stale", True) for o in outcomes[newest_at + 1 :])


def test_concurrent_writers_end_on_the_newest_version(settings, table):
    # GIVEN two dates with six versions each, every result delivered twice, shuffled
    days = [DAY, DAY + dt.timedelta(days=1)]
    results = {d: versions(d, 6, seed=i + 10) for i, d in enumerate(days)}
    deliveries = [k for rs in results.values() for k in rs] * 2
    random.Random(5).shuffle(deliveries)
    lock = threading.Lock()
    stale: list[int] = []
    errors: list[BaseException] = []

    # WHEN eight threads, each its own writer with its own client, race through them
    def worker() -> None:
        ddb = aws.client(settings, "dynamodb")
        options = WriterOptions(parallelism=4, claim_wait_seconds=30)
        while True:
            with lock:
                if not deliveries:
                    return
                kpis = deliveries.pop()
            while True:
                try:
                    apply(ddb, table, kpis, options=options)
                except StaleResult:
                    stale.append(kpis.version)
                except TransientError:  # the date stayed busy: SQS would redeliver
                    continue
                except BaseException as exc:
                    errors.append(exc)
                break

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # THEN each date holds exactly its newest version, and no lease is left behind
    assert not errors
    ddb = aws.client(settings, "dynamodb")
    for d in days:
        assert_holds_exactly(ddb, table, results[d][-1])
        head = scan(ddb, table)[(f"DATE#{d.isoformat()}", "HEAD")]
        assert head["version"] == results[d][-1].version
        assert "lease_owner" not in head and "applying" not in head
    assert stale, "with 24 shuffled deliveries some must have arrived after a newer version"
