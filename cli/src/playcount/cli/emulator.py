"""The embedded AWS emulator: moto in server mode, as a child process on a loopback port.

`python -m playcount.cli.emulator [moto_server options]` is moto's server with one fidelity
fix (`serialize_dynamodb`); `start` runs it.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error

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
        [sys.executable, "-m", "playcount.cli.emulator", "-H", host, "-p", str(port)],
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


if __name__ == "__main__":
    from moto.server import main

    serialize_dynamodb()
    main()
