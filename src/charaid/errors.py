"""User-facing errors: reported as one clear line, never as a traceback."""


class CharaidError(Exception):
    """Bad input or configuration a user can fix; the message says what, where and what to do."""
