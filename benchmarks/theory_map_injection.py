"""The theory map on injected excesses: many pseudo-datasets like the demo's, each characterised.

    pairhunt demo --output pairhunt-demo          # generates QCD and 2 TeV gluinos, runs the processor
    python benchmarks/theory_map_injection.py --demo pairhunt-demo --window 1600 2400 \
        --injected 50 100 200 --pseudo-datasets 50 --output benchmarks/results/theory_map_injection.json

Per pseudo-dataset: QCD events kept by weight from the demo's selected QCD, none twice (mean
1,500, ``keep_by_weight``), and a Poisson number (mean ``--injected``) of distinct gluino events
from its selected signal, the construction of ``pairhunt demo`` (until 2026-11-27 both were
drawn with replacement, 2,000 QCD events on average); the events in the fixed window minus the sideband-estimated
background are placed on the shipped map (``pairhunt.theory.characterize``). Reported per
signal size: how often each theory is named first, how often the set is flagged unlike every
theory, and the median effective set size. The demo's files were generated with seeds the map
never trained on.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from pairhunt.bumphunt.pseudodata import keep_by_weight
from pairhunt.errors import PairhuntError
from pairhunt.theory import TheoryEvents, TheoryMap, characterize, load_events, window_set


def pseudo_data(qcd: TheoryEvents, signal: TheoryEvents, background: float, injected: float, rng: np.random.Generator) -> TheoryEvents:
    rows_b = keep_by_weight(qcd.weight, background, rng)  # as the demo: every event at most once
    rows_s = rng.choice(len(signal), size=rng.poisson(injected), replace=False)
    n = len(rows_b) + len(rows_s)
    return TheoryEvents(np.concatenate([qcd.features[rows_b], signal.features[rows_s]]), np.ones(n),
                        np.concatenate([qcd.mass[rows_b], signal.mass[rows_s]]), qcd.names, np.full(n, "pseudo-data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", required=True, help="output directory of a finished `pairhunt demo`")
    parser.add_argument("--model", default="theory_map")
    parser.add_argument("--window", nargs=2, type=float, required=True)
    parser.add_argument("--background", type=float, default=1500.0, help="mean QCD events per pseudo-dataset (the demo's)")
    parser.add_argument("--injected", type=float, nargs="+", default=[50.0, 100.0, 200.0])
    parser.add_argument("--pseudo-datasets", type=int, default=50)
    parser.add_argument("--bootstrap", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    theory_map = TheoryMap(args.model)
    run_dir = Path(args.demo) / "run"
    qcd, signal = (load_events(run_dir, theory_map.contract.method, [name], tuple(theory_map.contract.features)) for name in ("qcd", "gluino"))
    rng = np.random.default_rng(args.seed)
    results = {}
    for injected in args.injected:
        named, flagged, on_map, pooled, sizes, failed = Counter(), 0, 0, 0, [], 0
        for _ in range(args.pseudo_datasets):
            data = pseudo_data(qcd, signal, args.background, injected, rng)
            try:
                placed = characterize(theory_map, window_set(data, *args.window), args.bootstrap, int(rng.integers(1 << 31)))
            except PairhuntError:  # no excess over the sidebands in this draw
                failed += 1
                continue
            named[placed["ranking"][0]["theory"]] += 1
            flagged += placed["unlike_every_theory"]
            on_map += placed["unlike_on_map"]
            pooled += placed["unlike_pooled"]
            sizes.append(placed["effective_events"])
        done = args.pseudo_datasets - failed
        results[str(injected)] = {
            "pseudo_datasets": args.pseudo_datasets, "no_excess": failed,
            "named_first": {k: v / max(done, 1) for k, v in named.most_common()},
            "unlike_fraction": flagged / max(done, 1), "unlike_on_map_fraction": on_map / max(done, 1),
            "unlike_pooled_fraction": pooled / max(done, 1), "median_effective_events": float(np.median(sizes)) if sizes else None,
        }
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(results[str(injected)]["named_first"].items())[:3])
        print(f"{injected:g} injected: named first {top}; flagged unlike {results[str(injected)]['unlike_fraction']:.2f} "
              f"(on the map {on_map / max(done, 1):.2f}, pooled {pooled / max(done, 1):.2f}); "
              f"no excess in {failed}; median effective events {results[str(injected)]['median_effective_events']}")
    Path(args.output).write_text(json.dumps({"demo": args.demo, "window_gev": args.window, "seed": args.seed, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
