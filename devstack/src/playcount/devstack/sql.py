"""`playcount sql "SELECT ..."`: one read-only query over the lake, run by DuckDB in this process.

The tables (docs/sql.md):
  events  the validated events, with their partition `listen_date` (a YYYY-MM-DD string)
  songs   the current song catalog: of each track_id, the row with the highest `_seq` among the
          segments its manifest lists (core.snapshots); `_seq` itself is not shown
  users   the current user catalog, likewise per user_id

pyarrow reads the lake (its S3 filesystem, lazily through datasets) and DuckDB only scans the
arrow objects registered on it, so DuckDB itself never opens a file, a URL or an extension. The
sandbox, in two layers:
  - before anything runs, the text must parse as exactly one SELECT (WITH ... SELECT, VALUES,
    DESCRIBE, SHOW and SUMMARIZE parse as SELECT too); anything else is refused, EXPLAIN
    included, since EXPLAIN ANALYZE runs the statement it explains;
  - the connection has external access off, extension autoloading off, Python variables not
    visible by name, no spilling to disk, a memory limit and a thread count, and its
    configuration locked, so no statement can loosen it; a timer interrupts the query at its
    time limit (the limit covers running the query and writing its rows out).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import pyarrow as pa
import pyarrow.dataset as ds
import typer
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

try:
    import duckdb
except ImportError:  # an optional extra (playcount-cli[sql]): the service images carry no DuckDB
    duckdb = None  # type: ignore[assignment]

from playcount.cli.console import err
from playcount.core import aws, lake, parquet, snapshots
from playcount.core.config import Settings, load_settings

TABLES = ("events", "songs", "users")
EVENTS = parquet.EVENTS.append(pa.field("listen_date", pa.string()))
BATCH_ROWS = 8192
CELL_WIDTH = 60  # a longer value is cut in the printed table (never in CSV)
_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|[KMGT]i?B)$", re.IGNORECASE)


class Refused(Exception):
    """Not exactly one SELECT: refused before anything runs."""


class TimedOut(Exception):
    """The query ran past its time limit and was interrupted."""


def statement(query: str) -> duckdb.Statement:
    """The one SELECT `query` holds; `Refused` for none, several, or any other kind of statement.

    A syntax error raises DuckDB's `ParserException`.
    """
    statements = duckdb.extract_statements(query)
    if len(statements) != 1:
        raise Refused(f"exactly one statement can run, got {len(statements)}")
    (st,) = statements
    if st.type != duckdb.StatementType.SELECT:
        head = " ".join(st.query.split())[:40]
        raise Refused(f"only a SELECT can run; this is {st.type.name}: {head}")
    return st


def connect(memory: str, threads: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that reaches nothing but the arrow objects registered on it later.

    A query that needs more than `memory` fails (nothing spills to disk). Timestamps are shown in UTC.
    """
    con = duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "python_enable_replacements": False,
            "temp_directory": "",
            "memory_limit": memory,
            "threads": threads,
        },
    )
    con.execute("SET TimeZone = 'UTC'")  # an ICU option: not accepted by connect's config
    con.execute("SET lock_configuration = true")
    return con


def events(settings: Settings, fs: Any) -> ds.Dataset | pa.Table:
    """Every validated event with its `listen_date`, as a lazy dataset (an empty table before the first file)."""
    partitioning = ds.partitioning(pa.schema([EVENTS.field("listen_date")]), flavor="hive")
    root = lake.path(settings, lake.streams_root(settings))
    try:
        return ds.dataset(root, filesystem=fs, format="parquet", partitioning=partitioning, schema=EVENTS)
    except FileNotFoundError:
        return EVENTS.empty_table()


def current(con: duckdb.DuckDBPyConnection, settings: Settings, s3: S3Client, fs: Any, kind: snapshots.Kind) -> Any:
    """A relation over `kind`'s current catalog: the newest row per id of the segments its manifest lists now.

    The manifest is read once; its segments are immutable and outlive a newer manifest for a while
    (core.compaction), so one query sees one state of the catalog.
    """
    schema = snapshots.segment_schema(kind)
    paths = [lake.path(settings, seg.key) for seg in snapshots.read_manifest(settings, s3, kind).segments]
    segments = ds.dataset(paths, filesystem=fs, format="parquet", schema=schema) if paths else schema.empty_table()
    newest = f"row_number() OVER (PARTITION BY {snapshots.ID_COLUMN[kind]} ORDER BY {snapshots.SEQ} DESC)"
    rows = con.from_arrow(segments).project(f"*, {newest} AS _newest").filter("_newest = 1")
    return rows.project(f"* EXCLUDE (_newest, {snapshots.SEQ})")


def register(con: duckdb.DuckDBPyConnection, settings: Settings, query: str) -> list[str]:
    """Register the tables `query` names; returns them.

    A table the text does not name is not opened (the events listing can be long). A query that
    reaches one anyway fails with "does not exist": it never sees an empty stand-in.
    """
    named = [t for t in TABLES if t in query.lower()]
    fs = parquet.filesystem(settings)
    if "events" in named:
        con.register("events", events(settings, fs))
    kinds = [k for k in snapshots.KINDS if k in named]
    if kinds:
        s3 = aws.client(settings, "s3")
        for kind in kinds:
            current(con, settings, s3, fs, kind).create_view(kind)
    return named


