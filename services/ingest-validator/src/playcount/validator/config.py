"""Validator settings: the shared settings (the validator adds no knobs of its own yet)."""

from playcount.core.config import Settings, load_settings

__all__ = ["Settings", "load_settings"]
