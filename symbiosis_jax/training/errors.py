"""The error type for bad input found before a run starts."""


class ConfigError(ValueError):
    """A bad config, flag, workdir or ``--resume`` request, found before anything compiles.

    A ``ValueError`` (callers may catch either); ``experiments/train.py`` prints its
    message as one ``error: ...`` line instead of a traceback, since the message, not
    the stack, says what to change.
    """
