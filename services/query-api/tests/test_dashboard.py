"""The dashboard in real headless Chromium: it renders every chart from the live API.

Set PLAYCOUNT_DASHBOARD_SCREENSHOT=<path.png> to keep the screenshot (docs/dashboard.png is made so).
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from playcount.api.history import History
from playcount.core import aws, ledger, resources
from tests.support.helpers import wait_for

pytestmark = pytest.mark.browser

CARDS = {"backlog", "files", "freshness", "genre", "genres", "hours", "queues"}
RAW_VERSION = re.compile(r"\bv\d+|\bversion\b|\d{7,}", re.IGNORECASE)  # what a reader should never have to read
CLOCK = re.compile(r"^\d\d:\d\d:\d\d$")
X_SCALE = """const x = Chart.getChart(document.getElementById(arguments[0])).scales.x;
return {min: x.min, max: x.max, ticks: x.ticks.map((t) => [t.value, t.label])};"""


def _activity(settings, api: str, steps: int = 6) -> None:
    """Files flowing through the ledger while the API samples, so the curves have a shape."""
    ddb = aws.client(settings, "dynamodb")
    table = settings.dynamodb_table_name
    processed = httpx.get(f"{api}/pipeline/status").json()["files_processed"]
    for i in range(steps):
        rejected = i % 3 == 2
        counters = {"files_received": 2, "files_validated": 1 if rejected else 2, "rows_accepted": 900 + 37 * i}
        if rejected:
            counters |= {"files_rejected": 1, "rows_quarantined": 12}
        ledger.mark_file(ddb, table, f"in-{i}", "validated", counters)
        ledger.mark_file(ddb, table, f"out-{i}", "processed", {"files_processed": 1 if rejected else 2})
        ledger.record_freshness(ddb, table, 2.4 + (i % 4) * 0.9, f"out-{i}")
        processed += 1 if rejected else 2
        # a sample taken before these marks may land after them: wait for one that counts them
        wait_for(
            lambda want=processed: (
                (httpx.get(f"{api}/pipeline/history").json()["samples"] or [{}])[-1].get("files_processed") == want
            ),
            timeout=30,
            what=f"a history sample with files_processed={processed}",
        )


def test_dashboard_renders_every_chart_from_the_live_api(settings, fresh_written, serve, browser, page_done):
    # GIVEN two days of KPIs, the latest at a version as the runners number them (a counter started
    # from the clock in microseconds), files flowing through the ledger, a dead letter, an API sampling fast
    day = fresh_written.days[-1]
    version = 1_796_189_430_891_876
    fresh_written.apply(fresh_written.kpis[day].model_copy(update={"version": version}))
    api = serve(settings, history=History(interval=0.3)).url
    spec = resources.resources(settings)
    sqs = aws.client(settings, "sqs")
    sqs.send_message(QueueUrl=aws.queue_url(sqs, spec.queue("validated").dlq_name), MessageBody="{}")
    _activity(settings, api)

    # WHEN the dashboard is opened in Chromium
    browser.get(f"{api}/dashboard")

    # THEN every chart renders from the API ...
    def ready():
        return set((browser.find_element("tag name", "body").get_attribute("data-ready") or "").split()) >= CARDS

    wait_for(ready, timeout=60, what=f"the dashboard's cards {sorted(CARDS)} to render")
    # ... with the API's figures: the latest day's top genres, its hours, the status tiles
    chart = "return Chart.getChart(document.getElementById(arguments[0])).data"
    genres = browser.execute_script(chart, "chart-genres")
    assert genres["labels"] == [g["genre"] for g in fresh_written.expected[day]["top_genres"]]
    assert genres["datasets"][0]["data"] == [g["listen_count"] for g in fresh_written.expected[day]["top_genres"]]
    hours = browser.execute_script(chart, "chart-hours")["datasets"][0]["data"]
    assert hours == [fresh_written.expected[day]["hours"].get(h, {}).get("listen_count", 0) for h in range(24)]
    status = httpx.get(f"{api}/pipeline/status").json()
    assert browser.find_element("id", "t-processed").text == str(status["files_processed"])
    assert browser.find_element("id", "t-dlq").text == "1"
    files = browser.execute_script(chart, "chart-files")["datasets"][1]["data"]
    assert len(files) >= 6 and files[-1]["y"] == status["files_processed"] and files[0]["y"] < files[-1]["y"]
    freshness = browser.execute_script(chart, "chart-freshness")["datasets"][0]["data"]
    assert len(freshness) >= 2
    # ... on a time axis of the points' own minutes, with round clock ticks
    x = browser.execute_script(X_SCALE, "chart-freshness")
    assert x["min"] <= min(p["x"] for p in freshness) <= max(p["x"] for p in freshness) <= x["max"]
    assert x["max"] - x["min"] <= 3600 and len(x["ticks"]) >= 3, x
    assert all(CLOCK.match(label) for _, label in x["ticks"]), x["ticks"]
    # AND results say when they were computed; their raw versions are only in tooltips
    options = browser.execute_script(
        "return [...document.querySelectorAll('#day-select option')].map((o) => ({text: o.text, title: o.title}))"
    )
    listed = httpx.get(f"{api}/days").json()["days"]
    assert [o["text"][:10] for o in options] == [d["date"] for d in reversed(listed)]
    assert not [o["text"] for o in options if RAW_VERSION.search(o["text"])], options
    assert options[0]["title"].startswith(f"version {version}") and options[1]["title"].startswith("version 1")
    if all("computed_at" in d for d in listed):  # GET /days has carried computed_at since issue #16
        assert all(re.search(r"computed \d\d:\d\d:\d\d UTC", o["text"]) for o in options), options
    panel = browser.find_element("id", "card-genre").text
    assert not RAW_VERSION.search(panel), panel
    stamp = browser.find_element("id", "genre-computed")
    assert re.fullmatch(r"computed \d\d:\d\d:\d\d UTC · (just now|\d+ min ago)", stamp.text), stamp.text
    assert stamp.get_attribute("title").startswith(f"version {version} · computed at ")
    queues = browser.execute_script(chart, "chart-queues")
    assert queues["labels"] == ["s3-events", "validated", "kpi-results"] and queues["datasets"][2]["data"][1] == 1
    # AND the page logged no errors; the screenshot
    page_done(browser, "dashboard", "PLAYCOUNT_DASHBOARD_SCREENSHOT")


def test_one_freshness_measurement_gets_an_axis_of_minutes_not_years(settings, serve, browser):
    # GIVEN an API that has measured the freshness lag of one file only
    api = serve(settings, history=History(interval=0.3)).url
    _activity(settings, api, steps=1)

    # WHEN the dashboard draws it
    browser.get(f"{api}/dashboard")
    chart = "return Chart.getChart(document.getElementById('chart-freshness')).data.datasets[0].data"
    points = wait_for(lambda: browser.execute_script(chart), timeout=60, what="the freshness chart's point")

    # THEN the time axis spans minutes around the point (Chart.js alone would widen it by years),
    # with readable, distinct HH:MM:SS ticks inside it
    assert len(points) == 1
    x = browser.execute_script(X_SCALE, "chart-freshness")
    assert x["min"] < points[0]["x"] < x["max"] and 60 <= x["max"] - x["min"] <= 3600, x
    labels = [label for _, label in x["ticks"]]
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    assert all(CLOCK.match(label) for label in labels) and all(x["min"] <= v <= x["max"] for v, _ in x["ticks"])


def test_docs_render_the_api_under_the_content_security_policy(shared_api, browser):
    # GIVEN the API, whose pages send a policy that allows no inline or foreign script
    assert "script-src 'self'" in httpx.get(f"{shared_api}/docs").headers["content-security-policy"]

    # WHEN the interactive docs are opened in Chromium
    browser.get(f"{shared_api}/docs")

    # THEN Swagger UI, served from /static, lists the API's operations from /openapi.json ...
    def operations():
        return browser.execute_script(
            "return [...document.querySelectorAll('.opblock-summary-path')].map(e => e.dataset.path)"
        )

    paths = wait_for(operations, timeout=60, what="Swagger UI to list the operations")
    spec = httpx.get(f"{shared_api}/openapi.json").json()
    assert set(paths) == set(spec["paths"])
    # ... and nothing was refused or failed on the way
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, json.dumps(errors, indent=1)
