"""The one exception type for mistakes a user can fix (bad paths, flags, data)."""


class StyleBoostError(Exception):
    """A user-fixable problem; the CLI prints it as one line, without a traceback."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
