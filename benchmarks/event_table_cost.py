"""What the per-event table costs in the processor, per selected event and one core: the columns
the anomaly methods read (event shape; per method the candidates' kinematics and Dalitz
variables) beside the rest of the table and the assignment itself.

    python benchmarks/event_table_cost.py --sample benchmarks/data/ttbar_bench.root --method chi2 \
        --output benchmarks/results/event_table_cost.json

Only `pairhunt run` with per-event tables (the default; `--no-events` skips them) pays this.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

from pairhunt.assign.registry import make_method
from pairhunt.candidates import build_candidates, pair_mass_fractions
from pairhunt.cutflow import Cutflow
from pairhunt.event_table import EventTable
from pairhunt.inputs import event_shape, object_counts, select_jets
from pairhunt.topology import load_topology

REPEATS = 5


def best_of(function) -> float:
    """The fastest of REPEATS calls, in seconds (the least disturbed by the rest of the machine)."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", required=True)
    parser.add_argument("--topology", default="ttbar_allhad")
    parser.add_argument("--method", default="chi2")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    topology = load_topology(args.topology)
    events = NanoEventsFactory.from_root({args.sample: "Events"}, schemaclass=NanoAODSchema, mode="eager").events()
    method = make_method(args.method)
    weights = np.ones(len(events))
    jets, selected = select_jets(events, topology.jets, Cutflow(weights), sorted(method.required_features(topology)), args.sample)
    assignment = method.assign(jets, topology)
    candidates = build_candidates(jets, assignment, topology.n_parents, topology.products_per_parent)
    counts = object_counts(events, topology.jets)

    def whole_table():
        table = EventTable(events, selected, jets, counts, weights)
        table.add_method(args.method, assignment, candidates, topology.parents)

    seconds = {
        "assignment": best_of(lambda: method.assign(jets, topology)),
        "whole table (all columns)": best_of(whole_table),
        "of it: event shape": best_of(lambda: event_shape(jets)),
        "of it: Dalitz variables": best_of(lambda: pair_mass_fractions(jets, assignment, candidates)),
    }
    per_event = {k: 1e6 * v / jets.n_events for k, v in seconds.items()}
    for name, value in per_event.items():
        print(f"{name:28s} {value:7.2f} µs per selected event")
    result = {"sample": args.sample, "method": args.method, "events_read": len(events), "selected": int(jets.n_events),
              "microseconds_per_selected_event": per_event}
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
