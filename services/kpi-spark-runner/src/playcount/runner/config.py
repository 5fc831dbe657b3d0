"""Runner settings: the shared settings (SPARK_MASTER, SPARK_DRIVER_MEMORY, LAKE_READ_MODE,
RUNNER_BATCH_WINDOW_SECONDS, RUNNER_MAX_BATCH, RUNNER_MAX_HOLD_SECONDS, RUNNER_WARMUP_RUNS,
RUNNER_MIRROR_DATES, WORK_DIR, ...)."""

from playcount.core.config import Settings, load_settings

__all__ = ["Settings", "load_settings"]