@contextmanager
def time_limit(con: duckdb.DuckDBPyConnection, seconds: float) -> Iterator[None]:
    """Interrupt `con` after `seconds`; the error the interrupt causes surfaces as `TimedOut`."""
    fired = threading.Event()

    def interrupt() -> None:
        fired.set()
        con.interrupt()

    timer = threading.Timer(seconds, interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    except (duckdb.Error, OSError) as exc:  # an interrupt while streaming arrives as pyarrow's OSError
        if fired.is_set():
            raise TimedOut(f"the query ran longer than {seconds:g} s and was interrupted (--timeout)") from exc
        raise
    finally:
        timer.cancel()


def _text(value: Any, null: str) -> str:
    if value is None:
        return null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _rows(batch: pa.RecordBatch) -> Iterator[tuple[Any, ...]]:
    # by position: a result may repeat a column name
    return zip(*(column.to_pylist() for column in batch.columns), strict=True)


def write_table(reader: pa.RecordBatchReader, out: TextIO, max_rows: int) -> int:
    """The first `max_rows` rows as an aligned table (numbers right-aligned), then a line counting
    them; the query stops once they are fetched. Returns the rows printed."""
    rows: list[list[str]] = []
    more = False
    for batch in reader:
        for row in _rows(batch):
            if len(rows) == max_rows:
                more = True
                break
            rows.append([_cut(_text(v, "NULL")) for v in row])
        if more:
            break
    names = reader.schema.names
    right = [pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in reader.schema.types]
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]

    def line(cells: list[str]) -> str:
        padded = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
        return " | ".join(padded).rstrip()

    out.write(line(names) + "\n")
    out.write("-+-".join("-" * w for w in widths) + "\n")
    for r in rows:
        out.write(line(r) + "\n")
    shown = f"({len(rows)} row{'' if len(rows) == 1 else 's'})"
    out.write(f"{shown[:-1]}; more not shown: raise --max-rows or use --csv)\n" if more else f"{shown}\n")
    return len(rows)


def _cut(text: str) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def write_csv(reader: pa.RecordBatchReader, out: TextIO) -> int:
    """Every row as CSV with a header (NULL as an empty field); returns the rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(reader.schema.names)
    n = 0
    for batch in reader:
        writer.writerows([_text(v, "") for v in row] for row in _rows(batch))
        n += batch.num_rows
    return n


def _sandbox_refusal(exc: BaseException) -> bool:
    """DuckDB refused to touch something outside what was registered (a file, a URL, an extension)."""
    return isinstance(exc, duckdb.PermissionException) or str(exc).startswith("Permission Error")


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"playcount sql: {message}", markup=False, highlight=False)
    return typer.Exit(code)


def _size(value: str) -> str:
    if not _SIZE.match(value.strip()):
        raise typer.BadParameter(f"{value!r} is not a size like 512MB or 2GB")
    return value.strip()


def sql(
    query: Annotated[
        str, typer.Argument(help='the SELECT, e.g. "SELECT listen_date, count(*) FROM events GROUP BY 1"')
    ],
    as_csv: Annotated[bool, typer.Option("--csv", help="print every row as CSV instead of a table")] = False,
    max_rows: Annotated[int, typer.Option(min=1, help="rows the table shows")] = 100,
    timeout: Annotated[float, typer.Option(min=0.001, help="seconds before it is interrupted")] = 60.0,
    memory: Annotated[str, typer.Option(callback=_size, help="DuckDB's memory limit")] = "1GB",
    threads: Annotated[int, typer.Option(min=1, help="DuckDB's threads")] = min(4, os.cpu_count() or 1),
) -> None:
    """Run one read-only SELECT over the lake (tables events, songs, users) with DuckDB.

    Runs one SELECT over the validated events (events, partitioned by listen_date) and the current
    metadata catalog (songs, users), read from the lake with pyarrow. Anything but one SELECT is
    refused (exit 2), and DuckDB can read nothing else: no files, URLs, extensions or settings.
    A failing or interrupted query exits 1. See docs/sql.md.
    """
    if duckdb is None:
        raise _fail("DuckDB is not installed here: pip install 'playcount-devstack[sql]'", 1)
    settings = load_settings()
    try:
        st = statement(query)
        with closing(connect(memory, threads)) as con:
            register(con, settings, st.query)
            with time_limit(con, timeout):
                reader = con.sql(st).to_arrow_reader(BATCH_ROWS)
                if as_csv:
                    write_csv(reader, sys.stdout)
                else:
                    write_table(reader, sys.stdout, max_rows)
    except Refused as exc:
        raise _fail(f"refused: {exc}", 2) from exc
    except (duckdb.Error, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if _sandbox_refusal(exc):
            raise _fail(f"refused: {first} (only the tables {', '.join(TABLES)} can be read)", 2) from exc
        raise _fail(first, 1) from exc
    except (TimedOut, ClientError, BotoCoreError) as exc:
        raise _fail(str(exc), 1) from exc
