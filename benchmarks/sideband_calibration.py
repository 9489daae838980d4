"""How far the sideband fit's local significance can be trusted at a given window and cut size.

The asymptotic local Z of ``pairhunt anomaly`` (and of ``benchmarks/anomaly_injection.py``) is a
Poisson count against the dijet fit's prediction with its linearised uncertainty. Where a cut
leaves few events, above all in the upper sideband, that prediction scatters more than its
uncertainty says. With ``--toys N`` the same is measured for the toy-based Z instead. This measures the asymptotic Z on background alone, under score-blind random
cuts of the same kept fraction, on many pseudo-datasets drawn like the benchmark's (QCD unweighted
by hit-or-miss, seeds from 1001: never the benchmark's own), and maps measured Z values to
calibrated ones: Z_cal = Φ⁻¹(1 − P_null(Z ≥ z)).

    python benchmarks/sideband_calibration.py --qcd-run RUN --data qcd_a --assignment mass_asymmetry_6 \
        --window 1700 2200 --keep 1.0 0.1 --pseudo-datasets 400 --cuts 10 \
        --injection-results benchmarks/results/anomaly_injection_2tev_f03.json \
        --output benchmarks/results/sideband_calibration_2tev.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from pairhunt.anomaly import Window, keep_threshold, load_sample, sideband_significance
from pairhunt.anomaly.regions import OUTSIDE
from pairhunt.bumphunt.scan import significance

FIRST_SEED = 1001
THRESHOLDS = (1.0, 2.0, 2.5, 3.0, 3.5)


def null_significances(background, window: Window, keep: float, pseudo_datasets: int, cuts: int, toys: int = 0) -> np.ndarray:
    """Local Z of background-only pseudo-data after random cuts keeping ``keep`` of the range's
    events (no cut, one value per pseudo-dataset, when ``keep`` is 1): asymptotic, or from
    ``toys`` pseudo-datasets of each fit when > 0."""
    values = []
    for seed in range(FIRST_SEED, FIRST_SEED + pseudo_datasets):
        data = background.unweighted(seed)
        roles = window.roles(data.mass)
        for cut in range(1 if keep >= 1 else cuts):
            random_score = np.random.default_rng([seed, cut]).random(len(data))
            passed = (roles != OUTSIDE) & (random_score >= keep_threshold(random_score, roles, data.weight, keep))
            fit = sideband_significance(data.mass[passed], data.weight[passed], window, toys=toys, seed=seed)
            values.append(fit["local_significance_toys" if toys else "local_significance"])
    return np.asarray(values)


def calibrated(z: float, null: np.ndarray) -> tuple[float, bool]:
    """Z_cal of a measured ``z`` (one-sided, 0 for p >= 0.5, like the asymptotic one; a deficit
    stays 0) and whether it is only a lower bound (no null value reached z)."""
    if z <= 0:
        return 0.0, False
    reached = int(np.sum(null >= z))
    return float(significance((reached + 1) / (len(null) + 1))), reached == 0


def calibrate_injections(results: dict, nulls: dict[str, np.ndarray]) -> dict:
    """Per signal fraction and method, the mean asymptotic and calibrated Z of an anomaly_injection run."""
    out = {}
    for fraction in sorted({row["fraction"] for row in results["injections"]}):
        rows = [row for row in results["injections"] if row["fraction"] == fraction]
        methods = {"plain": ("1.0", lambda row: row["plain"]["local_significance"])}
        for method in ("cwola", "cathode", "idealised", "supervised"):
            if method in rows[0]:
                methods[method] = ("0.1", lambda row, m=method: row[m]["cuts"]["0.1"]["local_significance"])
        out[str(fraction)] = {}
        for method, (keep, value) in methods.items():
            if keep not in nulls:
                continue
            z = np.array([value(row) for row in rows])
            cal = [calibrated(v, nulls[keep]) for v in z]
            out[str(fraction)][method] = {
                "keep": float(keep), "asymptotic": z.tolist(), "calibrated": [c for c, _ in cal],
                "lower_bound": [b for _, b in cal],
                "mean_asymptotic": float(z.mean()), "mean_calibrated": float(np.mean([c for c, _ in cal])),
                "at_least_3_asymptotic": int(np.sum(z >= 3)), "at_least_3_calibrated": int(np.sum([c >= 3 for c, _ in cal])),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qcd-run", required=True)
    parser.add_argument("--data", nargs="+", required=True, help="QCD datasets of --qcd-run that make the pseudo-data")
    parser.add_argument("--assignment", default="mass_asymmetry_6")
    parser.add_argument("--window", nargs=2, type=float, required=True, metavar=("LOW", "HIGH"))
    parser.add_argument("--keep", nargs="+", type=float, default=[1.0, 0.1], help="kept fractions (1: no cut)")
    parser.add_argument("--pseudo-datasets", type=int, default=400)
    parser.add_argument("--cuts", type=int, default=10, help="random cuts per pseudo-dataset")
    parser.add_argument("--injection-results", help="an anomaly_injection.py JSON whose Z values to calibrate")
    parser.add_argument("--toys", type=int, default=0, help="measure the toy-based Z of pairhunt anomaly --toys instead of the asymptotic one")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    background = load_sample(args.qcd_run, args.assignment, args.data)
    window = Window(*args.window)
    report = {"window": window.to_dict(), "pseudo_datasets": args.pseudo_datasets, "cuts": args.cuts, "toys": args.toys, "null": {}}
    nulls = {}
    for keep in args.keep:
        null = null_significances(background, window, keep, args.pseudo_datasets, args.cuts, args.toys)
        nulls[str(keep)] = null
        tails = {str(t): float(np.mean(null >= t)) for t in THRESHOLDS}
        report["null"][str(keep)] = {"values": null.tolist(), "fraction_at_least": tails}
        print(f"keep {keep:g}, {len(null)} null values: " + ", ".join(
            f"P(Z >= {t:g}) = {tails[str(t)]:.4f} (nominal {stats.norm.sf(t):.4f})" for t in THRESHOLDS), flush=True)
    if args.injection_results:
        report["injections"] = calibrate_injections(json.loads(Path(args.injection_results).read_text()), nulls)
        for fraction, methods in report["injections"].items():
            for method, row in methods.items():
                print(f"S/B {fraction} {method}: mean Z {row['mean_asymptotic']:.2f} asymptotic, {row['mean_calibrated']:.2f} calibrated; "
                      f">= 3: {row['at_least_3_asymptotic']} / {row['at_least_3_calibrated']} of {len(row['asymptotic'])}")
    Path(args.output).write_text(json.dumps(report))


if __name__ == "__main__":
    main()
