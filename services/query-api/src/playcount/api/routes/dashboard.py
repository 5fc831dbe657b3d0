"""The ops dashboard: one static page (no build step) that draws charts from the live API."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["dashboard"])


@router.get("/dashboard", response_class=HTMLResponse, responses={200: {"content": {"text/html": {}}}})
async def dashboard() -> FileResponse:
    """Files processed and rejected over time, queue and DLQ depths, freshness lag, a day's genres and hours."""
    return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html; charset=utf-8")
