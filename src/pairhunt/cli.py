"""The ``pairhunt`` command line: one subcommand per job, each in its own small function."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pairhunt._version import __version__
from pairhunt.commands import COMMANDS
from pairhunt.errors import PairhuntError
from pairhunt.interrupt import RunInterrupted


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pairhunt",
        description="Reconstruct pair-produced heavy particles with ONNX assignment models and hunt bumps.",
    )
    parser.add_argument("--version", action="version", version=f"pairhunt {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except PairhuntError as error:
        parser.exit(2, f"pairhunt {args.command}: error: {error}\n")
    except RunInterrupted as stopped:
        print(f"pairhunt {args.command}: {stopped}", file=sys.stderr)
        return stopped.exit_code


if __name__ == "__main__":
    sys.exit(main())
