"""CSV exports: every KPI endpoint answers `text/csv` when asked (`?format=csv` or `Accept: text/csv`).

The columns are the JSON's, in the response model's order, with a header row (also when there
are no rows). A list response has one line per element of its list (`days`, `genres`, `hours`),
the response's own fields repeated on each line before the element's fields. A genre's day has
one line per top song, its song columns named `top_songs.<field>`. A list inside a cell (a
day's genres) is written as JSON; a missing value is empty.

A text cell that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab
or a carriage return) is written with a leading `'` (OWASP's advice for CSV injection).
"""

from __future__ import annotations

import csv
import io
import json
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from fastapi import Query, Request, Response
from pydantic import BaseModel

from playcount.api.etag import Encoded, cached_json, tagged

CSV = "text/csv; charset=utf-8"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Format = Annotated[
    Literal["json", "csv"] | None,
    Query(description="`csv` for a CSV export with a header row (as `Accept: text/csv` asks); default JSON"),
]
# documents the CSV answer of an endpoint in its OpenAPI schema
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}


def wants_csv(request: Request, fmt: str | None) -> bool:
    """`?format=` decides; without it, an Accept header that names text/csv and not JSON."""
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("accept", "").lower()
    return "text/csv" in accept and "application/json" not in accept


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    return "'" + text if isinstance(value, str) and text.startswith(_FORMULA_START) else text


def _element_fields(model: type[BaseModel], field: str) -> list[str] | None:
    """The fields of the elements of list field `field`, or None for a list of plain values."""
    (element,) = typing.get_args(model.model_fields[field].annotation)
    return list(element.model_fields) if isinstance(element, type) and issubclass(element, BaseModel) else None


def to_csv(model: type[BaseModel], body: Mapping[str, Any], rows: str, *, nested: bool = False) -> bytes:
    """`body` (a `model` as JSON) as CSV, a line per element of its list field `rows`.

    `nested`: the body is one object and `rows` a detail of it (a genre's top songs): their
    columns are prefixed with `rows.`, and the object gets a line even without any element.
    """
    outer = [f.serialization_alias or f.alias or name for name, f in model.model_fields.items() if name != rows]
    inner = _element_fields(model, rows)
    header = outer + ([f"{rows}.{name}" if nested else name for name in inner] if inner is not None else [rows])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    context = [_cell(body.get(name)) for name in outer]
    elements: Sequence[Any] = body.get(rows) or ([{}] if nested else [])
    for element in elements:
        cells = [_cell(element.get(name)) for name in inner] if inner is not None else [_cell(element)]
        writer.writerow(context + cells)
    return out.getvalue().encode()


def _filename(request: Request) -> str:
    return "playcount" + re.sub(r"[^A-Za-z0-9]+", "-", request.url.path).rstrip("-") + ".csv"


def respond(
    request: Request,
    encoded: Encoded,
    max_age: float,
    fmt: str | None,
    model: type[BaseModel],
    rows: str,
    *,
    nested: bool = False,
    headers: dict[str, str] | None = None,
) -> Response:
    """The JSON body as is, or its CSV export (each with its own ETag), varying by Accept."""
    headers = {"Vary": "Accept", **(headers or {})}
    if not wants_csv(request, fmt):
        return cached_json(request, encoded, max_age, headers=headers)
    body = tagged(to_csv(model, json.loads(encoded.body), rows, nested=nested))
    headers["Content-Disposition"] = f'inline; filename="{_filename(request)}"'
    return cached_json(request, body, max_age, media_type=CSV, headers=headers)
