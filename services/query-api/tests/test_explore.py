"""The explorer in real headless Chromium: its charts show what the API answers, and link the calls.

Set PLAYCOUNT_EXPLORE_SCREENSHOT=<path.png> to keep the screenshot (docs/explore.png is made so).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pyarrow as pa
import pytest
from selenium.webdriver.support.ui import WebDriverWait

from playcount.core.kpis import DayKpis
from playcount.devstack import generate
from tests.support import oracle

pytestmark = pytest.mark.browser

CARDS = {"heatmap", "shares", "trend"}
# two weeks before the fixture's two days, less one: a gap the charts must show as one
EARLIER = [dt.date(2025, 6, 10) + dt.timedelta(days=i) for i in range(14) if i != 5]
GAP = "2025-06-15"
CHART = "return Chart.getChart(document.getElementById(arguments[0])).data"


def _listens_over(days: list[dt.date]) -> dict[str, DayKpis]:
    """The oracle's KPIs for `days` (the fixture's catalogue), more listens on later days and weekends."""
    songs, users, cat = generate.dataset(seed=7, n_tracks=240, n_users=90)
    rng = np.random.default_rng(11)
    table = pa.concat_tables(
        generate.streams_table(rng, cat, 700 + 35 * i + (260 if d.weekday() >= 5 else 0), [d])
        for i, d in enumerate(days)
    )
    figures = oracle.kpis(
        zip(table["user_id"].to_pylist(), table["track_id"].to_pylist(), table["listen_time"].to_pylist(), strict=True),
        oracle.metadata_from_csv(songs.to_pylist(), "track_id"),
        oracle.metadata_from_csv(users.to_pylist(), "user_id"),
    )
    return {
        day: DayKpis.model_validate(
            {
                "date": day,
                "version": 1,
                "computed_at": dt.datetime.now(dt.UTC),
                "events": sum(h["listen_count"] for h in f["hours"].values()),
                "genres": [{"genre": g, **v} for g, v in sorted(f["genres"].items())],
                "top_genres": f["top_genres"],
                "hours": [h for _, h in sorted(f["hours"].items())],
            }
        )
        for day, f in figures.items()
    }


def _calendar(first: str, last: str) -> list[str]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def _rendered(browser, card: str, href_part: str = ""):
    """A wait condition: `card` shows the current choices (and its link holds `href_part`)."""

    def ready(_driver) -> bool:
        done = browser.execute_script("return document.getElementById(arguments[0]).dataset.rendered", f"card-{card}")
        link = browser.find_element("id", f"link-{card}").get_attribute("href") or ""
        return done == "true" and href_part in link

    return ready


def _choose(browser, element_id: str, value: str) -> None:
    """Set a control as a person would, firing its change event (date inputs' typing depends on locale)."""
    browser.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1];e.dispatchEvent(new Event('change'));",
        element_id,
        value,
    )


def _check_trend(browser, api: str, genre: str, first: str, last: str, with_data: set[str]) -> None:
    trend = httpx.get(f"{api}/genres/{quote(genre, safe='')}/days", params={"from": first, "to": last}).json()
    by_date = {d["date"]: d for d in trend["days"]}
    data = browser.execute_script(CHART, "chart-trend")
    assert data["labels"] == _calendar(first, last)

    def expected(key: str) -> list[Any]:
        # a day with KPIs but none for the genre had no listens of it; a day without KPIs is a gap
        return [by_date[d][key] if d in by_date else (0 if d in with_data else None) for d in data["labels"]]

    assert data["datasets"][0]["data"] == expected("listen_count")
    assert data["datasets"][1]["data"] == expected("unique_listeners")


