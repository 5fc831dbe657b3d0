"""The embedded AWS emulator: moto in server mode, as a child process on a loopback port.

`python -m playcount.devstack.emulator [moto_server options]` is moto's server with one fidelity
fix (`serialize_dynamodb`) and two cost fixes (`journal_transactions`, `query_one_partition`):
what DynamoDB does in time proportional to the items touched, moto did in time proportional
to the table, and the emulator serialises DynamoDB, so every other request waited for it.
`start` runs it.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
from typing import Any

from playcount.core import http

EMBEDDED_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """Child pre-exec hook: get SIGTERM if the parent dies, so no process outlives the stack."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start(host: str = "127.0.0.1", port: int = 4566, log: int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """Start `moto_server` and wait until it answers; raise if it does not within 20 s."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "playcount.devstack.emulator", "-H", host, "-p", str(port)],
        stdout=log,
        stderr=log,
        preexec_fn=die_with_parent,
    )
    url = f"http://{host}:{port}/moto-api/"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode} (is port {port} free?)")
        try:
            with http.get(url, timeout=1):
                return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"moto server did not answer on {host}:{port} within 20 s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serialize_dynamodb() -> None:
    """Make moto apply DynamoDB requests one at a time, so a conditional write is atomic.

    moto's threaded server evaluates a ConditionExpression and then writes, without a lock:
    two concurrent conditional writes to one item can both succeed (seen here in 4 of 60
    races of 8 writers). DynamoDB never allows that, and the writer's per-date lease and the
    ledger's counted-once states rely on it. DynamoDB handling is CPU-bound under the GIL
    anyway, so the lock costs little; other services (SQS long polls) are not serialized.
    """
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    call_action = DynamoHandler.call_action

    def one_at_a_time(self: DynamoHandler) -> object:
        with lock:
            return call_action(self)

    setattr(DynamoHandler, "call_action", one_at_a_time)  # noqa: B010


def journal_transactions() -> None:
    """Make a moto transaction back up the items it touches, not every table it touches.

    moto deep-copies each table named in a TransactWriteItems, once per action, so that it can
    put the copy back if an action fails: a 2-action transaction cost 7 ms with 100 items in
    the table, 56 ms with 2,000 and 304 ms with 10,000, against 5 ms for a put (the ledger
    marks every file this way, and DynamoDB requests are serialised). Here the tables are
    passed by reference and a journal of the touched items' previous values restores them
    when moto rolls back: the same all-or-nothing outcome, at the cost of the touched items.
    Requests are serialised (`serialize_dynamodb`), so nothing else writes in between. Both cost
    fixes patch moto 5.2.5's internals (pinned in uv.lock); `test_emulator.py` checks that they
    still behave as DynamoDB does after an upgrade.
    """
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class ByReference:
        """The `copy` module as moto's transaction sees it: a table is not copied."""

        @staticmethod
        def deepcopy(value: object, memo: dict[int, object] | None = None) -> object:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    transact = models.DynamoDBBackend.transact_write_items

    def journalled(self: models.DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        journal = []
        for action in transact_items:
            _, op = next(iter(action.items()))
            table = self.tables.get(op.get("TableName", ""))
            key = op.get("Key") or op.get("Item") or {}
            if table is None or table.hash_key_attr not in key:
                continue  # moto rejects it before any write
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
            before = table.get_item(hash_value, range_value)
            journal.append((table, hash_value, range_value, copy.deepcopy(before)))
        models.copy = ByReference  # type: ignore[assignment]
        try:
            transact(self, transact_items)
        except Exception:
            for table, hash_value, range_value, before in reversed(journal):
                table.delete_item(hash_value, range_value)
                if before is not None:
                    if range_value is None:
                        table.items[hash_value] = before  # type: ignore[assignment]  # moto's own line
                    else:
                        table.items[hash_value][range_value] = before
            raise
        finally:
            models.copy = copy

    setattr(models.DynamoDBBackend, "transact_write_items", journalled)  # noqa: B010


def query_one_partition() -> None:
    """Make a moto Query on a table's key read the partition it names, not the whole table.

    moto answers a Query on the base table by listing and sorting every item of the table, then
    keeping those of the partition: the API's days list, polled while a file flows, cost more
    as the table grew (`Table.query` was 15.6% of the emulator's samples in the throughput
    bench). Here `all_items` yields only that partition during the Query; moto's own
    filtering, ordering, paging and limits then run unchanged. Index queries are untouched.
    """
    from moto.dynamodb.models.table import Table

    query = Table.query

    def one_partition(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")  # moto passes it 8th
        if index_name or hash_key is None or not self.range_key_attr:
            return query(self, hash_key, *args, **kwargs)
        partition = list(self.items[hash_key].values()) if hash_key in self.items else []
        self.all_items = lambda: partition  # type: ignore[method-assign]
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    setattr(Table, "query", one_partition)  # noqa: B010


if __name__ == "__main__":
    import os

    from moto.server import main

    from playcount.core import logs

    # werkzeug's request lines and moto's warnings, rendered as the services' lines are
    logs.configure(os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOG_FORMAT", "console"), service="emulator")
    serialize_dynamodb()
    journal_transactions()
    query_one_partition()
    main()
