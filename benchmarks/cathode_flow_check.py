"""How good is CATHODE's background model, on background alone? A classifier (the methods' own,
k-fold, out of fold) is asked to tell the signal region's QCD from each candidate background
model; an AUC of 0.5 means it cannot. Candidates: the flow conditioned on the mass, the
unconditional flow (both on decorrelated features, trained on half of the sidebands as
``cathode`` does), the sideband events themselves (what CWoLa compares with), and other true QCD
of the signal region (the idealised detector's background; the floor).

    python benchmarks/cathode_flow_check.py --qcd-run RUN --data qcd_a --reference qcd_b qcd_c \
        --window 1700 2200 --seeds 201 202 203 204 205 206 --output benchmarks/results/cathode_flow_check_2tev.json

Pseudo-data are drawn as in ``benchmarks/anomaly_injection.py`` (QCD unweighted by hit-or-miss),
with seeds the injection benchmark does not use.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from pairhunt.anomaly import SearchConfig, Window, kfold_scores, load_sample
from pairhunt.anomaly.flow import BackgroundFlow, sample_masses
from pairhunt.anomaly.methods import _features
from pairhunt.anomaly.regions import SIDEBAND, SIGNAL_REGION


def weighted_auc(scores: np.ndarray, labels: np.ndarray, weight: np.ndarray) -> float:
    """P(score of a label-1 event > score of a label-0 event), with weights."""
    order = np.argsort(scores)
    labels, weight = labels[order], weight[order]
    negatives = np.cumsum(weight * (labels == 0))
    positive = weight * (labels == 1)
    return float((positive * (negatives - 0.5 * weight * (labels == 0))).sum() / (positive.sum() * negatives[-1]))


def separability(region: np.ndarray, model: np.ndarray, seed: int, model_weight: np.ndarray | None = None) -> float:
    """Out-of-fold AUC of signal-region events (label 1) against a background model (label 0),
    both classes weighted to the same total."""
    x = np.concatenate([region, model])
    labels = np.concatenate([np.ones(len(region)), np.zeros(len(model))])
    weight = np.concatenate([np.ones(len(region)), np.ones(len(model)) if model_weight is None else model_weight])
    scores, _ = kfold_scores(x, labels, weight, 5, seed)
    weight = weight / np.where(labels == 1, weight[labels == 1].mean(), weight[labels == 0].mean())
    return weighted_auc(scores, labels, weight)


def check(background, reference, window: Window, seed: int, config: SearchConfig) -> dict:
    data = background.unweighted(seed)
    roles = window.roles(data.mass)
    sideband, region = roles == SIDEBAND, roles == SIGNAL_REGION
    truth = reference.subset(window.roles(reference.mass) == SIGNAL_REGION)
    x, x_truth = _features(data, window, config, truth)
    learnt = sideband & (np.random.default_rng(seed).random(len(data)) < 0.5)
    n_samples = config.oversample * int(region.sum())
    masses = sample_masses(data.mass[region], n_samples, window.low, window.high, seed + 1)
    conditional = BackgroundFlow(x[learnt], data.mass[learnt], seed, config.flow).sample(n_samples, seed + 2, masses)
    unconditional = BackgroundFlow(x[learnt], None, seed, config.flow).sample(n_samples, seed + 2)
    return {
        "seed": seed, "signal_region": int(region.sum()), "sideband_events_learnt": int(learnt.sum()),
        "conditional_flow": separability(x[region], conditional, seed),
        "unconditional_flow": separability(x[region], unconditional, seed),
        "sidebands": separability(x[region], x[sideband], seed),
        "true_qcd": separability(x[region], x_truth, seed, truth.weight),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qcd-run", required=True)
    parser.add_argument("--data", nargs="+", required=True, help="QCD datasets that make the pseudo-data")
    parser.add_argument("--reference", nargs="+", required=True, help="other QCD datasets: the signal region's true background")
    parser.add_argument("--assignment", default="mass_asymmetry_6")
    parser.add_argument("--window", nargs=2, type=float, required=True, metavar=("LOW", "HIGH"))
    parser.add_argument("--seeds", nargs="+", type=int, default=[201, 202, 203])
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)

    background = load_sample(args.qcd_run, args.assignment, args.data)
    reference = load_sample(args.qcd_run, args.assignment, args.reference, list(background.names))
    window = Window(*args.window)
    rows = []
    for seed in args.seeds:
        rows.append(check(background, reference, window, seed, SearchConfig(seed=seed)))
        print(", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()), flush=True)
    models = ("conditional_flow", "unconditional_flow", "sidebands", "true_qcd")
    summary = {m: {"mean": float(np.mean([r[m] for r in rows])), "std": float(np.std([r[m] for r in rows]))} for m in models}
    print("AUC, signal region's QCD against: " + "; ".join(f"{m} {s['mean']:.3f} ± {s['std']:.3f}" for m, s in summary.items()))
    Path(args.output).write_text(json.dumps({"window": window.to_dict(), "rows": rows, "summary": summary}))


if __name__ == "__main__":
    main()
