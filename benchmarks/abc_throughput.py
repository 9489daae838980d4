"""Processor throughput of ABC models on one core: events read per second end to end through
coffea's Runner (iterative executor) and the processor's time split, per model, same events.

    python benchmarks/abc_throughput.py --sample qcd.root --model models/pair_abc.onnx [--model OTHER.onnx ...] \
        --output benchmarks/results/abc_throughput.json

The models run in the order given, ``--repeats`` times each, alternating (model A, B, A, B, ...),
so a slow first pass does not favour either; the best pass of each is reported.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pairhunt.assign.registry import make_method
from pairhunt.processors import PairProcessor
from pairhunt.runner import normalise_files, run_fileset
from pairhunt.topology import load_topology


def one_pass(sample: Path, model: str) -> dict:
    """One Runner pass of the ``abc`` method over the whole sample, in one chunk."""
    topology = load_topology("pair_abc")
    processor = PairProcessor(topology, [make_method(f"abc={model}")])
    start = time.perf_counter()
    result = run_fileset({"qcd": normalise_files([str(sample)])}, processor, executor="iterative", chunksize=10_000_000, progress=False)
    wall = time.perf_counter() - start
    events = result.output["cutflow"]["qcd"]["events"]
    timing = result.output["timing"]
    return {
        "model": model,
        "events": events["all events"],
        "selected": events[f"HT > {topology.jets.selection.ht_min:g} GeV"],
        "wall_s": round(wall, 3),
        "events_per_s": round(events["all events"] / wall),
        "time_split_s": {step: round(seconds, 3) for step, seconds in timing.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", required=True, type=Path, help="generated QCD file (pairhunt generate qcd)")
    parser.add_argument("--model", action="append", required=True, help="ABC ONNX model (repeat the option to compare)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default="benchmarks/results/abc_throughput.json")
    args = parser.parse_args()
    passes: dict[str, list[dict]] = {model: [] for model in args.model}
    for _ in range(args.repeats):
        for model in args.model:
            row = one_pass(args.sample, model)
            passes[model].append(row)
            print(json.dumps(row), flush=True)
    best = {model: max(rows, key=lambda r: r["events_per_s"]) for model, rows in passes.items()}
    Path(args.output).write_text(json.dumps({"best": best, "passes": passes}, indent=2) + "\n")


if __name__ == "__main__":
    main()
