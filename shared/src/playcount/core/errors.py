"""The few exceptions Playcount raises across service boundaries."""


class PlaycountError(Exception):
    """Base class for Playcount errors."""


class PoisonMessage(PlaycountError):
    """A message that can never succeed as it is (bad body): retry at once so it reaches the DLQ."""


class TransientError(PlaycountError):
    """Work that may succeed later (a dependency is down): retry after a backoff."""


class StaleResult(PlaycountError):
    """A result older than what is already stored: drop it, it must not overwrite newer data."""
