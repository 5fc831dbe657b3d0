"""`playcount sql`: exact answers over a lake written by the real writers on the emulator, and the sandbox.

The lake: two days of events in three files, a song catalog whose upsert supersedes one row
(t2 rock -> metal) and adds t4, and a user catalog.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from playcount.core import aws, lake, parquet, snapshots
from playcount.core.config import Settings
from playcount.devstack import sql
from playcount.devstack.commands import app as dev_commands

Run = Callable[..., tuple[int, str, str]]
DAY1, DAY2 = dt.date(2025, 6, 24), dt.date(2025, 6, 25)
EVENTS = {  # file id -> (date, [(user, track, hour)])
    "f-a": (DAY1, [("u1", "t1", 8), ("u1", "t2", 9), ("u2", "t1", 10)]),
    "f-b": (DAY1, [("u2", "t3", 23)]),
    "f-c": (DAY2, [("u1", "t2", 0), ("u2", "t4", 12)]),
}
SONGS = [("t1", "One", "pop"), ("t2", "Two", "rock"), ("t3", "Three", "jazz")]
SONGS_FIX = [("t2", "Two (remaster)", "metal"), ("t4", "Four", "pop")]  # an upsert: supersedes t2, adds t4
PER_GENRE = (
    "SELECT s.track_genre, count(*) AS plays FROM events e JOIN songs s USING (track_id) GROUP BY 1 ORDER BY 2 DESC, 1"
)


def _songs(rows: list[tuple[str, str, str]]) -> pa.Table:
    ids, names, genres = zip(*rows, strict=True)
    return pa.table({"track_id": ids, "track_name": names, "artists": ["A"] * len(ids), "track_genre": genres})


@pytest.fixture
def lake_with_data(settings: Settings) -> Settings:
    s3, fs = aws.client(settings, "s3"), parquet.filesystem(settings)
    for fid, (day, rows) in EVENTS.items():
        table = pa.table(
            {
                "user_id": [r[0] for r in rows],
                "track_id": [r[1] for r in rows],
                "listen_time": [dt.datetime.combine(day, dt.time(r[2]), dt.UTC) for r in rows],
            },
            schema=parquet.EVENTS,
        )
        pq.write_table(table, lake.path(settings, lake.events_key(settings, day, fid)), filesystem=fs)
    manifest = snapshots.replace_catalog(settings, s3, fs, "songs", _songs(SONGS))
    snapshots.upsert(settings, s3, fs, manifest, "fix", _songs(SONGS_FIX))
    users = pa.table({"user_id": ["u1", "u2"], "user_age": [30, 41], "user_country": ["US", "GB"]})
    snapshots.replace_catalog(settings, s3, fs, "users", users)
    return settings


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Run:
    """`playcount sql ARGS...` in this process, configured by the environment as from a shell (the
    command's own logging set-up is left out: it would bind the logs to this test's captured stderr)."""
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env

    def playcount_sql(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(dev_commands, ["sql", *args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    return playcount_sql


def test_counts_per_date_as_an_aligned_table(lake_with_data: Settings, run: Run) -> None:
    code, out, err = run("SELECT listen_date, count(*) AS plays FROM events GROUP BY ALL ORDER BY listen_date")
    assert (code, err) == (0, "")
    assert out == (
        "listen_date | plays\n"
        "------------+------\n"
        "2025-06-24  |     4\n"
        "2025-06-25  |     2\n"
        "(2 rows)\n"
    )  # fmt: skip


def test_plays_per_genre_join_the_current_catalog(lake_with_data: Settings, run: Run) -> None:
    # t2's plays count as metal (its newest row), none as rock; t4 exists only in the upsert
    code, out, _ = run("--csv", PER_GENRE)
    assert code == 0
    assert out == "track_genre,plays\npop,3\nmetal,2\njazz,1\n"


def test_the_newest_song_row_wins_and_seq_is_not_shown(lake_with_data: Settings, run: Run) -> None:
    code, out, _ = run("--csv", "SELECT * FROM songs ORDER BY track_id")
    assert code == 0
    assert out.splitlines() == [
        ",".join(parquet.SONGS_SNAPSHOT.names),
        "t1,One,A,pop,,",
        "t2,Two (remaster),A,metal,,",
        "t3,Three,A,jazz,,",
        "t4,Four,A,pop,,",
    ]
    assert run("SELECT _seq FROM songs")[0] == 1  # a binder error: no such column
    code, out, _ = run("--csv", "SELECT user_id, user_age, user_country FROM users ORDER BY 1")
    assert (code, out) == (0, "user_id,user_age,user_country\nu1,30,US\nu2,41,GB\n")


def test_events_carry_their_columns_and_partition_date_in_utc(lake_with_data: Settings, run: Run) -> None:
    code, out, _ = run("--csv", "SELECT * FROM events WHERE listen_date = '2025-06-25' ORDER BY listen_time")
    assert code == 0
    assert out.splitlines() == [
        "user_id,track_id,listen_time,listen_date",
        "u1,t2,2025-06-25 00:00:00+00:00,2025-06-25",
        "u2,t4,2025-06-25 12:00:00+00:00,2025-06-25",
    ]


def test_the_table_shows_max_rows_and_says_more_were_cut(lake_with_data: Settings, run: Run) -> None:
    code, out, _ = run("--max-rows", "2", "SELECT user_id, track_id FROM events ORDER BY listen_time")
    assert code == 0
    assert out.splitlines()[2:] == [
        "u1      | t1",
        "u1      | t2",
        "(2 rows; more not shown: raise --max-rows or use --csv)",
    ]


def test_an_empty_lake_has_empty_tables(run: Run) -> None:
    code, out, _ = run("--csv", "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM songs) AS songs, "
                       "(SELECT count(*) FROM users) AS users")  # fmt: skip
    assert code == 0 and out.splitlines()[1] == "0,0,0"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("COPY (SELECT 1) TO '{tmp}/out.csv'", "this is COPY"),
        ("ATTACH '{tmp}/other.db' AS other", "this is ATTACH"),
        ("INSTALL httpfs", "this is LOAD: INSTALL httpfs"),
        ("LOAD httpfs", "this is LOAD"),
        ("SET memory_limit = '64GB'", "this is SET"),
        ("PRAGMA enable_external_access", "this is PRAGMA"),
        ("CREATE TABLE t AS SELECT 1", "this is CREATE"),
        ("EXPLAIN ANALYZE SELECT 1", "this is EXPLAIN"),
        ("SELECT 1; SELECT 2", "exactly one statement can run, got 2"),
        ("", "exactly one statement can run, got 0"),
        ("SELECT * FROM read_csv('/etc/passwd')", 'Cannot access file "/etc/passwd"'),
        ("SELECT * FROM read_parquet('{tmp}/*.parquet')", "file system operations are disabled"),
        ("SELECT * FROM 'https://example.com/x.parquet'", "file system operations are disabled"),
    ],
)
def test_anything_but_one_select_over_the_lake_is_refused(run: Run, tmp_path: Path, query: str, says: str) -> None:
    (tmp_path / "x.parquet").write_bytes(b"")
    code, out, err = run(query.format(tmp=tmp_path))
    assert (code, out) == (2, "")
    assert err.startswith("playcount sql: refused: ") and says in err
    assert err.count("\n") == 1, err  # one line, no traceback
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


def test_the_connection_itself_refuses_what_the_statement_check_would(tmp_path: Path) -> None:
    """The second layer alone: a statement that got past the check still reaches nothing outside."""
    con = sql.connect("256MB", 1)
    target = tmp_path / "out.csv"
    for statement in [
        f"COPY (SELECT 1) TO '{target}'",
        f"ATTACH '{tmp_path / 'x.db'}'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SET memory_limit = '64GB'",
        "SET enable_external_access = true",
        "RESET lock_configuration",
    ]:
        with pytest.raises(duckdb.Error):
            con.execute(statement)
    assert not list(tmp_path.iterdir())
    settings = con.sql("SELECT name, value FROM duckdb_settings() WHERE name IN ('memory_limit', 'threads')")
    assert dict(settings.fetchall()) == {"memory_limit": "244.1 MiB", "threads": "1"}


def test_a_syntax_error_or_a_missing_column_fails_in_one_line(run: Run) -> None:
    code, _, err = run("SELEC 1")
    assert code == 1 and err.startswith("playcount sql: Parser Error: syntax error") and err.count("\n") == 1
    code, _, err = run("SELECT nope FROM songs")
    assert code == 1 and err.startswith("playcount sql: Binder Error:") and err.count("\n") == 1


def test_a_query_past_its_time_limit_is_interrupted(run: Run) -> None:
    started = time.monotonic()
    code, out, err = run("--timeout", "1", "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b")
    assert time.monotonic() - started < 10
    assert (code, out) == (1, "")
    assert err == "playcount sql: the query ran longer than 1 s and was interrupted (--timeout)\n"


def test_a_query_past_its_memory_limit_fails(run: Run) -> None:
    code, _, err = run("--memory", "64MB", "SELECT list(range) FROM range(50000000)")
    assert code == 1 and err.startswith("playcount sql: Out of Memory Error")


def test_the_installed_command_runs_a_query_and_refuses_a_second_statement(lake_with_data: Settings) -> None:
    exe = Path(sys.executable).parent / "playcount"
    env = {**os.environ, **lake_with_data.to_env()}
    done = subprocess.run([exe, "sql", "--csv", PER_GENRE], env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "track_genre,plays\npop,3\nmetal,2\njazz,1\n"), done.stderr
    done = subprocess.run([exe, "sql", "SELECT 1; SELECT 2"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "playcount sql: refused: exactly one statement can run, got 2\n"


def test_a_streamed_result_is_interrupted_too(lake_with_data: Settings) -> None:
    """While rows are being written out (the interrupt then reaches the arrow reader, not DuckDB's call)."""
    exe = Path(sys.executable).parent / "playcount"
    env = {**os.environ, **lake_with_data.to_env()}
    query = "SELECT a.range, b.range FROM range(100000) a, range(100000) b"
    done = subprocess.run(
        [exe, "sql", "--csv", "--timeout", "1", query],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr == "playcount sql: the query ran longer than 1 s and was interrupted (--timeout)\n"


def test_a_table_the_query_does_not_name_is_missing_not_empty(lake_with_data: Settings, run: Run) -> None:
    """Only the tables the text names are opened; one reached by other means fails loudly."""
    code, _, err = run("SELECT count(*) FROM query_table('song' || 's')")
    assert code == 1 and err == "playcount sql: Catalog Error: Table with name songs does not exist!\n"
