"""`playcount replay-quarantine`: send quarantined unknown-id rows through the pipeline again."""

from __future__ import annotations

import argparse

from playcount.core.config import load_settings
from playcount.core.replay import replay_quarantine


def _replay(args: argparse.Namespace) -> int:
    result = replay_quarantine(load_settings())
    print(result.model_dump_json(indent=1))
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay-quarantine",
        help="re-judge rows quarantined for unknown track/user ids against current metadata",
        description=(
            "Rows quarantined as unknown_track_id / unknown_user_id whose ids the metadata now knows "
            "are uploaded again as a stream file under <streams>replayed/; each quarantine file is "
            "replayed at most once. Prints the counts as JSON."
        ),
    )
    p.set_defaults(func=_replay)
