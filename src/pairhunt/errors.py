"""Errors pairhunt raises for bad user input, reported by the CLI without a traceback."""


class PairhuntError(ValueError):
    """A bad argument, config, file or model: the message says what and where."""
