"""The ``pairhunt`` command line: one subcommand per job, each in its own small function."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pairhunt._version import __version__
from pairhunt.errors import PairhuntError


def _print_summary(title: str, summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        table.add_row(key, str(value))
    Console().print(table)


def _run_generate(args: argparse.Namespace) -> int:
    from pairhunt.generate import Request, generate, make_sample

    sample = make_sample(args.sample, mass=args.mass, mchi=args.mchi, pthat_min=args.pthat_min)
    request = Request(sample, args.events, seed=args.seed, block_size=args.block_size)
    summary = generate(request, args.output, workers=args.workers, progress=not args.no_progress)
    _print_summary(f"pairhunt generate {args.sample}", summary)
    return 0


def _add_generate(subparsers) -> None:
    from pairhunt.generate.samples import SAMPLE_NAMES

    parser = subparsers.add_parser(
        "generate",
        help="generate a Pythia8 sample into a NanoAOD-like ROOT file",
        description=(
            "Pythia8 at 13 TeV -> visible particles -> anti-kT R=0.4 jets with smearing and "
            "b-tagging -> NanoAOD-like ROOT file with truth labels (Jet_truthParent, "
            "Jet_truthProduct). A summary is printed and written next to the file."
        ),
    )
    parser.add_argument("sample", choices=SAMPLE_NAMES, help="process to generate")
    parser.add_argument("-n", "--events", type=int, default=1000, help="number of events (default 1000)")
    parser.add_argument("-o", "--output", required=True, help="output ROOT file")
    parser.add_argument("--seed", type=int, default=1, help="random seed: same seed, same file (default 1)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--mass", type=float, default=1500.0, help="gluino mass in GeV (default 1500)")
    parser.add_argument("--mchi", type=float, default=500.0, help="neutralino mass in GeV, cascade only (default 500)")
    parser.add_argument("--pthat-min", type=float, default=250.0, help="QCD pTHat minimum in GeV (default 250)")
    parser.add_argument(
        "--block-size", type=int, default=1000, help="events per Pythia instance; part of the seed (default 1000)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_generate)


SUBCOMMANDS: tuple[Callable, ...] = (_add_generate,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pairhunt",
        description="Reconstruct pair-produced heavy particles with ONNX assignment models and hunt bumps.",
    )
    parser.add_argument("--version", action="version", version=f"pairhunt {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except PairhuntError as error:
        parser.exit(2, f"pairhunt {args.command}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
