"""Operations endpoints over real HTTP: health, readiness, status, history, metrics, reports, keys."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import typing

import httpx
import pytest

from playcount.api.history import History
from playcount.api.params import Stage
from playcount.core import aws, lake, ledger, resources
from playcount.core.kpis import DayKpis, GenreDay, GenreRank, HourStats
from playcount.core.reports import FileReport
from playcount.devstack.emulator import free_port
from playcount.writer.apply import apply
from tests.support.helpers import wait_for

ADMIN_KEY = "admin-key-0123456789abcdef"
READ_KEY = "read-key-0123456789abcdef"


def test_health_and_ready(settings, serve):
    api = serve(settings).url
    assert httpx.get(f"{api}/health").json() == {"status": "ok"}
    assert httpx.get(f"{api}/ready").json() == {"status": "ready"}


def test_not_ready_when_dynamodb_is_unreachable_or_the_table_is_missing(settings, serve):
    # GIVEN one API pointed at a port where nothing listens, one at a table that does not exist
    dead = serve(settings.model_copy(update={"aws_endpoint_url": f"http://127.0.0.1:{free_port()}"})).url
    no_table = serve(settings.model_copy(update={"dynamodb_table_name": "no-such-table"})).url
    for api in (dead, no_table):
        # THEN both are alive but not ready, and say why
        assert httpx.get(f"{api}/health").status_code == 200
        response = httpx.get(f"{api}/ready", timeout=30)
        assert response.status_code == 503
        assert response.json()["detail"].startswith("DynamoDB is not reachable")


def small_day(genre: str, day: dt.date, version: int = 1) -> DayKpis:
    """A day with one genre and one hour (cheap to write)."""
    return DayKpis(
        date=day,
        version=version,
        computed_at=dt.datetime.now(dt.UTC),
        events=3,
        genres=[GenreDay(genre=genre, listen_count=3, unique_listeners=2, total_listening_time_ms=600_000,
                         avg_listening_time_per_user_ms=300_000.0, top_songs=[])],
        top_genres=[GenreRank(rank=1, genre=genre, listen_count=3)],
        hours=[HourStats(hour=9, listen_count=3, unique_listeners=2, avg_listens_per_user=1.5,
                         track_diversity_index=1.0, top_artist="Someone", most_engaged_age_group="25-34")],
    )  # fmt: skip


def write(settings, kpis: DayKpis) -> None:
    ddb = aws.client(settings, "dynamodb")
    apply(ddb, settings.dynamodb_table_name, kpis, lease_seconds=30, wait_seconds=10)


def _sqs_send(settings, queue_name: str, n: int) -> None:
    sqs = aws.client(settings, "sqs")
    url = aws.queue_url(sqs, queue_name)
    for i in range(n):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"poison": i}))


def test_pipeline_status_reports_counters_depths_idle_and_freshness(settings, serve):
    # GIVEN counters recorded by the ledger, a freshness measurement, 2 dead letters and 1 waiting message
    ddb = aws.client(settings, "dynamodb")
    table = settings.dynamodb_table_name
    ledger.mark_file(ddb, table, "f1", "validated", {"files_received": 1, "files_validated": 1, "rows_accepted": 40})
    ledger.mark_file(ddb, table, "f2", "rejected", {"files_received": 1, "files_rejected": 1, "rows_quarantined": 3})
    ledger.mark_file(ddb, table, "f1", "processed", {"files_processed": 1, "dates_computed": 2, "dates_written": 2})
    ledger.record_freshness(ddb, table, 4.25, "f1")
    spec = resources.resources(settings)
    _sqs_send(settings, spec.queue("kpi-results").dlq_name, 2)
    _sqs_send(settings, spec.queue("validated").name, 1)
    api = serve(settings).url

    # WHEN the status is read
    status = httpx.get(f"{api}/pipeline/status").json()

    # THEN every figure is the one recorded
    assert {k: status[k] for k in ledger.COUNTERS} == {
        "files_received": 2,
        "files_validated": 1,
        "files_rejected": 1,
        "files_processed": 1,
        "rows_accepted": 40,
        "rows_quarantined": 3,
        "dates_computed": 2,
        "dates_written": 2,
    }
    assert status["freshness_lag_seconds"] == 4.25
    assert dt.datetime.fromisoformat(status["freshness_measured_at"]) <= dt.datetime.now(dt.UTC)
    assert [q["name"] for q in status["queues"]] == [q.name for q in spec.queues]
    depth = {q["name"]: q for q in status["queues"]}
    assert depth[spec.queue("kpi-results").name]["dlq_depth"] == 2
    assert depth[spec.queue("validated").name]["visible"] == 1
    assert status["dlq_total"] == 2
    assert status["backlog"] == sum(q["visible"] + q["in_flight"] + q["delayed"] for q in status["queues"]) >= 1
    assert status["idle"] is False


def test_an_empty_pipeline_is_idle(settings, serve):
    # (bootstrap's S3 test event is the only message: the validator would skip it)
    sqs = aws.client(settings, "sqs")
    sqs.purge_queue(QueueUrl=aws.queue_url(sqs, resources.resources(settings).queue("s3-events").name))
    status = httpx.get(f"{serve(settings).url}/pipeline/status").json()
    assert status["idle"] is True and status["backlog"] == 0 and status["dlq_total"] == 0
    assert status["freshness_lag_seconds"] is None and status["files_received"] == 0


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(r"([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == wanted:
            return float(m.group(3))
    return 0.0


def test_metrics_count_requests_per_route_and_gauge_queues(settings, serve):
    # GIVEN one genre's day written by the writer, 3 dead letters and 2 waiting messages
    genre = "jazz"
    write(settings, small_day(genre, dt.date(2025, 6, 24)))
    spec = resources.resources(settings)
    _sqs_send(settings, spec.queue("s3-events").dlq_name, 3)
    _sqs_send(settings, spec.queue("validated").name, 2)
    api = serve(settings).url
    route = "/genres/{genre}/days/{date}"
    before = httpx.get(f"{api}/metrics").text

    # WHEN 5 lookups succeed, 2 miss and 1 is invalid
    for _ in range(5):
        assert httpx.get(f"{api}/genres/{genre}/days/2025-06-24").status_code == 200
    for _ in range(2):
        assert httpx.get(f"{api}/genres/{genre}/days/2020-01-01").status_code == 404
    assert httpx.get(f"{api}/genres/{genre}/days/2020-02-30").status_code == 422
    after = httpx.get(f"{api}/metrics")

    # THEN each outcome is counted under the route's template, with its latency
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def delta(name: str, **labels: str) -> float:
        return _metric(text, name, **labels) - _metric(before, name, **labels)

    assert delta("playcount_api_requests_total", method="GET", route=route, status="200") == 5
    assert delta("playcount_api_requests_total", method="GET", route=route, status="404") == 2
    assert delta("playcount_api_requests_total", method="GET", route=route, status="422") == 1
    assert delta("playcount_api_request_seconds_count", method="GET", route=route) == 8
    assert delta("playcount_api_request_seconds_sum", method="GET", route=route) > 0
    # AND the queues' and DLQs' depths and the counters are gauges
    s3_events = spec.queue("s3-events")
    assert _metric(text, "playcount_dlq_messages", queue=s3_events.name, dlq=s3_events.dlq_name) == 3
    assert (
        _metric(
            text, "playcount_dlq_messages", queue=spec.queue("validated").name, dlq=spec.queue("validated").dlq_name
        )
        == 0
    )
    assert _metric(text, "playcount_queue_messages", queue=spec.queue("validated").name, state="visible") == 2
    assert _metric(text, "playcount_api_pipeline_status_up") == 1
    assert "playcount_pipeline_count" in text


def test_pipeline_history_samples_over_time(settings, serve):
    # GIVEN an API sampling every 0.2 s
    api = serve(settings, history=History(interval=0.2, capacity=50)).url
    wait_for(lambda: len(httpx.get(f"{api}/pipeline/history").json()["samples"]) >= 2, timeout=30, what="2 samples")
    # WHEN a file is processed
    ddb = aws.client(settings, "dynamodb")
    ledger.mark_file(ddb, settings.dynamodb_table_name, "f1", "processed", {"files_processed": 1})

    # THEN a later sample shows it, after samples that did not, in time order
    def seen():
        samples = httpx.get(f"{api}/pipeline/history").json()["samples"]
        return samples if samples[-1]["files_processed"] == 1 else None

    samples = wait_for(seen, timeout=30, what="a sample with the processed file")
    assert samples[0]["files_processed"] == 0
    assert [s["at"] for s in samples] == sorted(s["at"] for s in samples)
    body = httpx.get(f"{api}/pipeline/history").json()
    assert body["interval_seconds"] == 0.2 and body["capacity"] == 50 and len(body["samples"]) <= 50


def test_file_report_is_served_as_written(settings, serve):
    report = FileReport(
        file_id="0123456789abcdef01234567",
        bucket=settings.s3_bucket,
        key="streams/a.csv",
        kind="streams",
        status="rejected",
        reason="missing_column",
        detail="no listen_time column",
        rows_read=10,
        validated_at=dt.datetime(2025, 6, 24, 12, 0, tzinfo=dt.UTC),
    )
    s3 = aws.client(settings, "s3")
    s3.put_object(
        Bucket=settings.s3_bucket, Key=lake.report_key(settings, report.file_id), Body=report.model_dump_json()
    )
    api = serve(settings).url
    got = httpx.get(f"{api}/files/{report.file_id}")
    assert got.status_code == 200
    assert FileReport.model_validate(got.json()) == report
    assert httpx.get(f"{api}/files/not-an-id").status_code == 422


def test_reads_are_open_by_default_and_closable(settings, serve):
    open_api = serve(settings).url
    closed = serve(settings.model_copy(update={"api_read_key": READ_KEY, "api_key": ADMIN_KEY})).url
    reads = ["/days", "/genres", "/days/2025-06-24/top-genres", "/pipeline/status", "/pipeline/history"]
    for path in reads:
        assert httpx.get(open_api + path).status_code in (200, 404), path
        assert httpx.get(closed + path).status_code == 401, path
        assert httpx.get(closed + path, headers={"X-API-Key": "wrong-key-0123456789abc"}).status_code == 401, path
        assert httpx.get(closed + path, headers={"X-API-Key": READ_KEY}).status_code in (200, 404), path
        assert httpx.get(closed + path, headers={"X-API-Key": ADMIN_KEY}).status_code in (200, 404), path
    # probes and scrapes stay open: orchestrators and Prometheus carry no key
    for path in ("/health", "/ready", "/metrics"):
        assert httpx.get(closed + path).status_code == 200, path


def test_operations_are_disabled_without_api_key_and_need_it_when_set(settings, serve):
    without = serve(settings).url
    with_key = serve(settings.model_copy(update={"api_key": ADMIN_KEY})).url
    for method, path in (("POST", "/ops/dlq/validated/redrive"), ("GET", "/ops/dlq/validated")):
        assert httpx.request(method, without + path, headers={"X-API-Key": ADMIN_KEY}).status_code == 403
        assert httpx.request(method, with_key + path).status_code == 401
        assert httpx.request(method, with_key + path, headers={"X-API-Key": READ_KEY}).status_code == 401
        assert httpx.request(method, with_key + path, headers={"X-API-Key": ADMIN_KEY}).status_code == 200
    bad = httpx.post(with_key + "/ops/dlq/no-such-stage/redrive", headers={"X-API-Key": ADMIN_KEY})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("stage: ")


def test_dlq_peek_and_redrive_move_dead_letters_back(settings, serve):
    # GIVEN 3 dead letters of the runner's stage
    spec = resources.resources(settings).queue("validated")
    _sqs_send(settings, spec.dlq_name, 3)
    api = serve(settings.model_copy(update={"api_key": ADMIN_KEY})).url
    key = {"X-API-Key": ADMIN_KEY}
    # WHEN an operator looks at them, THEN they are shown and left in place
    letters = httpx.get(f"{api}/ops/dlq/validated?max_messages=10", headers=key, timeout=30).json()
    assert sorted(json.loads(m["body"])["poison"] for m in letters) == [0, 1, 2]
    # WHEN 2 are redriven, then the rest
    first = httpx.post(f"{api}/ops/dlq/validated/redrive?max_messages=2", headers=key, timeout=30)
    assert first.json() == {"stage": "validated", "moved": 2}
    rest = httpx.post(f"{api}/ops/dlq/validated/redrive", headers=key, timeout=30)
    assert rest.json() == {"stage": "validated", "moved": 1}
    # THEN the DLQ is empty and the stage's queue holds all 3 bodies
    sqs = aws.client(settings, "sqs")
    got = []
    while len(got) < 3:
        batch = sqs.receive_message(QueueUrl=aws.queue_url(sqs, spec.name), MaxNumberOfMessages=10, WaitTimeSeconds=1)
        got += [json.loads(m["Body"])["poison"] for m in batch.get("Messages", [])]
    assert sorted(got) == [0, 1, 2]
    assert httpx.get(f"{api}/ops/dlq/validated", headers=key, timeout=30).json() == []


@pytest.mark.fast
def test_stage_parameter_lists_the_pipeline_stages():
    assert set(typing.get_args(Stage)) == set(resources.STAGES)


def test_the_service_process_serves_and_exits_0_on_sigterm(settings, stack):
    # GIVEN the API started as the stack starts it (its own process, `python -m playcount.api.main`)
    s = stack(settings, services=("query-api",))
    api = f"http://127.0.0.1:{settings.api_port}"
    wait_for(lambda: _ready(api), timeout=60, what="the API process to be ready")
    # WHEN it gets SIGTERM, THEN it drains and exits 0
    s.kill("query-api", signal.SIGTERM)
    assert s.procs["query-api"].returncode == 0


def _ready(api: str) -> bool:
    try:
        return httpx.get(f"{api}/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/dashboard", "/explore"])
def test_docs_and_dashboard_pages_are_served(shared_api, path):
    response = httpx.get(shared_api + path)
    assert response.status_code == 200


def test_openapi_describes_every_route(shared_api):
    spec = httpx.get(f"{shared_api}/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/genres/{genre}/days/{date}",
        "/days/{date}/top-genres",
        "/days/{date}/hours",
        "/genres",
        "/days",
        "/files/{file_id}",
        "/pipeline/status",
        "/pipeline/history",
        "/health",
        "/ready",
        "/metrics",
        "/dashboard",
        "/explore",
        "/genres/{genre}/days",
        "/days/{date}/genres",
    ):
        assert path in paths, path
    genre = next(p for p in paths["/genres/{genre}/days/{date}"]["get"]["parameters"] if p["name"] == "genre")
    assert "256 bytes" in genre["description"] and "R%26B" in genre["description"]
    responses = paths["/genres/{genre}/days/{date}"]["get"]["responses"]
    assert {"200", "404", "422", "503"} <= set(responses)
    assert "X-API-Key" in json.dumps(spec["components"]["securitySchemes"])
    # every KPI endpoint documents its CSV export
    for path in (*(p for p in paths if p.startswith(("/genres", "/days"))),):
        assert "text/csv" in paths[path]["get"]["responses"]["200"]["content"], path
