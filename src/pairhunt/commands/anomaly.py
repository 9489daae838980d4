"""``pairhunt anomaly``: CWoLa hunting or CATHODE in one mass window of a run's per-event table,
or in sliding windows (``--scan``); needs the ``anomaly`` extra: torch and zuko."""

from __future__ import annotations

import argparse

from pairhunt.errors import PairhuntError
from pairhunt.extras import require

METHOD_CHOICES = ("cwola", "cathode", "idealised", "supervised")
DEFAULT_KEEP = (0.2, 0.1, 0.05)
DEFAULT_SCAN_KEEP = 0.2


def _import_anomaly():
    require("pairhunt anomaly", "anomaly")  # torch and zuko: a missing extra shows here, not mid-search
    import pairhunt.anomaly as anomaly

    return anomaly


def execute(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    anomaly = _import_anomaly()
    import torch

    from pairhunt.anomaly.report import write_search

    torch.set_num_threads(args.threads)
    if args.scan is not None and args.keep is not None and len(args.keep) > 1:
        raise PairhuntError("--scan cuts at one --keep fraction (the scan's trials are its windows), got several")
    if args.scan is not None and args.background:
        raise PairhuntError("--scan has no sculpting check: run --window on the window it finds, with --background")
    if args.toys < 0:
        raise PairhuntError(f"--toys counts pseudo-datasets (0: asymptotic p-values only), got {args.toys}")

    accounting: dict[str, dict] = {}

    def load(datasets: list[str], names: list[str] | None):
        return anomaly.load_sample(args.run_dir, args.assignment, datasets, names, accounting)

    data = load(args.data, args.features)
    if args.unweight is not None:
        accounting["unweighted"] = {"kept": None, "of": len(data)}
        data = data.unweighted(args.unweight)
        accounting["unweighted"]["kept"] = len(data)
    names = list(data.names)
    reference = load(args.reference, names) if args.reference else None
    signal = load(args.signal, names) if args.signal else None
    background = load(args.background, names) if args.background else None
    config = anomaly.SearchConfig(folds=args.folds, seed=args.seed, oversample=args.oversample)
    inputs = {
        "run_dir": str(args.run_dir), "assignment": args.assignment, "data": args.data, "unweight_seed": args.unweight,
        "events": accounting,  # per dataset read, selected and used; what unweighting kept
    }
    if args.scan is not None:
        return _scan(args, anomaly, data, config, reference, signal, inputs)
    window = anomaly.Window(args.window[0], args.window[1], args.sideband)
    paths = write_search(
        Path(args.output), args.method, data, window, config, tuple(args.keep or DEFAULT_KEEP),
        reference=reference, signal=signal, background=background,
        pseudo_experiments=args.pseudo_experiments, resolution=args.resolution, inputs=inputs, toys=args.toys,
    )
    result = json.loads(paths["json"].read_text())
    for cut in result["cuts"]:
        sig = cut["sideband_fit"]
        if "error" in sig:
            print(f"keep {cut['keep']:g}: no sideband fit ({sig['error']})")
            continue
        print(
            f"keep {cut['keep']:g}: signal region {sig['observed']:.0f} events, sideband fit predicts "
            f"{sig['expected']:.1f} ± {sig['expected_uncertainty']:.1f}, {_local_z(sig)}"
        )
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _local_z(fit: dict) -> str:
    """The local Z from toys where they were run, with the asymptotic one beside it."""
    if "local_significance_toys" in fit:
        bound = "≥ " if fit["toys_lower_bound"] else ""
        return f"local Z {bound}{fit['local_significance_toys']:.2f} ({fit['toys']} toys; asymptotic {fit['local_significance']:.2f})"
    return f"local Z {fit['local_significance']:.2f} (asymptotic)"


def _scan(args: argparse.Namespace, anomaly, data, config, reference, signal, inputs: dict) -> int:
    """Sliding signal regions over ``--scan LOW HIGH``: one search per window, scan.json and scan.png."""
    from pathlib import Path

    from pairhunt.anomaly.report import write_scan
    from pairhunt.anomaly.scan import scan_windows

    keep = (args.keep or [DEFAULT_SCAN_KEEP])[0]
    windows = anomaly.sliding_windows(args.scan[0], args.scan[1], args.width, args.step, args.sideband)
    results = scan_windows(
        args.method, data, windows, config, keep, reference, signal,
        progress=lambda w: print(f"window {w.low:.0f}-{w.high:.0f} GeV", flush=True), toys=args.toys,
    )
    result, paths = write_scan(Path(args.output), args.method, results, dict(inputs, keep=keep, width=args.width, step=args.step))
    for row in result["windows"]:
        window = "-".join(f"{m:.0f}" for m in row["signal_region_gev"])
        before, after = (row[k].get("local_significance_toys", row[k].get("local_significance", float("nan"))) for k in ("no_cut", "cut"))
        print(f"{window} GeV: local Z {before:.2f} without the cut, {after:.2f} keeping {keep:g}" + (f" ({row['cut']['error']})" if "error" in row["cut"] else ""))
    summary = result["look_elsewhere"]
    if "best" in summary:
        best = "-".join(f"{m:.0f}" for m in summary["best"]["signal_region_gev"])
        print(
            f"most significant: {best} GeV, {_local_z(summary['best']['cut'])}; "
            f"global Z >= {summary['global_significance_bound']:.2f} over {summary['windows']} windows (Bonferroni)"
        )
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "anomaly",
        help="CWoLa hunting or CATHODE on the reconstructed pair mass of a run",
        description=(
            "Resonant anomaly detection in one signal region of the average parent mass (--window), or in "
            "signal regions sliding over a mass range (--scan, CWoLa hunting), with a sideband "
            "of the same relative width on each side: CWoLa hunting (classifier signal region vs sidebands) "
            "or CATHODE (a conditional flow of the features learnt in the sidebands, sampled in the signal "
            "region, and a classifier data vs samples); idealised and supervised classifiers as bounds when "
            "simulated background (and signal) are given. Every event is scored by k-fold models that never "
            "trained on it. Cuts keep the highest-scoring fractions of the range; per cut: a dijet fit to the "
            "sidebands predicts the signal region (local significance), and the usual bump hunt runs over the "
            "range. Writes anomaly.json (last), hists.coffea, hists.root, scores.parquet, plots, one "
            "bump-hunt report per cut."
        ),
    )
    parser.add_argument("run_dir", help="output directory of `pairhunt run` (its per-event table)")
    parser.add_argument("--method", choices=METHOD_CHOICES, default="cathode", help="default cathode")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--window", nargs=2, type=float, metavar=("LOW", "HIGH"), help="signal region in GeV")
    where.add_argument(
        "--scan", nargs=2, type=float, metavar=("LOW", "HIGH"),
        help="slide the signal region over LOW-HIGH GeV (CWoLa hunting): one search per window, new classifiers in each; "
        "writes scan.json and scan.png",
    )
    parser.add_argument("--width", type=float, default=0.5, help="--scan: signal-region width relative to its lower edge (default 0.5)")
    parser.add_argument("--step", type=float, default=0.25, help="--scan: step of the lower edge, relative (default 0.25)")
    parser.add_argument("--sideband", type=float, default=1.0, help="width of each sideband in units of the signal region's (default 1)")
    parser.add_argument("--assignment", required=True, help="the run's assignment method whose candidates give the mass and features")
    parser.add_argument("--data", nargs="+", required=True, help="datasets that are the data")
    parser.add_argument("--unweight", type=int, metavar="SEED", help="unweight weighted (simulated) data by hit-or-miss with this seed")
    parser.add_argument("--features", nargs="+", help="auxiliary features (default: pairhunt's decorrelated set; 'all' for every one)")
    parser.add_argument("--reference", nargs="+", help="simulated background datasets (idealised, supervised)")
    parser.add_argument(
        "--signal", nargs="+",
        help="simulated signal datasets: the supervised classifier trains on them; with --background the other methods "
        "score them for the SIC curve",
    )
    parser.add_argument("--background", nargs="+", help="simulated background datasets for the sculpting check")
    parser.add_argument(
        "--keep", type=float, nargs="+",
        help="fractions of the range's events each cut keeps (default 0.2 0.1 0.05; with --scan one, default 0.2)",
    )
    parser.add_argument("--folds", type=int, default=5, help="k of the k-fold classifiers (default 5)")
    parser.add_argument("--oversample", type=int, default=4, help="CATHODE: flow samples per signal-region event (default 4)")
    parser.add_argument("--resolution", type=float, default=0.1, help="relative mass resolution for the bump hunt's scan (default 0.1)")
    parser.add_argument("--pseudo-experiments", type=int, default=100, help="for each bump hunt's global significance (default 100)")
    parser.add_argument(
        "--toys", type=int, default=1000,
        help="pseudo-datasets from each sideband fit for the signal region's p-value (default 1000; resolves Z up to ~3.1; "
        "0: asymptotic only, over-confident where a cut leaves the upper sideband nearly empty)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seeds folds, networks and samples (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("-o", "--output", required=True, help="output directory")
    parser.set_defaults(handler=execute)
