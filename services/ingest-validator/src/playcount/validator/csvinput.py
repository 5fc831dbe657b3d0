"""Open an uploaded CSV (plain or gzip) as a stream of all-string record batches, in bounded memory.

Header names are matched trimmed and case-insensitively; a UTF-8 BOM and CRLF are accepted.
Anything that is not decodable CSV text raises `FileRejected` with a readable reason.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv

BLOCK_SIZE = 8 << 20
MAX_HEADER_BYTES = 1 << 20
MAX_COLUMNS = 1000


class FileRejected(Exception):
    """The whole file is refused; `reason` is a stable code, `detail` says why in words."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class CsvStream:
    header: list[str]
    batches: Iterator[pa.RecordBatch]


def _decompressed(raw: io.BufferedIOBase | pa.NativeFile, key: str) -> pa.NativeFile | io.IOBase:
    if not key.lower().endswith(".gz"):
        return raw
    head = raw.read(2)
    if head != b"\x1f\x8b":
        raise FileRejected("not_gzip", "the key ends in .gz but the content is not gzip")
    return gzip.GzipFile(fileobj=io.BufferedReader(_Replay(head, raw), buffer_size=1 << 20))


def _read_header(stream: pa.NativeFile | io.IOBase) -> tuple[list[str], bytes]:
    """The normalised header and the raw bytes read so far (to be replayed into the parser)."""
    buf = b""
    while b"\n" not in buf:
        try:
            chunk = stream.read(64 << 10)
        except (OSError, EOFError, zlib.error) as exc:
            raise FileRejected("not_gzip", f"gzip stream is corrupt: {exc}") from exc
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_HEADER_BYTES:
            raise FileRejected("header_too_long", "no line break in the first 1 MiB: not a CSV header")
    if not buf.strip():
        raise FileRejected("empty_file", "the file has no header line")
    line = buf.split(b"\n", 1)[0].rstrip(b"\r")
    if b"\x00" in line:
        raise FileRejected("not_text", "the header contains NUL bytes: binary content")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRejected("not_utf8", f"the header is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        names = next(csv.reader([text]))
    except csv.Error as exc:
        raise FileRejected("not_csv", f"the header is not a CSV line: {exc}") from exc
    if len(names) > MAX_COLUMNS:
        raise FileRejected("too_many_columns", f"{len(names)} columns (at most {MAX_COLUMNS})")
    return [n.strip().lower() for n in names], buf


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        base = name or f"_col{i}"
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(base if n == 0 else f"{base}.{n}")
    return out


class _Replay(io.RawIOBase):
    """The bytes already consumed for the header, followed by the rest of the stream."""

    def __init__(self, first: bytes, rest: pa.NativeFile | io.IOBase) -> None:
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


def open_csv(raw: pa.NativeFile | io.IOBase, key: str, required: tuple[str, ...], wanted: tuple[str, ...]) -> CsvStream:
    """A streaming reader over `wanted` columns (all strings); `required` must be present."""
    stream = _decompressed(raw, key)
    header, consumed = _read_header(stream)
    missing = [c for c in required if c not in header]
    if missing:
        raise FileRejected("missing_columns", f"required column(s) {missing} not in header {header[:50]}")
    if consumed.startswith(codecs.BOM_UTF8):
        consumed = consumed[len(codecs.BOM_UTF8) :]
    names = _unique_names(header)
    include = [c for c in wanted if c in header]
    reader_input = pa.PythonFile(io.BufferedReader(_Replay(consumed, stream), buffer_size=1 << 20), mode="r")
    try:
        reader = pacsv.open_csv(
            reader_input,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK_SIZE),
            parse_options=pacsv.ParseOptions(newlines_in_values=False, invalid_row_handler=None),
            convert_options=pacsv.ConvertOptions(
                include_columns=include,
                column_types=dict.fromkeys(include, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise FileRejected("not_csv", f"cannot parse as CSV: {exc}") from exc
    return CsvStream(header=header, batches=_guarded(reader))


def _guarded(reader: pacsv.CSVStreamingReader) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            message = str(exc)
            reason = "not_utf8" if "UTF8" in message or "utf" in message.lower() else "not_csv"
            raise FileRejected(reason, f"cannot parse as CSV: {message[:300]}") from exc
        except (OSError, EOFError, zlib.error) as exc:
            raise FileRejected("not_gzip", f"stream is corrupt: {exc}") from exc
        yield batch
