"""The one exception type for mistakes a user can fix (bad paths, flags, data)."""


class StyleBoostError(Exception):
    """A user-fixable problem; the CLI prints it as one line, without a traceback."""
