"""Speed of the χ² and mass-asymmetry baselines per selected event, against a plain numba brute force.

The reference is what issue 12 measured pairhunt against: a short numba loop over every jet
choice of both tops, pruned by the best χ² found so far (kept here, not in the package, only to
time it). Both run on the same selected events of a held-out ttbar file, on one core, after a
warm-up call (numba compilation is excluded); the reference's minimal χ² must equal pairhunt's.

    python benchmarks/baseline_speed.py --sample benchmarks/data/ttbar_bench.root \
        --output benchmarks/results/baseline_speed.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numba
import numpy as np

from pairhunt.assign.baselines import Chi2, MassAsymmetry
from pairhunt.assign.combinatorics import count_assignments
from pairhunt.cutflow import Cutflow
from pairhunt.inputs import select_jets
from pairhunt.topology import load_topology


@numba.njit(error_model="numpy")
def _top_chi2(px, py, pz, e, event, b, q1, q2, masses):
    wx, wy, wz, we = px[event, q1] + px[event, q2], py[event, q1] + py[event, q2], pz[event, q1] + pz[event, q2], e[event, q1] + e[event, q2]
    w = np.sqrt(max(we * we - wx * wx - wy * wy - wz * wz, 0.0))
    tx, ty, tz, te = wx + px[event, b], wy + py[event, b], wz + pz[event, b], we + e[event, b]
    top = np.sqrt(max(te * te - tx * tx - ty * ty - tz * tz, 0.0))
    return ((top - masses[0]) / masses[1]) ** 2 + ((w - masses[2]) / masses[3]) ** 2


@numba.njit(error_model="numpy")
def reference_chi2(px, py, pz, e, counts, masses):
    """Minimal summed χ² per event: every (b, q1<q2) for each top, pruned by the best so far."""
    best_values = np.full(len(counts), np.inf)
    for event in range(len(counts)):
        n, best = counts[event], np.inf
        for b1 in range(n):
            for i1 in range(n):
                for j1 in range(i1 + 1, n):
                    if i1 == b1 or j1 == b1:
                        continue
                    c1 = _top_chi2(px, py, pz, e, event, b1, i1, j1, masses)
                    if c1 >= best:
                        continue
                    for b2 in range(n):
                        if b2 == b1 or b2 == i1 or b2 == j1:
                            continue
                        for i2 in range(n):
                            if i2 == b1 or i2 == i1 or i2 == j1 or i2 == b2:
                                continue
                            for j2 in range(i2 + 1, n):
                                if j2 == b1 or j2 == i1 or j2 == j1 or j2 == b2:
                                    continue
                                total = c1 + _top_chi2(px, py, pz, e, event, b2, i2, j2, masses)
                                if total < best:
                                    best = total
        best_values[event] = best
    return best_values


def per_event_us(function, n_events: int, repeat: int) -> float:
    function()  # compile / warm up
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - start) / repeat / n_events * 1e6


def chosen_chi2(assignment, inputs, method: Chi2) -> np.ndarray:
    """Summed χ² of an assignment (to compare with the reference's minimum)."""
    px, py, pz, e = inputs.four_momenta()
    total = np.zeros(inputs.n_events)
    for parent in (0, 1):
        parts = {}
        for slot in (0, 1, 2):
            in_slot = (assignment.parent == parent) & (assignment.product == slot)
            parts[slot] = [np.where(in_slot, x, 0.0).sum(axis=1) for x in (px, py, pz, e)]
        w = [a + b for a, b in zip(parts[0], parts[1])]
        top = [a + b for a, b in zip(w, parts[2])]
        mass = [np.sqrt(np.maximum(v[3] ** 2 - v[0] ** 2 - v[1] ** 2 - v[2] ** 2, 0.0)) for v in (top, w)]
        total += ((mass[0] - method.top_mass) / method.top_sigma) ** 2 + ((mass[1] - method.w_mass) / method.w_sigma) ** 2
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", default="benchmarks/data/ttbar_bench.root")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", default="benchmarks/results/baseline_speed.json")
    args = parser.parse_args()
    numba.set_num_threads(1)

    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    warnings.filterwarnings("ignore", module="coffea")
    events = NanoEventsFactory.from_root({args.sample: "Events"}, schemaclass=NanoAODSchema, mode="eager").events()
    topology = load_topology("ttbar_allhad")
    rows = []
    for keep in (6, 7, 8, 9, 10, 11, 12):
        jets_config = dataclasses.replace(topology.jets, selection=dataclasses.replace(topology.jets.selection, keep=keep))
        inputs, _ = select_jets(events, jets_config, Cutflow(np.ones(len(events))), ["btag"])
        n = inputs.n_events
        row = {"jets": keep, "assignments": count_assignments(topology, keep), "selected_events": n}
        for method in (Chi2(), Chi2(name="chi2_btag", btag_aware=True), MassAsymmetry()):
            row[f"{method.name}_us"] = round(per_event_us(lambda: method.assign(inputs, topology), n, args.repeat), 2)
        momenta = inputs.four_momenta()
        counts = inputs.counts.astype(np.int64)
        masses = np.array([172.5, 20.0, 80.4, 12.0])
        row["reference_chi2_us"] = round(per_event_us(lambda: reference_chi2(*momenta, counts, masses), n, args.repeat), 2)
        row["chi2_over_reference"] = round(row["chi2_us"] / row["reference_chi2_us"], 2)
        ours = chosen_chi2(Chi2().assign(inputs, topology), inputs, Chi2())
        theirs = reference_chi2(*momenta, counts, masses)
        found = np.isfinite(theirs)
        row["max_relative_chi2_difference"] = float(np.max(np.abs(ours - theirs)[found] / np.maximum(theirs[found], 1e-12)))
        print(json.dumps(row))
        rows.append(row)
    result = {
        "command": "python benchmarks/baseline_speed.py " + f"--sample {args.sample} --output {args.output}",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numba": numba.__version__},
        "sample": str(Path(args.sample)),
        "rows": rows,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
