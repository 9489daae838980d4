"""``pairhunt evaluate``: jet-assignment efficiency of a run's methods against generator truth."""

from __future__ import annotations

import argparse
import sys


def execute(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from pairhunt.evaluate import evaluate_run, join_warnings, markdown_report
    from pairhunt.rundir import require_complete

    require_complete(args.run_dir)
    report = evaluate_run(args.run_dir, args.fileset, topology=args.topology, dataset=args.dataset)
    prefix = Path(args.output) if args.output else Path(args.run_dir) / "evaluation"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = Path(f"{prefix}.json"), Path(f"{prefix}.md")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    markdown = markdown_report(report)
    md_path.write_text(markdown)
    print(markdown)
    for name, entry in report["datasets"].items():
        for warning in join_warnings(entry["join"]):
            print(f"warning: {name}: {warning}", file=sys.stderr)
    print(f"wrote {json_path}, {md_path}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="jet-assignment efficiency of a run's methods against generator truth",
        description=(
            "Join the per-event results of a run (RUN_DIR/events/DATASET/*.parquet) to the truth "
            "labels of the fileset's files by (run, luminosityBlock, event): generated files' "
            "Jet_truthParent/Jet_truthProduct, or labels built from NanoAOD MC's GenPart with the "
            "topology's truth block (docs/evaluate.md). Report SPANet's event and per-parent efficiencies "
            "in jet-multiplicity bins, for all selected events and for complete events (every "
            "parent's decay products matched to jets). Writes OUT_PREFIX.json and OUT_PREFIX.md."
        ),
    )
    parser.add_argument("run_dir", help="output directory of pairhunt run")
    parser.add_argument("fileset", help="the fileset JSON the run was made with")
    parser.add_argument(
        "--topology", help="shipped topology name or YAML file (default: the run's, from RUN_DIR/summary.json)"
    )
    parser.add_argument("--dataset", help="evaluate only this dataset (default: every dataset with truth labels or GenPart)")
    parser.add_argument("-o", "--output", help="output prefix (default RUN_DIR/evaluation)")
    parser.set_defaults(handler=execute)
