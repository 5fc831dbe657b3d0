"""API settings: the shared settings (API_HOST, API_PORT, API_KEY, API_READ_KEY, API_CACHE_SECONDS, ...)."""

from playcount.core.config import Settings, load_settings

__all__ = ["Settings", "load_settings"]
