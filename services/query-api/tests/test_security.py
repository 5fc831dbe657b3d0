"""HTTP hardening, against the real app under uvicorn: security headers, pages that load only
their own and vendored code, and bounded request bodies on the operations endpoints.

(The pages' rendering under the policy is checked in real Chromium in test_dashboard.py and test_explore.py.)
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from playcount.api.routes.pages import STATIC_DIR
from playcount.api.security import CONTENT_SECURITY_POLICY

ADMIN_KEY = "admin-key-0123456789abcdef"
PAGES = ("/dashboard", "/explore", "/docs")


class _Refs(HTMLParser):
    """Every script and stylesheet a page loads, and whether any script is inline."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self._in_script = True
            if a.get("src"):
                self.refs.append(a["src"] or "")
        if tag == "link" and a.get("rel") == "stylesheet":
            self.refs.append(a.get("href") or "")
        if any(name.startswith("on") for name in a):
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


@pytest.mark.parametrize(
    "path", [*PAGES, "/openapi.json", "/static/dashboard.js", "/days", "/no-such-page", "/genres/rock/days/nope"]
)
def test_every_response_carries_the_security_headers(shared_api, path):
    response = httpx.get(shared_api + path)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    policy = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'", "no inline or foreign script"


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_only_their_own_scripts_and_the_vendored_libraries(shared_api, path):
    response = httpx.get(shared_api + path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = _Refs()
    page.feed(response.text)
    assert page.inline_scripts == 0, "the policy allows no inline script"
    assert page.refs, "a page with nothing to load is not the page"
    for ref in page.refs:
        assert re.fullmatch(r"static/[\w./-]+", ref), f"{path} loads {ref!r} from elsewhere"
        assert (STATIC_DIR / ref.removeprefix("static/")).is_file(), ref
        assert httpx.get(f"{shared_api}/{ref}").status_code == 200, ref


def test_operations_refuse_oversized_bodies_before_running(settings, serve):
    api = serve(settings.model_copy(update={"api_key": ADMIN_KEY, "api_max_body_bytes": 1024})).url
    url = f"{api}/ops/dlq/validated/redrive"
    key = {"X-API-Key": ADMIN_KEY}
    # a declared length above the bound: refused at once, with a JSON reason
    big = httpx.post(url, headers=key, content=b"x" * 4096)
    assert big.status_code == 413 and "1024 bytes" in big.json()["detail"]
    assert big.headers["x-content-type-options"] == "nosniff"

    # a chunked body (no declared length) is counted as it arrives
    def chunks():
        for _ in range(64):
            yield b"y" * 100

    assert httpx.post(url, headers=key, content=chunks()).status_code == 413
    # within the bound the operation runs as before (an empty DLQ: nothing moved)
    ok = httpx.post(url, headers=key, content=b"{}")
    assert ok.status_code == 200 and ok.json()["moved"] == 0
    small_chunked = httpx.post(url, headers=key, content=iter([b"{", b"}"]))
    assert small_chunked.status_code == 200
