"""``pairhunt ensemble``: exported SPA-NET models averaged in one ONNX graph (pairhunt.ensemble)."""

from __future__ import annotations

import argparse

from pairhunt.extras import require


def execute(args: argparse.Namespace) -> int:
    require("pairhunt ensemble", "train")
    from pairhunt.ensemble import compose_ensemble

    contract = compose_ensemble(args.models, args.output)
    print(f"wrote {args.output}: ensemble of {len(contract.members)} {contract.kind} models for topology "
          f"{contract.topology['name']!r} ({', '.join(m['source'] for m in contract.members)}), outputs {contract.outputs}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ensemble",
        help="average exported SPA-NET models in one ONNX graph (a deep ensemble)",
        description="Compose exported SPA-NET models of one topology into one ONNX model that runs them all on the same "
        "inputs and averages their probabilities (tuple assignments, detection, classification; regressions by value). "
        "The result is an ordinary pairhunt model whose contract lists its members; it costs the sum of its members.",
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="exported .onnx SPA-NET models (at least two; not k-fold members)")
    parser.add_argument("-o", "--output", required=True, help="output .onnx file")
    parser.set_defaults(handler=execute)
