"""One module per ``pairhunt`` subcommand, each with ``register(subparsers)`` and ``execute(args)``."""

from pairhunt.commands import generate, run

COMMANDS = (generate, run)
