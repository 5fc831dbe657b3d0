"""`playcount replay-quarantine`: send quarantined unknown-id rows through the pipeline again."""

from __future__ import annotations

import typer

from playcount.cli.console import err, mover, out, progress
from playcount.core.config import load_settings
from playcount.ops.replay import ReplayUnavailable, replay_quarantine


def replay() -> None:
    """Re-judge rows quarantined for unknown track/user ids against current metadata.

    Rows quarantined as unknown_track_id / unknown_user_id whose ids the metadata now knows are
    uploaded again as a stream file under <streams>replayed/; each quarantine file is replayed
    at most once. Prints the counts as JSON.
    """
    try:
        with progress() as bar:
            task = bar.add_task("quarantine files read", total=None)
            result = replay_quarantine(load_settings(), progress=mover(bar, task))
    except ReplayUnavailable as exc:
        err.print(
            f"playcount replay-quarantine: {exc} ('playcount-cli[replay]'), "
            "or ask the API (POST /ops/quarantine/replay)",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1) from exc
    out.print_json(result.model_dump_json())
