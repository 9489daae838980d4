"""Train on SPANet's public all-hadronic ttbar example (80 %) and compare with chi2 on the other 20 %.

    python benchmarks/spanet_example.py --epochs 30 --output benchmarks/results/spanet_example

Writes OUTPUT.json and OUTPUT.md (SPANet-style table by jet multiplicity) and the run directory
OUTPUT_run/. The example file is ../shared/data/spanet_examples/full_hadronic_ttbar_example.h5.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pairhunt.assign.baselines import Chi2
from pairhunt.evaluate import markdown_table, summarise
from pairhunt.slot_matching import best_correct, canonical, reconstructable
from pairhunt.topology import load_topology
from pairhunt.train.data import from_spanet_h5
from pairhunt.train.config import ModelConfig
from pairhunt.train.trainer import Trainer, TrainConfig, decode_outputs, load_run, predict

ROOT = Path(__file__).resolve().parents[1]


def table(slots: np.ndarray, data, topology) -> dict:
    recon = reconstructable(data.targets, topology)
    best = best_correct(canonical(slots, topology), canonical(data.targets, topology), recon, topology)
    return summarise(data.multiplicity, recon, best, topology)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/spanet_examples/full_hadronic_ttbar_example.h5"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/spanet_example"))
    args = parser.parse_args()

    topology = load_topology(ROOT / "examples/spanet/full_hadronic_ttbar.yaml")
    data = from_spanet_h5(args.data, topology)
    train, test = data.split(0.8, args.seed)
    run_dir = Path(args.output + "_run")
    Trainer(topology, train, run_dir, ModelConfig(), TrainConfig(epochs=args.epochs, batch_size=256, seed=args.seed)).fit()
    model, _, _ = load_run(run_dir)
    spanet = decode_outputs(predict(model, test), test.mask, topology)
    chi2 = Chi2().assign(test.kinematics, topology)
    chi2_slots = np.full_like(test.targets, -1)
    for p in range(topology.n_parents):
        for k in range(topology.max_products):
            event, jet = np.nonzero((chi2.parent == p) & (chi2.product == k))
            chi2_slots[event, p, k] = jet
    methods = {"spanet": table(spanet, test, topology), "chi2": table(chi2_slots, test, topology)}
    report = {"train_events": len(train), "test_events": len(test), "epochs": args.epochs, "seed": args.seed, "methods": methods}
    Path(args.output + ".json").write_text(json.dumps(report, indent=2) + "\n")
    bins = list(methods["spanet"])
    entry = {"methods": methods, "evaluated_events": len(test), "join": {}}
    markdown = markdown_table("SPANet example ttbar, 20 % test split", entry, bins)
    Path(args.output + ".md").write_text(markdown + "\n")
    print(markdown)


if __name__ == "__main__":
    main()
