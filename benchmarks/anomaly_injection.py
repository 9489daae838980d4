"""CWoLa hunting and CATHODE against the idealised and supervised classifiers, on QCD pseudo-data
with gluino pairs injected at several signal fractions (the LHC Olympics R&D convention), and on
background-only pseudo-data (does the method make a bump?).

    python benchmarks/anomaly_injection.py --qcd-run RUN --data qcd_a --reference qcd_b \
        --signal-run RUN_SIG --signal gluino1000 --assignment abc --window 800 1040 \
        --fractions 0.003 0.01 0.03 --seeds 5 --nulls 20 --output benchmarks/results/anomaly_injection.json

Pseudo-data: the ``--data`` QCD events unweighted by hit-or-miss (a different draw per seed, no
event repeated), plus signal events drawn from one half of the signal sample; the supervised
classifier trains on the other half. The idealised detector's background is ``--reference``
(QCD events distinct from the data's, with their weights). The signal fraction is S / B in the
signal region. Local significances come from a dijet fit to the sidebands after each cut; the
window is fixed in advance, so for the null pseudo-experiments local and global significance are
one (no look-elsewhere).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pairhunt.anomaly import (
    AnomalySample, SearchConfig, Window, cathode, cwola, idealised, keep_threshold, load_sample, mass_correlations, max_sic,
    sculpting, sic_curve, sideband_significance, supervised,
)
from pairhunt.anomaly.features import FEATURES
from pairhunt.anomaly.regions import OUTSIDE, SIGNAL_REGION

KEEP = (0.2, 0.1, 0.05, 0.02)  # fractions of the analysis range's events a cut keeps
REPORTED = "0.1"  # the cut the summaries (and the toys) are for, unless --keep says another of KEEP
MIN_BACKGROUND = 0.01  # max SIC over ε_B >= 1 %: below, the SR holds ~20 QCD events


def pseudo_data(background: AnomalySample, signal: AnomalySample, window: Window, fraction: float, seed: int):
    """Unweighted QCD plus signal events so that S / B in the signal region is ``fraction``;
    returns the data and a truth mask of its signal events."""
    data = background.unweighted(seed)
    in_region = window.roles(data.mass) == SIGNAL_REGION
    signal_efficiency = np.mean(window.roles(signal.mass) == SIGNAL_REGION)
    n_signal = int(round(fraction * in_region.sum() / signal_efficiency))
    rng = np.random.default_rng(seed + 7)
    chosen = signal.subset(rng.choice(len(signal), size=n_signal, replace=False))
    chosen = chosen.with_weight(np.ones(n_signal))
    truth = np.concatenate([np.zeros(len(data), dtype=bool), np.ones(n_signal, dtype=bool)])
    return AnomalySample.concatenate([data, chosen]), truth


def evaluate(
    scores: np.ndarray, data: AnomalySample, truth: np.ndarray, window: Window, toys: int = 0, reported: str = REPORTED
) -> dict:
    """Significance after each cut (from ``toys`` pseudo-datasets too at the ``reported`` cut), and
    (with signal injected) the SIC curve in the signal region."""
    roles = window.roles(data.mass)
    result = {"cuts": {}}
    for keep in KEEP:
        threshold = keep_threshold(np.nan_to_num(scores, nan=-1.0), roles, data.weight, keep)
        passed = (roles != OUTSIDE) & (np.nan_to_num(scores, nan=-1.0) >= threshold)
        cut = sideband_significance(data.mass[passed], data.weight[passed], window, toys=toys if str(keep) == reported else 0)
        cut["signal_in_region"] = int((passed & truth & (roles == SIGNAL_REGION)).sum())
        cut["sculpting"] = sculpting(data.mass[~truth], data.weight[~truth], passed[~truth], window.edges())
        result["cuts"][str(keep)] = cut
    region = roles == SIGNAL_REGION
    if truth[region].any():
        eps_s, eps_b, sic = sic_curve(scores[region], truth[region], data.weight[region])
        result["max_sic"] = max_sic(eps_s, eps_b, sic, MIN_BACKGROUND)
        result["sic_curve"] = {"eps_s": np.round(eps_s, 4).tolist(), "eps_b": np.round(eps_b, 5).tolist()}
    return result


def run_one(methods, background, reference, injected, training_signal, window, fraction, seed, config, toys=0, reported=REPORTED) -> dict:
    data, truth = pseudo_data(background, injected, window, fraction, seed)
    roles = window.roles(data.mass)
    out = {
        "fraction": fraction, "seed": seed,
        "background_in_region": int(((roles == SIGNAL_REGION) & ~truth).sum()),
        "signal_in_region": int(((roles == SIGNAL_REGION) & truth).sum()),
        "plain": sideband_significance(data.mass[roles != OUTSIDE], data.weight[roles != OUTSIDE], window, toys=toys),
    }
    seeded = SearchConfig(folds=config.folds, seed=seed, oversample=config.oversample, classifier=config.classifier, flow=config.flow)
    for method in methods:
        start = time.perf_counter()
        if method == "cwola":
            scores = cwola(data, window, seeded)
        elif method == "cathode":
            scores, _ = cathode(data, window, seeded)
        elif method == "idealised":
            scores = idealised(data, reference, window, seeded)
        else:
            scores = supervised(data, training_signal, reference, window, seeded)
        out[method] = evaluate(scores.data, data, truth, window, toys, reported)
        out[method]["seconds"] = time.perf_counter() - start
    return out


def local_z(fit: dict) -> float:
    """From the toys where they were run, else asymptotic."""
    return fit.get("local_significance_toys", fit["local_significance"])


def summarise(results: list[dict], methods: list[str], keep: str) -> list[str]:
    lines = ["| S/B in SR | plain Z | " + " | ".join(f"{m} Z (keep {keep}) / max SIC" for m in methods) + " |"]
    lines.append("| --- " * (2 + len(methods)) + "|")
    for fraction in sorted({r["fraction"] for r in results}):
        rows = [r for r in results if r["fraction"] == fraction]
        cell = lambda values: f"{np.mean(values):.2f} ± {np.std(values):.2f}"
        parts = [f"{fraction:g}", cell([local_z(r["plain"]) for r in rows])]
        for m in methods:
            z = cell([local_z(r[m]["cuts"][keep]) for r in rows])
            sics = [r[m].get("max_sic", np.nan) for r in rows]
            parts.append(f"{z} / {np.nanmean(sics):.2f}" if np.isfinite(sics).any() else z)
        lines.append("| " + " | ".join(parts) + " |")
    return lines


def summarise_nulls(results: list[dict], methods: list[str], keep: str) -> list[str]:
    """How often background alone reaches Z >= 2 in the fixed window (local = global here)."""
    lines = [f"background only, {len(results)} pseudo-experiments (keep {keep}):"]
    for m in methods:
        z = np.array([local_z(r[m]) if m == "plain" else local_z(r[m]["cuts"][keep]) for r in results])
        lines.append(f"  {m}: Z >= 2 in {int((z >= 2).sum())} of {len(z)}, median Z {np.median(z):.2f}, max {z.max():.2f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qcd-run", required=True)
    parser.add_argument("--data", nargs="+", required=True, help="QCD datasets of --qcd-run that make the pseudo-data")
    parser.add_argument("--reference", nargs="+", required=True, help="QCD datasets for the idealised/supervised background")
    parser.add_argument("--signal-run", required=True)
    parser.add_argument("--signal", required=True)
    parser.add_argument("--assignment", default="abc", help="method whose candidates give m and x")
    parser.add_argument("--features", nargs="+", help=f"of {sorted(FEATURES)} (default: pairhunt's defaults)")
    parser.add_argument("--window", nargs=2, type=float, required=True, metavar=("LOW", "HIGH"))
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.003, 0.01, 0.03])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=1, help="seeds of the injected pseudo-data count up from here")
    parser.add_argument("--nulls", type=int, default=20, help="background-only pseudo-experiments")
    parser.add_argument("--first-null-seed", type=int, default=101, help="seeds of the background-only pseudo-data count up from here")
    parser.add_argument("--methods", nargs="+", default=["cwola", "cathode", "idealised", "supervised"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--keep", default=REPORTED, choices=[str(k) for k in KEEP], help=f"the cut whose fit gets the toys and the summaries (default {REPORTED})"
    )
    parser.add_argument("--toys", type=int, default=0, help="pseudo-datasets per sideband fit (no cut and the --keep cut); 0: asymptotic Z")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)

    background = load_sample(args.qcd_run, args.assignment, args.data, args.features)
    reference = load_sample(args.qcd_run, args.assignment, args.reference, list(background.names))
    signal = load_sample(args.signal_run, args.assignment, [args.signal], list(background.names))
    half = np.random.default_rng(0).random(len(signal)) < 0.5
    injected, training_signal = signal.subset(half), signal.subset(~half)
    window = Window(*args.window)
    config = SearchConfig(folds=args.folds)
    everything = load_sample(args.qcd_run, args.assignment, args.data, ["all"])
    everything = everything.subset(window.roles(everything.mass) != OUTSIDE)
    report = {
        "window": window.to_dict(), "assignment": args.assignment, "features": list(background.names), "toys": args.toys, "keep": args.keep,
        "mass_correlations_qcd_in_range": mass_correlations(everything.mass, everything.features, everything.weight, list(everything.names)),
        "events": {"data_pool": len(background), "reference": len(reference), "signal_injection": len(injected), "signal_training": len(training_signal)},
        "injections": [], "nulls": [],
    }
    output = Path(args.output)
    for fraction in args.fractions:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            result = run_one(args.methods, background, reference, injected, training_signal, window, fraction, seed, config, args.toys, args.keep)
            report["injections"].append(result)
            print(f"f={fraction:g} seed={seed}: plain Z {local_z(result['plain']):.2f}; "
                  + ", ".join(f"{m} Z {local_z(result[m]['cuts'][args.keep]):.2f} SIC {result[m].get('max_sic', np.nan):.2f}" for m in args.methods), flush=True)
            output.write_text(json.dumps(report))
    nulls = [m for m in args.methods if m in ("cwola", "cathode")]
    for seed in range(args.first_null_seed, args.first_null_seed + args.nulls):
        result = run_one(nulls, background, reference, injected, training_signal, window, 0.0, seed, config, args.toys, args.keep)
        report["nulls"].append(result)
        print(f"null seed={seed}: plain Z {local_z(result['plain']):.2f}; "
              + ", ".join(f"{m} Z {local_z(result[m]['cuts'][args.keep]):.2f}" for m in nulls), flush=True)
        output.write_text(json.dumps(report))
    print("\n".join(summarise(report["injections"], args.methods, args.keep)))
    if report["nulls"]:
        print("\n".join(summarise_nulls(report["nulls"], ["plain", *nulls], args.keep)))


if __name__ == "__main__":
    main()