def test_explorer_charts_show_the_apis_figures_and_link_its_calls(fresh_written, serve, browser, page_done):
    # GIVEN KPIs of 15 days written by the writer (the fixture's two, 13 before them), with a gap
    for kpis in _listens_over(EARLIER).values():
        fresh_written.apply(kpis)
    api = serve(fresh_written.settings).url
    with_data = {d["date"] for d in httpx.get(f"{api}/days").json()["days"]}
    first, last = min(with_data), max(with_data)
    assert len(with_data) == 15 and GAP not in with_data and first < GAP < last

    # WHEN the explorer is opened in Chromium
    browser.get(f"{api}/explore")
    wait = WebDriverWait(browser, 60)
    wait.until(
        lambda _: set((browser.find_element("tag name", "body").get_attribute("data-ready") or "").split()) == CARDS,
        message=f"the explorer's cards {sorted(CARDS)} to render",
    )

    # THEN it chose the defaults: every day with data (fewer than 30), the week ending on the last,
    # and the genre with the most listens over the range
    choices = browser.execute_script(
        "return Object.fromEntries(['from', 'to', 'week', 'genre', 'top']"
        ".map(i => [i, document.getElementById(i).value]))"
    )
    rankings = {d: httpx.get(f"{api}/days/{d}/genres", params={"limit": 500}).json() for d in sorted(with_data)}
    listens: dict[str, int] = {}
    for ranking in rankings.values():
        for g in ranking["genres"]:
            listens[g["genre"]] = listens.get(g["genre"], 0) + g["listen_count"]
    top = min(listens, key=lambda g: (-listens[g], g))
    assert choices == {"from": first, "to": last, "week": last, "genre": top, "top": "5"}

    # ... the trend holds the trend endpoint's figures per day: 0 on a day without the genre, a gap
    _check_trend(browser, api, top, first, last, with_data)

    # ... each day's shares sum to 1, its top genre's share is the ranking endpoint's, the gap is empty
    shares = browser.execute_script(CHART, "chart-shares")
    assert shares["labels"] == _calendar(first, last) and shares["datasets"][-1]["label"] == "other"
    for i, day in enumerate(shares["labels"]):
        column = {s["label"]: s["data"][i] for s in shares["datasets"]}
        if day not in with_data:
            assert set(column.values()) == {None}, day
            continue
        assert sum(v or 0 for v in column.values()) == pytest.approx(1, abs=1e-6), day
        best = httpx.get(f"{api}/days/{day}/genres", params={"limit": 1}).json()["genres"][0]
        assert column[best["genre"]] == best["share"], day
        top5 = {g["genre"] for g in rankings[day]["genres"][:5]}
        assert {g for g, v in column.items() if v is not None} == top5 | {"other"}, day

    # ... the heatmap's cells are /days/{d}/hours' listens per hour (absent hours 0) for the 7 days
    _check_heatmap(browser, api, last, with_data)

    # ... and under each chart, a link to the exact call behind it, which answers (JSON and CSV)
    links = {card: browser.find_element("id", f"link-{card}").get_attribute("href") for card in sorted(CARDS)}
    assert links == {
        "trend": f"{api}/genres/{quote(top, safe='')}/days?from={first}&to={last}",
        "shares": f"{api}/days/{last}/genres?limit=5",
        "heatmap": f"{api}/days/{last}/hours",
    }
    day_links = [a.get_attribute("href") for a in browser.find_elements("css selector", "#heatmap th a")]
    assert day_links == [f"{api}/days/{d}/hours" for d in _calendar(_days_before(last, 6), last)]
    for href in [*links.values(), *day_links]:
        assert httpx.get(href).status_code == 200, href
    for card in sorted(CARDS):
        csv = httpx.get(browser.find_element("id", f"link-{card}-csv").get_attribute("href"))
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv"), card

    # AND the page logged no errors; the screenshot
    page_done(browser, "explore", "PLAYCOUNT_EXPLORE_SCREENSHOT")

    # WHEN an analyst picks another genre, a narrower range, and a week with the gap in it
    other = sorted(set(listens) - {top})[0]
    _choose(browser, "genre", other)
    wait.until(_rendered(browser, "trend", f"/genres/{other}/days"), message=f"the trend of {other}")
    _check_trend(browser, api, other, first, last, with_data)
    _choose(browser, "from", "2025-06-13")
    _choose(browser, "to", "2025-06-20")
    wait.until(_rendered(browser, "trend", "from=2025-06-13&to=2025-06-20"), message="the trend over the new range")
    wait.until(_rendered(browser, "shares", "/days/2025-06-20/"), message="the shares over the new range")
    _check_trend(browser, api, other, "2025-06-13", "2025-06-20", with_data)
    assert browser.execute_script(CHART, "chart-shares")["labels"] == _calendar("2025-06-13", "2025-06-20")
    _choose(browser, "week", "2025-06-18")
    wait.until(_rendered(browser, "heatmap", "/days/2025-06-18/hours"), message="the heatmap of the new week")

    # THEN the charts follow, and the gap's row says it has no data
    _check_heatmap(browser, api, "2025-06-18", with_data)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, json.dumps(errors, indent=1)


def _days_before(day: str, n: int) -> str:
    return (dt.date.fromisoformat(day) - dt.timedelta(days=n)).isoformat()


def _check_heatmap(browser, api: str, end: str, with_data: set[str]) -> None:
    week = _calendar(_days_before(end, 6), end)
    rows = browser.execute_script(
        "return [...document.querySelectorAll('#heatmap tbody tr')].map(r => ({date: r.dataset.date,"
        " hours: [...r.querySelectorAll('td[data-hour]')]"
        ".map(c => [Number(c.dataset.hour), Number(c.dataset.listens)]),"
        " nodata: r.querySelector('td.nodata') !== null}))"
    )
    assert [r["date"] for r in rows] == week
    for row in rows:
        if row["date"] not in with_data:
            assert row["nodata"] and row["hours"] == [], row["date"]
            continue
        body = httpx.get(f"{api}/days/{row['date']}/hours").json()
        listens = {h["hour"]: h["listen_count"] for h in body["hours"]}
        assert row["hours"] == [[h, listens.get(h, 0)] for h in range(24)], row["date"]
