"""``pairhunt run``: the processor over a fileset through coffea's Runner or its dask-awkward mode."""

from __future__ import annotations

import argparse
import sys

from pairhunt.commands.display import print_cutflow


def execute(args: argparse.Namespace) -> int:
    from pairhunt.assign.registry import DEFAULT_METHODS
    from pairhunt.interrupt import RunInterrupted
    from pairhunt.job import JobOptions, run_job
    from pairhunt.runner import load_fileset
    from pairhunt.topology import load_topology

    topology = load_topology(args.topology)
    options = JobOptions(
        topology=topology,
        methods=list(args.method or DEFAULT_METHODS.get(topology.name, ("chi2",))),
        executor=args.executor,
        mode=args.mode,
        workers=args.workers,
        scheduler=args.scheduler,
        chunksize=args.chunksize,
        maxchunks=args.maxchunks,
        events=not args.no_events,
        detection_cut=args.detection_cut,
        top_k=args.top_k,
        device=args.device,
        tf32=not args.no_tf32,
        onnx_threads=args.onnx_threads,
        onnx_batch_size=args.onnx_batch_size,
        skipbadfiles=not args.no_skipbadfiles,
        allow_partial=args.allow_partial,
        progress=not args.no_progress,
    )
    fileset = load_fileset(args.fileset)
    try:
        job = run_job(options, fileset, args.output, overwrite=args.overwrite, resume=args.resume)
    except RunInterrupted as stopped:
        print(f"pairhunt run: {stopped}; --resume finishes the run", file=sys.stderr)
        return stopped.exit_code
    result = job.result
    print_cutflow(result.output["cutflow"])
    for filename, reason in result.report.skipped.items():
        print(f"skipped {filename}: {reason}", file=sys.stderr)
    for chunk in result.report.failed_chunks:
        print(f"failed {chunk['file']} entries {chunk['entry_start']}-{chunk['entry_stop']}: {chunk['error']}", file=sys.stderr)
    for warning in job.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{job.summary['events']} events in {result.seconds:.1f} s; wrote {', '.join(str(p) for p in job.paths.values())}")
    return 0


def register(subparsers) -> None:
    from pairhunt.assign.onnx import DEVICES
    from pairhunt.executors import EXECUTORS
    from pairhunt.runner import MODES

    parser = subparsers.add_parser(
        "run",
        help="run the pairhunt processor over a fileset with coffea's Runner or dask-awkward mode",
        description=(
            "Select jets, assign them to parents with each method, and fill histograms, through "
            "coffea's processor.Runner or its dask-awkward mode (--mode). Writes OUTDIR/hists/hists.coffea, OUTDIR/hists/hists.root, "
            "per-event parquet files under OUTDIR/events/DATASET/, and OUTDIR/summary.json, last: "
            "until the run is complete everything stays in OUTDIR/.incomplete/. Every event is "
            "accounted for: a chunk that cannot be read fails the run (exit 2) unless --allow-partial."
        ),
    )
    parser.add_argument("fileset", help="fileset JSON in coffea's form: {dataset: [files]} or {dataset: {files: {file: tree}}}")
    parser.add_argument("-o", "--output", required=True, help="output directory (must be empty, or see --overwrite and --resume)")
    parser.add_argument("--topology", default="ttbar_allhad", help="shipped topology name or YAML file (default ttbar_allhad)")
    parser.add_argument(
        "--method", action="append", help="assignment method, repeatable (default: chi2 for ttbar, mass_asymmetry for pairs)"
    )
    parser.add_argument("--executor", choices=EXECUTORS, default="iterative", help="coffea executor (default iterative)")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="runner",
        help="runner: coffea's processor.Runner (default); dask-awkward: coffea's dask mode, apply_to_fileset on "
        "mode='dask' events, one partition per chunk, computed on the --executor's processes (needs the 'dask' extra)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes for futures/dask (default 2)")
    parser.add_argument("--scheduler", help="address of an existing Dask scheduler (analysis facility)")
    parser.add_argument("--chunksize", type=int, default=100_000, help="events per chunk (default 100000)")
    parser.add_argument("--maxchunks", type=int, help="at most this many chunks per dataset")
    parser.add_argument(
        "--detection-cut",
        type=float,
        metavar="X",
        help="SPA-NET models histogram only the candidates of parents whose detection probability exceeds X "
        "(every parent's for the average mass and m1-m2); counted per method in the cutflow, all events stay in the "
        "per-event table",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        metavar="K",
        help="SPA-NET models also write their K best distinct joint assignments with their log-probabilities "
        "to the per-event table (M_top1_score, M_top1_jet_parent, ...); two-parent topologies",
    )
    parser.add_argument("--onnx-threads", type=int, default=1, help="onnxruntime intra-op threads per worker (default 1)")
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where ONNX models run: auto (CUDA when onnxruntime offers it and it works, else CPU; the default), "
        "cpu, or cuda (an error without a usable GPU)",
    )
    parser.add_argument(
        "--no-tf32",
        action="store_true",
        help="exact float32 matrix products on CUDA (TF32 off): reproducible results, slower; no effect on CPU",
    )
    parser.add_argument(
        "--onnx-batch-size",
        type=int,
        metavar="N",
        help="events per onnxruntime call (default: 1,024 on CPU, 8,192 on CUDA)",
    )
    parser.add_argument("--no-skipbadfiles", action="store_true", help="stop at the first file that cannot be opened")
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="finish the run although chunks failed; their entry ranges and errors are listed in summary.json",
    )
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="delete the run already in OUTDIR and start over")
    existing.add_argument(
        "--resume",
        action="store_true",
        help="finish the stopped run in OUTDIR: only chunks without complete outputs are processed (same options needed)",
    )
    parser.add_argument("--no-events", action="store_true", help="do not write per-event parquet files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=execute)
