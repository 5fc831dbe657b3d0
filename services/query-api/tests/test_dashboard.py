"""The dashboard in real headless Chromium: it renders every chart from the live API.

Set PLAYCOUNT_DASHBOARD_SCREENSHOT=<path.png> to keep the screenshot (docs/dashboard.png is made so).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from playcount.api.history import History
from playcount.core import aws, ledger, resources
from tests.helpers import wait_for

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CARDS = {"backlog", "files", "freshness", "genre", "genres", "hours", "queues"}


@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Chromium and ChromeDriver are not installed (scripts/setup.sh test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1440,1480",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


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


def test_dashboard_renders_every_chart_from_the_live_api(settings, fresh_written, serve, browser, tmp_path):
    # GIVEN two days of KPIs, files flowing through the ledger, a dead letter, an API sampling fast
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
    day = fresh_written.days[-1]
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
    queues = browser.execute_script(chart, "chart-queues")
    assert queues["labels"] == ["s3-events", "validated", "kpi-results"] and queues["datasets"][2]["data"][1] == 1
    # AND the page logged no errors
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, json.dumps(errors, indent=1)

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1440, height + 140)  # the whole page, for the screenshot
    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    keep = os.environ.get("PLAYCOUNT_DASHBOARD_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)


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
