"""One module per ``pairhunt`` subcommand, each with ``register(subparsers)`` and ``execute(args)``."""

from pairhunt.commands import evaluate, export, generate, run, train

COMMANDS = (generate, run, evaluate, train, export)
