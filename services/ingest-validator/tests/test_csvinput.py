"""Reading a CSV body as a pure function over bytes (no emulator): header matching, line endings,
gzip, malformed records and the reasons a whole file is refused. (`test_streams.py` and
`tests/hostile/` send such files through S3 and the whole validator.)"""

from __future__ import annotations

import gzip
import io

import pyarrow as pa
import pytest

from playcount.validator.csvinput import FileRejected, open_csv

pytestmark = pytest.mark.fast

COLUMNS = ("user_id", "track_id", "listen_time")


def read(body: bytes, key: str = "f.csv") -> tuple[list[str], list[dict[str, str]], list[str]]:
    """The header, the rows (wanted columns only) and the raw malformed records of `body`."""
    stream = open_csv(io.BytesIO(body), key, COLUMNS, COLUMNS)
    rows: list[dict[str, str]] = []
    malformed: list[str] = []
    for batch in stream.batches:
        rows += pa.Table.from_batches([batch]).select(list(COLUMNS)).to_pylist()
        malformed += stream.drain_malformed()
    return stream.header, rows, malformed + stream.drain_malformed()


def refused(body: bytes, key: str = "f.csv") -> str:
    with pytest.raises(FileRejected) as caught:
        read(body, key)
    return caught.value.reason


def test_bom_crlf_and_header_matched_trimmed_case_insensitively_in_any_order():
    body = (
        "\ufeff Listen_Time ,EXTRA, USER_ID ,Track_ID\r\n2024-03-02 10:00:00,x,u1,t1\r\n2024-03-02 11:00:00,y,u2,t2\r\n"
    )
    header, rows, malformed = read(body.encode())
    assert header == ["listen_time", "extra", "user_id", "track_id"]
    assert rows == [
        {"user_id": "u1", "track_id": "t1", "listen_time": "2024-03-02 10:00:00"},
        {"user_id": "u2", "track_id": "t2", "listen_time": "2024-03-02 11:00:00"},
    ]
    assert malformed == []


def test_blank_lines_and_a_last_line_without_newline():
    _, rows, _ = read(b"user_id,track_id,listen_time\n\nu1,t1,2024-03-02 10:00:00\n\nu2,t2,2024-03-02 11:00:00")
    assert [r["user_id"] for r in rows] == ["u1", "u2"]


def test_values_are_kept_as_written_and_records_with_the_wrong_number_of_fields_are_set_aside():
    _, rows, malformed = read(b'user_id,track_id,listen_time\n u1 ,"t,1",=NOW()\nu1,t1\nu2,t2,x,extra\nu3,,\n')
    assert rows == [
        {"user_id": " u1 ", "track_id": "t,1", "listen_time": "=NOW()"},
        {"user_id": "u3", "track_id": "", "listen_time": ""},
    ]
    assert malformed == ["u1,t1", "u2,t2,x,extra"]


def test_a_gzip_body_is_read_when_the_key_ends_in_gz():
    body = gzip.compress(b"user_id,track_id,listen_time\nu1,t1,2024-03-05 10:00:00\nu2,t2,2024-03-05 10:00:00\n")
    _, rows, _ = read(body, "day.csv.GZ")
    assert len(rows) == 2


def test_a_header_with_no_rows_is_an_empty_file_not_a_refusal():
    assert read(b"user_id,track_id,listen_time\n") == (list(COLUMNS), [], [])


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        (b"user_id,track_id,listen_time\nu1,t1,2024-03-05 10:00:00\n", "day.csv.gz", "not_gzip"),
        (b"", "day.csv.gz", "not_gzip"),
        (
            gzip.compress(b"user_id,track_id,listen_time\n" + b"u1,t1,2024-03-05 10:00:00\n" * 5000)[:-200],
            "day.csv.gz",
            "corrupt_gzip",
        ),
        (b"", "f.csv", "empty_file"),
        (b"\n\n", "f.csv", "empty_file"),
        (b"user_id,listen_time\nu1,2024-03-05 10:00:00\n", "f.csv", "missing_columns"),
        (b"user_id,track_id,listen\x00_time\n", "f.csv", "not_text"),
        (b"user_id,track_id,listen_time\xff\n", "f.csv", "not_utf8"),
        (b'user_id,"track_id,listen_time\n', "f.csv", "not_csv"),
        (b"x" * ((1 << 20) + 1), "f.csv", "header_too_long"),
    ],
    ids=[
        "gz-plain-text",
        "gz-empty",
        "gz-truncated",
        "empty",
        "blank",
        "no-track-id",
        "nul",
        "latin-1",
        "open-quote",
        "no-line-break",
    ],
)
def test_a_file_that_cannot_be_read_is_refused_with_its_reason(body, key, reason):
    assert refused(body, key) == reason
