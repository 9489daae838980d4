"""``pairhunt recalibrate``: an exported ABC model's mass-decorrelated score remade on new background."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pairhunt.errors import PairhuntError
from pairhunt.extras import require


def execute(args: argparse.Namespace) -> int:
    require("pairhunt recalibrate", "train")
    from pairhunt.train.data import from_nanoaod
    from pairhunt.train.recalibrate import abc_contract, recalibrate

    if (args.smooth is not None and args.smooth < 0) or (args.bins is not None and args.bins < 2):
        raise PairhuntError("--bins must be at least 2 and --smooth at least 0")
    contract = abc_contract(args.model)
    data = from_nanoaod(args.data, contract.model_topology, require_truth=False)
    if len(data) == 0:
        raise PairhuntError(f"no event of {', '.join(args.data)} passes the model's selection: nothing to calibrate on")
    if data.weights is None:
        print("warning: the files have no genWeight: every event counts once", file=sys.stderr)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # the exporter lists the torchvision ops it skips
    result = recalibrate(args.model, data, args.output, bins=args.bins, smooth=args.smooth)
    summary = {
        "data": [Path(p).name for p in args.data], "events": result.events, "effective_events": round(result.effective_events),
        "bins": len(result.table["centres"]), "smoothing": result.table["smoothing"],
        "changed_fraction": round(result.changed_fraction, 4),
    }
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.output}: {args.model} with its decorrelated score calibrated on {result.events} selected events "
          f"({summary['bins']} average-mass bins, smoothed over ±{summary['smoothing']}); category probabilities and anomaly score "
          f"unchanged (checked bitwise); {result.changed_fraction:.1%} of these events moved by more than one table step")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "recalibrate",
        help="remake an exported ABC model's mass-decorrelated score on new background events",
        description="Calibrate the anomaly score of an exported ABC model (.onnx) anew in bins of the average parent mass, "
        "on background NanoAOD-like files selected as the model selects, and write the model with the new table. Nothing "
        "upstream of the score changes (checked bitwise on the calibration events); no training run is needed.",
    )
    parser.add_argument("model", help="exported ABC model (.onnx), e.g. models/pair_abc.onnx")
    parser.add_argument("--data", nargs="+", required=True, help="background NanoAOD-like ROOT files the model never trained on")
    parser.add_argument("-o", "--output", required=True, help="the recalibrated model (.onnx)")
    parser.add_argument("--bins", type=int, default=None,
                        help="average-mass bins (default: one per 500 selected events, 25 to 480)")
    parser.add_argument("--smooth", type=int, default=None,
                        help="smooth each score quantile over this many neighbouring bins on either side (default: a sixth of the bins, as `pairhunt train abc` does; 0: none)")
    parser.set_defaults(handler=execute)
