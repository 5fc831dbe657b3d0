"""Every service's settings in one object: the embedded stack and the tests hand it to all four.

A service reads only its own class (`ValidatorSettings`, `RunnerSettings`, `WriterSettings`,
`ApiSettings`); the stack, which starts all of them, needs the union to pass each its knobs.
"""

from __future__ import annotations

from playcount.api.config import ApiSettings
from playcount.runner.config import RunnerSettings
from playcount.validator.config import ValidatorSettings
from playcount.writer.config import WriterSettings


class StackSettings(ValidatorSettings, RunnerSettings, WriterSettings, ApiSettings):
    """The shared settings and every service's own."""


__all__ = ["StackSettings"]
