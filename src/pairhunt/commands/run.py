"""``pairhunt run``: the processor over a fileset through coffea's Runner."""

from __future__ import annotations

import argparse
import sys

from pairhunt.commands.display import print_cutflow


def execute(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pairhunt.methods import DEFAULT_METHODS, make_method
    from pairhunt.outputs import write_run
    from pairhunt.processors import PairProcessor
    from pairhunt.runner import load_fileset, run_fileset
    from pairhunt.topology import load_topology

    topology = load_topology(args.topology)
    names = args.method or DEFAULT_METHODS.get(topology.name, ("chi2",))
    outdir = Path(args.output)
    proc = PairProcessor(topology, [make_method(n, threads=args.onnx_threads) for n in names], output_dir=None if args.no_events else outdir)
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
    print_cutflow(result.output["cutflow"])
    for filename, reason in result.report.skipped.items():
        print(f"skipped {filename}: {reason}", file=sys.stderr)
    print(f"{result.events} events in {result.seconds:.1f} s; wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def register(subparsers) -> None:
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
    parser.add_argument("--onnx-threads", type=int, default=1, help="onnxruntime intra-op threads per worker (default 1)")
    parser.add_argument("--no-skipbadfiles", action="store_true", help="stop at the first unreadable file")
    parser.add_argument("--no-events", action="store_true", help="do not write per-event parquet files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=execute)
