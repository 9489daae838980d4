"""``pairhunt demo``: generate, reconstruct (ABC and mass asymmetry) and bump-hunt, no arguments needed."""

from __future__ import annotations

import argparse

from pairhunt.extras import require


def execute(args: argparse.Namespace) -> int:
    from pathlib import Path

    require("pairhunt demo", "generate", "anomaly")  # it generates its samples and runs a CWoLa scan

    from pairhunt.demo import DemoConfig, run_demo

    config = DemoConfig(
        output=args.output, qcd_events=args.qcd_events, signal_events=args.signal_events,
        signal_mass=args.signal_mass, background_events=args.background_events,
        injected_events=args.injected_events, score_cut=args.score_cut, workers=args.workers,
        seed=args.seed, pseudo_experiments=args.pseudo_experiments, progress=not args.no_progress,
    )
    run_demo(config)
    report = Path(args.output) / "report.md"
    print(report.read_text())
    print(f"everything is in {Path(args.output).resolve()}: run/ (histograms, per-event tables), bumphunt/ (plots, JSON), report.md")
    return 0


def register(subparsers) -> None:
    from pairhunt.demo import DemoConfig

    defaults = DemoConfig()
    parser = subparsers.add_parser(
        "demo",
        help="the whole chain on a bundled default: generate, run ABC + mass asymmetry, bump hunt",
        description=(
            "Generate QCD and an RPV gluino signal with Pythia8, reconstruct both with the shipped ABC model and "
            "minimal mass asymmetry through coffea's Runner, draw pseudo-data events (QCD plus injected signal) and "
            "bump-hunt each method's spectrum of the same events, ABC also after its mass-decorrelated score cut; "
            "place the excess on the theory map and run a CWoLa hunt (sliding windows) on the same events. "
            "Writes histograms, per-event tables, plots and report.md to OUTPUT."
        ),
    )
    parser.add_argument("-o", "--output", default=defaults.output, help=f"output directory (default {defaults.output})")
    parser.add_argument("--qcd-events", type=int, default=defaults.qcd_events, help=f"QCD events to generate (default {defaults.qcd_events})")
    parser.add_argument("--signal-events", type=int, default=defaults.signal_events, help=f"signal events to generate (default {defaults.signal_events})")
    parser.add_argument("--signal-mass", type=float, default=defaults.signal_mass, help=f"gluino mass in GeV (default {defaults.signal_mass:g})")
    parser.add_argument("--background-events", type=float, default=defaults.background_events, help=f"QCD events in the pseudo-data (default {defaults.background_events:g})")
    parser.add_argument("--injected-events", type=float, default=defaults.injected_events, help=f"signal events in the pseudo-data (default {defaults.injected_events:g})")
    parser.add_argument("--score-cut", type=float, default=defaults.score_cut, help=f"cut on ABC's mass-decorrelated score, 0-1 (default {defaults.score_cut:g})")
    parser.add_argument("--workers", type=int, default=defaults.workers, help=f"processes (default {defaults.workers})")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"seed of generation and pseudo-experiments (default {defaults.seed})")
    parser.add_argument("--pseudo-experiments", type=int, default=defaults.pseudo_experiments, help=f"for the global significance (default {defaults.pseudo_experiments})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=execute)
