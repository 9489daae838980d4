"""One module per ``pairhunt`` subcommand, each with ``register(subparsers)`` and ``execute(args)``."""

from pairhunt.commands import evaluate, generate, run

COMMANDS = (generate, run, evaluate)
