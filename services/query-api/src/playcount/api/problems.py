"""How the API answers what went wrong: readable 422s, and 503 (not 500) when AWS cannot be reached."""

from __future__ import annotations

from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from playcount.api.consistent import DateBeingUpdated
from playcount.api.models import ErrorResponse, ValidationErrorResponse

log = structlog.get_logger(__name__)

COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "reads are closed and no valid X-API-Key was sent"},
    422: {"model": ValidationErrorResponse, "description": "a path or query parameter is invalid"},
    503: {
        "model": ErrorResponse,
        "description": "DynamoDB, SQS or S3 cannot be reached, or the date is mid-update (Retry-After)",
    },
}


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("path", "query", "header", "body")]
    return ".".join(parts) or "request"


def _readable(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    given = error.get("input")
    if isinstance(given, str) and len(given) <= 80 and "input" not in msg:
        msg = f"{msg} (got {given!r})"
    return f"{_where(error.get('loc', ()))}: {msg}"


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg")), "type": str(e.get("type"))} for e in exc.errors()
    ]
    summary = "; ".join(_readable(e) for e in exc.errors())
    return JSONResponse(ValidationErrorResponse(detail=summary, errors=errors).model_dump(), status_code=422)


async def aws_unreachable(request: Request, exc: Exception) -> JSONResponse:
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
    log.warning("AWS call failed", path=request.url.path, error=str(exc))
    return JSONResponse(
        {"detail": f"a dependency cannot be reached or refused the request ({code}); retry shortly"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "2"},
    )


async def being_updated(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": str(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"}
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DateBeingUpdated, being_updated)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ClientError, aws_unreachable)
    app.add_exception_handler(BotoCoreError, aws_unreachable)
