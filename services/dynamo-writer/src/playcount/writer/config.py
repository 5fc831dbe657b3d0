"""Writer settings: the shared settings (the lease below is the writer's only knob)."""

from playcount.core.config import Settings, load_settings

LOCK_LEASE_SECONDS = 60
LOCK_WAIT_SECONDS = 10.0

__all__ = ["LOCK_LEASE_SECONDS", "LOCK_WAIT_SECONDS", "Settings", "load_settings"]
