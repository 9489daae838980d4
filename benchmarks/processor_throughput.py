"""Throughput of the pairhunt processor with the baselines, through coffea's Runner.

Measures, on a generated all-hadronic ttbar sample:
1. events/s on one core (iterative executor) for chi2 and mass_asymmetry while the number of
   leading jets scanned grows (topology ``keep`` = 6 ... 10), with the processor's time split;
2. the size of the permutation scan per N;
3. futures and Dask (LocalCluster) with 2 worker processes against the iterative executor;
4. chi2 over 10 jets on one core on the sample tiled to 10x its size (one chunk).

    python benchmarks/processor_throughput.py --events 20000 --output benchmarks/results/processor_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from gpu import tile  # benchmarks/gpu.py: a large file from copies of a small one

from pairhunt.assign.combinatorics import count_assignments
from pairhunt.generate import Request, generate, make_sample
from pairhunt.assign.registry import make_method
from pairhunt.processors import PairProcessor
from pairhunt.runner import normalise_files, run_fileset
from pairhunt.topology import load_topology


def measure(fileset, topology, method, executor="iterative", workers=1, chunksize=100_000) -> dict:
    processor = PairProcessor(topology, [make_method(method)])
    start = time.perf_counter()
    result = run_fileset(fileset, processor, executor=executor, workers=workers, chunksize=chunksize, progress=False)
    seconds = time.perf_counter() - start
    events = result.events
    selected = sum(flow["events"][">= 6 jets"] for flow in result.output["cutflow"].values())
    return {
        "method": method,
        "keep": topology.jets.selection.keep,
        "executor": executor,
        "workers": workers,
        "events": events,
        "selected_events": selected,
        "wall_s": round(seconds, 3),
        "events_per_s": round(events / seconds, 1),
        "timing_s": {k: round(v, 3) for k, v in result.output["timing"].items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--sample", default="benchmarks/data/ttbar_bench.root")
    parser.add_argument("--output", default="benchmarks/results/processor_throughput.json")
    args = parser.parse_args()

    sample = Path(args.sample)
    if not sample.exists():
        generate(Request(make_sample("ttbar"), args.events, seed=2024), sample, workers=2)
    fileset = {"ttbar": normalise_files([str(sample.resolve())])}
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "scaling": [], "dask": []}
    for keep in range(6, 13):
        for topology_name, method in (("ttbar_allhad", "chi2"), ("pair_3body", "mass_asymmetry")):
            topology = load_topology(topology_name).with_selection(keep=keep)
            row = measure(fileset, topology, method)
            row["assignments_per_event"] = count_assignments(topology, keep)
            results["scaling"].append(row)
            print(json.dumps(row))
    # executors: five datasets reading the same file (100k events), chi2 over 10 jets;
    # the Dask wall time includes starting the LocalCluster
    topology = load_topology("ttbar_allhad").with_selection(keep=10)
    copies = {f"ttbar_{i}": fileset["ttbar"] for i in range(5)}
    for executor, workers in (("iterative", 1), ("futures", 2), ("dask", 2)):
        row = measure(copies, topology, "chi2", executor=executor, workers=workers, chunksize=5_000)
        results["dask"].append(row)
        print(json.dumps(row))
    # one core on a larger file, where the per-file and per-chunk costs no longer show
    with tempfile.TemporaryDirectory() as scratch:
        big = Path(scratch) / "tiled.root"
        tile(sample, big, 10 * args.events)
        row = measure({"ttbar": normalise_files([str(big)])}, topology, "chi2", chunksize=10 * args.events)
        results["large_file"] = row
        print(json.dumps(row))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
