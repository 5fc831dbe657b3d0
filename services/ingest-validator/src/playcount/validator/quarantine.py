"""Quarantined rows of one file, streamed to a local CSV: their values, line, reason and raw text.

Every table written is conformed to one schema per file (`line`, the file's columns as
strings, `reason`, `raw`), so rows judged by different rules land in the same CSV. `raw` is
only set for records that could not be split into fields (`malformed_row`).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

MALFORMED = "malformed_row"


def schema_for(columns: tuple[str, ...]) -> pa.Schema:
    return pa.schema(
        [("line", pa.int64()), *((c, pa.string()) for c in columns), ("reason", pa.string()), ("raw", pa.string())]
    )


class Quarantine:
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self.counts: dict[str, int] = {}
        self._writer: pacsv.CSVWriter | None = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._writer = pacsv.CSVWriter(str(self.path), self.schema)
        counts = pc.value_counts(table["reason"].combine_chunks())
        for reason, count in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True):
            self.counts[reason] = self.counts.get(reason, 0) + count
        self._writer.write_table(self._conform(table))
        self.rows += table.num_rows

    def write_malformed(self, raw_rows: list[str]) -> int:
        """Quarantine records that could not be split into fields; returns how many."""
        if raw_rows:
            self.write(
                pa.table({"raw": pa.array(raw_rows, pa.string()), "reason": pa.repeat(MALFORMED, len(raw_rows))})
            )
        return len(raw_rows)

    def _conform(self, table: pa.Table) -> pa.Table:
        names = set(table.schema.names)
        return pa.table(
            [
                pc.cast(table[f.name], f.type) if f.name in names else pa.nulls(table.num_rows, f.type)
                for f in self.schema
            ],
            schema=self.schema,
        )

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
