"""``pairhunt bumphunt``: dijet fit, window scan and significances on a run's mass spectrum."""

from __future__ import annotations

import argparse
import sys

# Below this many (effective) events in the spectrum, the fit and the significances mean little.
MIN_EVENTS = 100


def execute(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pairhunt.bumphunt.from_run import hunt_in_run, load_hists, method_spectrum, parse_scaled
    from pairhunt.errors import PairhuntError
    from pairhunt.rundir import require_complete

    require_complete(args.run_dir)
    hists = load_hists(args.run_dir)
    methods = list(hists["mass_average"].axes["method"])
    if not methods:
        raise PairhuntError(f"the run in {args.run_dir} selected no event: nothing to fit")
    datasets = parse_scaled(args.dataset) if args.dataset else {d: 1.0 for d in hists["mass_average"].axes["dataset"]}
    method = args.method or methods[0]
    spectrum = method_spectrum(hists, method, datasets, args.score_min)
    if spectrum.values.sum() <= 0:
        raise PairhuntError(f"the {method} spectrum of {', '.join(datasets)} is empty: nothing to fit")
    events = spectrum.effective_counts().sum()
    if events < MIN_EVENTS:
        warning = f"the {method} spectrum holds {events:.0f} events; below {MIN_EVENTS} the fit and significances are unreliable"
        print(f"warning: {warning}", file=sys.stderr)
    outdir = Path(args.output) if args.output else Path(args.run_dir) / "bumphunt" / method
    paths = hunt_in_run(
        args.run_dir, outdir, method, datasets,
        signal=parse_scaled(args.signal) if args.signal else None,
        strengths=tuple(args.strength),
        score_min=args.score_min,
        resolution=args.resolution,
        fit_range=tuple(args.fit_range) if args.fit_range else None,
        n_params=args.n_params,
        pseudo_experiments=args.pseudo_experiments,
        seed=args.seed,
        progress=not args.no_progress,
    )
    print(paths["markdown"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bumphunt",
        help="fit the dijet function to a run's mass spectrum and scan for bumps",
        description=(
            "Fit a smooth background (dijet function, 3/4/5 parameters chosen by an F-test) to the average "
            "parent mass of one method, scan windows of 1 and 2 mass resolutions for excesses, and correct "
            "the most significant one for the look-elsewhere effect with background-only pseudo-experiments. "
            "Writes bumphunt.json, bumphunt.md and plots."
        ),
    )
    parser.add_argument("run_dir", help="output directory of `pairhunt run`")
    parser.add_argument("--method", help="assignment method (default: the run's first)")
    parser.add_argument("--dataset", action="append", help="dataset to hunt in, NAME or NAME:SCALE, repeatable (default: all, scale 1)")
    parser.add_argument("--signal", action="append", help="dataset to inject on top, NAME or NAME:SCALE, repeatable")
    parser.add_argument("--strength", type=float, action="append", default=[], help="signal strength of the injection test, repeatable")
    parser.add_argument("--score-min", type=float, help="keep events with anomaly score >= this (methods with a score: ABC)")
    parser.add_argument("--resolution", type=float, default=0.1, help="relative mass resolution sigma_m/m (default 0.1)")
    parser.add_argument("--fit-range", type=float, nargs=2, metavar=("LOW", "HIGH"), help="fit range in GeV (default: peak to last filled bin)")
    parser.add_argument("--n-params", type=int, choices=(3, 4, 5), help="force the dijet function (default: F-test)")
    parser.add_argument("--pseudo-experiments", type=int, default=200, help="for the global significance (default 200; 0: none)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the pseudo-experiments")
    parser.add_argument("-o", "--output", help="output directory (default RUN_DIR/bumphunt/METHOD)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=execute)
