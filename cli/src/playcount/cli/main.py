"""The `playcount` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np

from playcount.cli import dlq, generate, reconcile, replay, sql
from playcount.core import logs


def _generate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    songs, users, cat = generate.dataset(args.seed, args.tracks, args.users)
    (out / "songs.csv").write_bytes(generate.to_csv(songs))
    (out / "users.csv").write_bytes(generate.to_csv(users))
    rng = np.random.default_rng(args.seed + 1)
    start = dt.date.fromisoformat(args.start)
    dates = [start + dt.timedelta(days=i) for i in range(args.days)]
    for i in range(args.files):
        table = generate.streams_table(rng, cat, args.rows, dates)
        (out / f"streams-{i:04d}.csv").write_bytes(generate.to_csv(table))
    print(f"wrote songs.csv, users.csv and {args.files} stream files of {args.rows} rows to {out}")
    return 0


def _bootstrap(args: argparse.Namespace) -> int:
    from playcount.core.bootstrap import bootstrap
    from playcount.core.config import load_settings

    res = bootstrap(load_settings())
    print(f"bootstrapped bucket={res.bucket} table={res.table} queues={[q.name for q in res.queues]}")
    return 0


def _up(args: argparse.Namespace) -> int:
    from playcount.cli.up import up

    return up(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="playcount", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the embedded stack (emulator, bootstrap, four services)")
    up.add_argument("--demo", action="store_true", help="upload a generated data set and show the KPIs")
    up.add_argument("--seed", type=int, default=7)
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=4566, help="emulator port (LocalStack's default)")
    up.add_argument("--no-emulator", action="store_true", help="use AWS_ENDPOINT_URL / real AWS instead")
    up.add_argument("--exit-after-demo", action="store_true")
    up.add_argument("--demo-days", type=int, default=3)
    up.add_argument("--demo-files-per-day", type=int, default=3)
    up.add_argument("--demo-rows", type=int, default=5000, help="rows per demo stream file")
    up.add_argument("--log-dir", default=None, help="write service logs here instead of the terminal")
    up.set_defaults(func=_up)

    boot = sub.add_parser("bootstrap", help="create every AWS resource (idempotent)")
    boot.set_defaults(func=_bootstrap)

    gen = sub.add_parser("generate", help="write a realistic, seeded data set as CSV files")
    gen.add_argument("--out", default="data")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--tracks", type=int, default=2000)
    gen.add_argument("--users", type=int, default=1000)
    gen.add_argument("--files", type=int, default=4)
    gen.add_argument("--rows", type=int, default=10_000)
    gen.add_argument("--days", type=int, default=3)
    gen.add_argument("--start", default="2025-06-24")
    gen.set_defaults(func=_generate)

    dlq.add_parser(sub)
    replay.add_parser(sub)
    reconcile.add_parser(sub)
    sql.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.configure()
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
