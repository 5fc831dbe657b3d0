"""The pages: the ops dashboard, the analysts' explorer and the interactive API docs, static files
with no build step.

Each page loads only its own script and the vendored libraries under `/static` (see
`playcount.api.security` for the Content-Security-Policy that holds them to it).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
HTML = "text/html; charset=utf-8"

router = APIRouter(tags=["pages"])


@router.get("/dashboard", response_class=HTMLResponse, responses={200: {"content": {"text/html": {}}}})
async def dashboard() -> FileResponse:
    """Files processed and rejected over time, queue and DLQ depths, freshness lag, a day's genres and hours."""
    return FileResponse(STATIC_DIR / "dashboard.html", media_type=HTML)


@router.get("/explore", response_class=HTMLResponse, responses={200: {"content": {"text/html": {}}}})
async def explore() -> FileResponse:
    """A genre's trend over a date range, the genres' shares per day, a week's listens by hour and day."""
    return FileResponse(STATIC_DIR / "explore.html", media_type=HTML)


@router.get("/docs", include_in_schema=False)
async def docs() -> FileResponse:
    """Swagger UI over `/openapi.json`, served from the vendored bundle (no CDN, no inline script)."""
    return FileResponse(STATIC_DIR / "docs.html", media_type=HTML)
