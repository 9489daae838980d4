"""``pairhunt export``: a training run to an ONNX file carrying the pairhunt contract."""

from __future__ import annotations

import argparse


def execute(args: argparse.Namespace) -> int:
    from pairhunt.train.export import export_run

    contract = export_run(args.run_dir, args.output, checkpoint=args.checkpoint)
    folds = f", {contract.fold_rule.folds} folds routed by event number" if contract.fold_rule else ""
    print(f"wrote {args.output}: {contract.kind} model for topology {contract.topology['name']!r}, "
          f"features {contract.features}, outputs {contract.outputs}{folds}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a training run to ONNX (dynamic jet axis, contract in the metadata)",
        description="Export RUN_DIR's best checkpoint to ONNX with the topology, features and normalisation in its "
        "metadata; a k-fold run (train spanet --folds k) to a model set directory with one ONNX file per fold.",
    )
    parser.add_argument("run_dir", help="training run directory (pairhunt train ...)")
    parser.add_argument("-o", "--output", required=True, help="output .onnx file, or directory for a k-fold run")
    parser.add_argument("--checkpoint", default="best.pt", help="checkpoint in the run directory (default best.pt)")
    parser.set_defaults(handler=execute)
