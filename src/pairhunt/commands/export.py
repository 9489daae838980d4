"""``pairhunt export``: a training run to an ONNX file carrying the pairhunt contract."""

from __future__ import annotations

import argparse
from pathlib import Path

from pairhunt.errors import PairhuntError
from pairhunt.extras import require


def _export_embedding(args: argparse.Namespace) -> int:
    require("pairhunt export", "train")
    from pairhunt.train.embed_trainer import export_embedding

    if args.fp16:
        raise PairhuntError("--fp16 is for SPA-NET models; a theory map stays float32")
    contract = export_embedding(args.run_dir, args.output)
    print(f"wrote {args.output}: theory map ({contract.latent}-d, sets of {contract.set_size}) of {len(contract.classes)} theories "
          f"({', '.join(contract.classes)}) for topology {contract.topology!r}, method {contract.method!r}")
    return 0


def execute(args: argparse.Namespace) -> int:
    if (Path(args.run_dir) / "library.json").is_file():
        return _export_embedding(args)
    if Path(args.run_dir).is_file():
        if not args.fp16:
            raise PairhuntError(f"{args.run_dir} is an exported model already; --fp16 converts it to float16")
        from pairhunt.precision import convert_to_float16

        contract = convert_to_float16(args.run_dir, args.output)
    else:
        require("pairhunt export", "train")
        from pairhunt.train.export import export_run

        contract = export_run(args.run_dir, args.output, checkpoint=args.checkpoint, precision="float16" if args.fp16 else "float32")
    folds = f", {contract.fold_rule.folds} folds routed by event number" if contract.fold_rule else ""
    print(f"wrote {args.output}: {contract.kind} model ({contract.precision}) for topology {contract.topology['name']!r}, "
          f"features {contract.features}, outputs {contract.outputs}{folds}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a training run to ONNX (dynamic jet axis, contract in the metadata)",
        description="Export RUN_DIR's best checkpoint to ONNX with the topology, features and normalisation in its "
        "metadata; a k-fold run (train spanet --folds k) to a model set directory with one ONNX file per fold. "
        "--fp16 exports (or converts an exported SPA-NET model to) float16 weights and arithmetic with float32 inputs and outputs.",
    )
    parser.add_argument("run_dir", help="training run directory (pairhunt train ...), or with --fp16 an exported SPA-NET .onnx file")
    parser.add_argument("-o", "--output", required=True, help="output .onnx file, or directory for a k-fold run")
    parser.add_argument("--checkpoint", default="best.pt", help="checkpoint in the run directory (default best.pt)")
    parser.add_argument("--fp16", action="store_true", help="SPA-NET only: weights and arithmetic in float16, inputs and "
                        "outputs float32 (for GPUs; slower on CPUs; efficiency cost in docs/benchmarks.md)")
    parser.set_defaults(handler=execute)
