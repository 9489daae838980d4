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


def _run_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pairhunt.methods import DEFAULT_METHODS, make_method
    from pairhunt.outputs import write_run
    from pairhunt.processors import PairProcessor
    from pairhunt.runner import load_fileset, run_fileset
    from pairhunt.topology import load_topology

    topology = load_topology(args.topology)
    names = args.method or DEFAULT_METHODS.get(topology.name, ("chi2",))
    outdir = Path(args.output)
    proc = PairProcessor(topology, [make_method(n) for n in names], output_dir=None if args.no_events else outdir)
    result = run_fileset(
        load_fileset(args.fileset),
        proc,
        executor=args.executor,
        workers=args.workers,
        scheduler=args.scheduler,
        chunksize=args.chunksize,
        maxchunks=args.maxchunks,
        skipbadfiles=not args.no_skipbadfiles,
        progress=not args.no_progress,
    )
    summary = {
        "topology": topology.name,
        "methods": list(names),
        "executor": args.executor,
        "workers": args.workers,
        "chunksize": args.chunksize,
        "maxchunks": args.maxchunks,
        "events": result.events,
        "wall_time_s": round(result.seconds, 3),
        "events_per_s": round(result.events / result.seconds, 1) if result.seconds > 0 else None,
        "cutflow": result.output["cutflow"],
        "files": result.report.as_dict(),
        "timing_s": result.output["timing"],
    }
    paths = write_run(result.output, summary, outdir)
    _print_cutflow(result.output["cutflow"])
    for filename, reason in result.report.skipped.items():
        print(f"skipped {filename}: {reason}", file=sys.stderr)
    print(f"{result.events} events in {result.seconds:.1f} s; wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _print_cutflow(cutflow: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="cutflow")
    table.add_column("dataset")
    table.add_column("step")
    table.add_column("events", justify="right")
    table.add_column("sum of weights", justify="right")
    for dataset, flow in cutflow.items():
        for step, count in flow["events"].items():
            table.add_row(dataset, step, str(count), f"{flow['sumw'][step]:.6g}")
    Console().print(table)


def _add_run(subparsers) -> None:
    from pairhunt.runner import EXECUTORS

    parser = subparsers.add_parser(
        "run",
        help="run the pairhunt processor over a fileset with coffea's Runner",
        description=(
            "Select jets, assign them to parents with each method, and fill histograms, through "
            "coffea's processor.Runner. Writes OUTDIR/hists/hists.coffea, OUTDIR/hists/hists.root, "
            "per-event parquet files under OUTDIR/events/DATASET/, and OUTDIR/summary.json."
        ),
    )
    parser.add_argument("fileset", help="fileset JSON in coffea's form: {dataset: [files]} or {dataset: {files: {file: tree}}}")
    parser.add_argument("-o", "--output", required=True, help="output directory")
    parser.add_argument("--topology", default="ttbar_allhad", help="shipped topology name or YAML file (default ttbar_allhad)")
    parser.add_argument(
        "--method", action="append", help="assignment method, repeatable (default: chi2 for ttbar, mass_asymmetry for pairs)"
    )
    parser.add_argument("--executor", choices=EXECUTORS, default="iterative", help="coffea executor (default iterative)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for futures/dask (default 2)")
    parser.add_argument("--scheduler", help="address of an existing Dask scheduler (analysis facility)")
    parser.add_argument("--chunksize", type=int, default=100_000, help="events per chunk (default 100000)")
    parser.add_argument("--maxchunks", type=int, help="at most this many chunks per dataset")
    parser.add_argument("--no-skipbadfiles", action="store_true", help="stop at the first unreadable file")
    parser.add_argument("--no-events", action="store_true", help="do not write per-event parquet files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_run)


SUBCOMMANDS: tuple[Callable, ...] = (_add_generate, _add_run)


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
