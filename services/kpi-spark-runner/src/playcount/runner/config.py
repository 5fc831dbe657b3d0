"""Runner settings: the shared settings (SPARK_MASTER, SPARK_SHUFFLE_PARTITIONS, LAKE_READ_MODE, ...)."""

from playcount.core.config import Settings, load_settings

__all__ = ["Settings", "load_settings"]
