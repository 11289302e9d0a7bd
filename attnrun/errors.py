"""The errors attnrun reports to a user as one line (exit code 2) instead of a traceback."""

from __future__ import annotations


class AttnrunError(Exception):
    """Base class of every error caused by the user's input, configuration or environment.

    The CLI prints ``attnrun: error: <message>`` on one line and exits with code 2; ``--debug``
    shows the traceback instead.
    """


class ConfigError(AttnrunError, ValueError):
    """An option or override is unknown, of the wrong type, or out of range.

    Also a ``ValueError``, so library callers (``attnrun.nadaraya_watson(...)``) can catch the usual
    exception type.
    """


class DataError(AttnrunError, ValueError):
    """A data file is missing, unreadable or malformed; the message names ``file:line``."""


class TrainingError(AttnrunError):
    """Training cannot go on (a NaN or inf loss, CUDA out of memory)."""
