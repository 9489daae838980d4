"""One module per ``pairhunt`` subcommand, each with ``register(subparsers)`` and ``execute(args)``."""

from pairhunt.commands import anomaly, bumphunt, characterize, demo, ensemble, evaluate, export, generate, recalibrate, run, train

COMMANDS = (demo, generate, run, evaluate, bumphunt, anomaly, characterize, train, export, recalibrate, ensemble)
