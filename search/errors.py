"""The root exception of ``search``."""


class UsageError(Exception):
    """A mistake in what the user asked for; the CLI prints it as one line and exits 2."""
