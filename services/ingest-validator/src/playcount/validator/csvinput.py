"""Open an uploaded CSV (plain or gzip) as a stream of all-string record batches, in bounded memory.

Header names are matched trimmed and case-insensitively; a UTF-8 BOM and CRLF are accepted.
Anything that is not decodable CSV text raises `FileRejected` with a readable reason.
A record with the wrong number of fields is not fatal: its raw text is collected in
`CsvStream.malformed` (drained by the caller after each batch) and the rest of the file is read.

Memory is bounded by the parser's block size (a few blocks are in flight at once), which is
also the longest line accepted: a longer line rejects the file (`line_too_long`).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

BLOCK_SIZE = 1 << 20
MAX_HEADER_BYTES = 1 << 20
MAX_COLUMNS = 10_000
MAX_PENDING_MALFORMED_BYTES = 32 << 20
_READ_SIZE = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"


class FileRejected(Exception):
    """The whole file is refused; `reason` is a stable code, `detail` says why in words."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class _Malformed:
    """Raw text of records with the wrong number of fields, collected by the parser's callback."""

    gzip: bool
    rows: list[str] = field(default_factory=list)
    pending_bytes: int = 0
    overflow: bool = False

    def __call__(self, row: Any) -> str:
        self.rows.append(row.text)
        self.pending_bytes += len(row.text)
        if self.pending_bytes > MAX_PENDING_MALFORMED_BYTES:
            # no well-formed record for tens of MiB: this is not CSV of the expected shape
            self.overflow = True
            return "error"
        return "skip"

    def drain(self) -> list[str]:
        rows, self.rows, self.pending_bytes = self.rows, [], 0
        return rows


@dataclass
class CsvStream:
    header: list[str]
    batches: Iterator[pa.RecordBatch]
    malformed: _Malformed

    def drain_malformed(self) -> list[str]:
        """Raw text of the malformed records met since the last call (call after each batch)."""
        return self.malformed.drain()


class _Replay(io.RawIOBase):
    """The bytes already consumed, followed by the rest of the stream."""

    def __init__(self, first: bytes, rest: Any) -> None:
        self._first = first
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._first:
            n = min(len(b), len(self._first))
            b[:n] = self._first[:n]
            self._first = self._first[n:]
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)


def _as_native(first: bytes, rest: Any) -> pa.NativeFile:
    return pa.PythonFile(io.BufferedReader(_Replay(first, rest), buffer_size=_READ_SIZE), mode="r")


def _decompressed(raw: Any, key: str) -> Any:
    if not key.lower().endswith(".gz"):
        return raw
    head = raw.read(2)
    if head != GZIP_MAGIC:
        raise FileRejected("not_gzip", "the key ends in .gz but the content is not gzip")
    return pa.CompressedInputStream(_as_native(head, raw), "gzip")


def _corrupt_gzip(exc: OSError) -> FileRejected:
    return FileRejected("corrupt_gzip", f"the gzip stream is corrupt or truncated: {str(exc)[:200]}")


def _is_gzip_error(exc: OSError) -> bool:
    text = str(exc).lower()
    return "zlib" in text or "compressed" in text or "gzip" in text


def _read_header(stream: Any, gz: bool) -> tuple[list[str], bytes]:
    """The normalised header names and the bytes read after the header line."""
    buf = b""
    while b"\n" not in buf:
        try:
            chunk = stream.read(64 << 10)
        except OSError as exc:
            if gz and _is_gzip_error(exc):
                raise _corrupt_gzip(exc) from exc
            raise
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_HEADER_BYTES:
            raise FileRejected("header_too_long", "no line break in the first 1 MiB: not a CSV header")
    if buf.startswith(codecs.BOM_UTF8):
        buf = buf[len(codecs.BOM_UTF8) :]
    if not buf.strip():
        raise FileRejected("empty_file", "the file has no header line")
    line, _, rest = buf.partition(b"\n")
    line = line.rstrip(b"\r")
    if b"\x00" in line:
        raise FileRejected("not_text", "the header contains NUL bytes: binary content")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRejected("not_utf8", f"the header is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        names = next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise FileRejected("not_csv", f"the header is not a CSV line: {exc}") from exc
    if len(names) > MAX_COLUMNS:
        raise FileRejected("too_many_columns", f"{len(names)} columns (at most {MAX_COLUMNS})")
    return [n.strip().lower() for n in names], rest


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        base = name or f"_col{i}"
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(base if n == 0 else f"{base}.{n}")
    return out


def _rejection(exc: pa.ArrowInvalid, malformed: _Malformed) -> FileRejected:
    message = str(exc)
    if malformed.overflow:
        return FileRejected(
            "not_csv", f"more than {MAX_PENDING_MALFORMED_BYTES >> 20} MiB of records with the wrong number of fields"
        )
    if "straddling" in message or "straddles" in message:
        return FileRejected("line_too_long", f"a line is longer than {BLOCK_SIZE >> 20} MiB")
    if "UTF8" in message or "utf-8" in message.lower() or "\ufffd" in message:
        return FileRejected("not_utf8", f"the content is not UTF-8 text: {message[:300]}")
    return FileRejected("not_csv", f"cannot parse as CSV: {message[:300]}")


def open_csv(
    raw: Any,
    key: str,
    required: tuple[str, ...],
    wanted: tuple[str, ...],
    *,
    newlines_in_values: bool = False,
) -> CsvStream:
    """A streaming reader over the `wanted` columns (all strings) of a readable binary stream.

    `required` columns must be in the header; `newlines_in_values` allows quoted line breaks
    (slower; metadata needs it, stream files never have them).
    """
    gz = key.lower().endswith(".gz")
    stream = _decompressed(raw, key)
    header, rest = _read_header(stream, gz)
    missing = [c for c in required if c not in header]
    if missing:
        raise FileRejected("missing_columns", f"required column(s) {missing} not in header {header[:50]}")
    malformed = _Malformed(gzip=gz)
    if not rest:
        rest = stream.read(_READ_SIZE)
        if not rest:
            return CsvStream(header=header, batches=iter(()), malformed=malformed)
    names = _unique_names(header)
    include = [c for c in wanted if c in header]
    try:
        reader = pacsv.open_csv(
            _as_native(rest, stream),
            read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_SIZE),
            parse_options=pacsv.ParseOptions(newlines_in_values=newlines_in_values, invalid_row_handler=malformed),
            convert_options=pacsv.ConvertOptions(
                include_columns=include,
                column_types=dict.fromkeys(include, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            return CsvStream(header=header, batches=iter(()), malformed=malformed)
        raise _rejection(exc, malformed) from exc
    except OSError as exc:
        if gz and _is_gzip_error(exc):
            raise _corrupt_gzip(exc) from exc
        raise
    return CsvStream(header=header, batches=_guarded(reader, malformed), malformed=malformed)


def _guarded(reader: pacsv.CSVStreamingReader, malformed: _Malformed) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise _rejection(exc, malformed) from exc
        except OSError as exc:
            if malformed.gzip and _is_gzip_error(exc):
                raise _corrupt_gzip(exc) from exc
            raise
        yield batch
