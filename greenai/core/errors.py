"""The one exception tree of greenai. Foreign exceptions are translated once, at the edge
that met them, with ``raise ... from exc``::

    GreenAIError
    ├── ConfigError          bad settings, flags or input files (names file, line, field)
    │   └── InputError       a data file (trace, workload) that cannot be read as promised
    ├── ProviderError        an intensity source failed or answered nonsense
    │   └── NoSignalError    no source could answer at all
    ├── ExecutorError        a command could not be started, polled or cancelled
    ├── MeterUnavailable     a meter cannot measure on this machine
    ├── InvalidTransition    a job state change that its current state forbids
    └── NotFound             an id that is not in the store
"""

from __future__ import annotations


class GreenAIError(Exception):
    """Root of every error greenai raises on purpose."""


class ConfigError(GreenAIError):
    """Settings, flags or files that cannot be used as given."""


class InputError(ConfigError):
    """A data file that breaks its format; the message names file, line and problem."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


class ProviderError(GreenAIError):
    """An intensity source failed; ``source`` names it."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.detail = message  # without the source, for a wrapper that names it again


class NoSignalError(ProviderError):
    """Every configured source failed and no cached forecast covers now."""


class ExecutorError(GreenAIError):
    """A command could not be started, polled or cancelled."""


class MeterUnavailable(GreenAIError):
    """This meter cannot measure here (no GPU, no permission, no library)."""


class InvalidTransition(GreenAIError):
    """A job state change refused because the job is no longer in the expected state."""


class NotFound(GreenAIError):
    """An id that the store does not hold."""
