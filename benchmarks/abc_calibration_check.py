"""Is the mass-decorrelated ABC score flat on held-out QCD, and what would make it so?

Why: on 15 held-out p̂T⁴ QCD files (96k effective events; ``abc_reference.py``) the cut QCD mass
shape of the shipped model's decorrelated score is not flat (keep 50 %: p < 0.002), where on five
of them it was borderline. The score is the anomaly score's percentile among calibration QCD
events of the same average mass, from a table of per-bin quantiles (``MassCalibration``); its
flatness can fail from the calibration's statistics (bins of ~500 events) or from its shape.

This script rebuilds the table from the model's own ``anomaly_score`` and average parent mass
(the argmax assignment's, as in the graph) on calibration QCD with ``calibration_table``, applies
it with ``MassCalibration`` to other (test) QCD, and measures the cut shape against flat as
``abc_reference.py`` does, for several bin counts and smoothings, beside the graph's own decorrelated output on
the same test events. With ``--calibration-replicas N`` each table is also remade on N Poisson-bootstrap
replicas of the calibration events: the spread of the test's kept fraction per mass bin is the noise
the table itself brings, which the chi2 (test events only) does not count; the script then also gives
the chi2 with that variance added and the plain chi2 that both noises together predict.
With ``--folds K`` instead of ``--test`` the calibration files are split into K groups by file (every
K-th file), each table is made on K-1 groups and tested on the one left out, and the chi2 of both cuts
is summed over the K tests: table variants are chosen on the calibration pool alone, so that a
separate test sample stays untouched for judging the choice. ``--repeats R`` splits the files R ways
(the first every K-th file, then seeded permutations) and averages the sums: a single split's sum is
too noisy to choose between close variants.

    python benchmarks/abc_calibration_check.py --model models/pair_abc.onnx \\
        --calibration qcd_a.root qcd_b.root --test qcd_c.root --bins 60 120 --smooth 0 5 10 --output check.json
    python benchmarks/abc_calibration_check.py --calibration qcd_*.root --folds 5 --repeats 4 --bins 480 --smooth 40 80 --output cv.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from abc_reference import (
    FLAT_CUT_TOYS, KEEP_FRACTIONS, SHAPE_BINS, TOPOLOGY, Sample, _floats, average_mass, effective, select, shape_ratio,
    weighted_quantile,
)
from pairhunt.assign.abc import AbcAssignment
from pairhunt.topology import load_topology
from pairhunt.train.abc_model import MassCalibration
from pairhunt.train.abc_trainer import calibration_table

SCORE, DECORRELATED = "anomaly_score", "anomaly_score_decorrelated"


def scored(files: list[str], model: AbcAssignment) -> dict[str, np.ndarray]:
    """Selected events of ``files``: weight, average parent mass, the model's raw and decorrelated score."""
    topology = load_topology(TOPOLOGY)
    events = select(Sample(name="qcd", files=files), topology, list(model.required_features(topology)))
    assignment = model.assign(events.jets, topology)
    outputs = model.outputs(events.jets)
    return {
        "weight": events.weight,
        "mass": average_mass(events.jets, assignment, topology).astype(np.float64),
        SCORE: outputs[SCORE].astype(np.float64),
        DECORRELATED: outputs[DECORRELATED].astype(np.float64),
    }


def apply_table(table: dict, score: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """The decorrelated score ``table`` gives, computed by the graph's own module."""
    calibration = MassCalibration()
    calibration.set(torch.tensor(table["centres"]), torch.tensor(table["quantiles"]), torch.tensor(table["high_mass_power"]))
    with torch.no_grad():
        return calibration(torch.tensor(score, dtype=torch.float32), torch.tensor(mass, dtype=torch.float32)).numpy().astype(np.float64)


def kept(decorrelated: np.ndarray, test: dict, keep: float) -> np.ndarray:
    """The test events a cut keeping ``keep`` of the test QCD's weight keeps."""
    finite = np.isfinite(test["mass"])
    return decorrelated > weighted_quantile(decorrelated[finite], test["weight"][finite], 1 - keep)


def bin_efficiency(test: dict, keep: np.ndarray) -> np.ndarray:
    """Weighted fraction of each mass bin's test QCD that the cut keeps."""
    finite = np.isfinite(test["mass"])
    mass, weight = test["mass"][finite], test["weight"][finite]
    total = np.histogram(mass, bins=SHAPE_BINS, weights=weight)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.histogram(mass[keep[finite]], bins=SHAPE_BINS, weights=weight[keep[finite]])[0] / total


def calibration_noise(calibration: dict, usable: np.ndarray, test: dict, bins: int, smooth: int, replicas: int, seed: int) -> dict:
    """Per keep fraction, the variance of each bin's kept fraction of the test QCD over Poisson-bootstrap
    replicas of the calibration sample: the noise the table brings, which the chi2 (test events only) leaves out."""
    rng = np.random.default_rng(seed)
    score, mass, weight = calibration[SCORE][usable], calibration["mass"][usable], calibration["weight"][usable]
    efficiencies = {keep: [] for keep in KEEP_FRACTIONS}
    for _ in range(replicas):
        table = calibration_table(score, mass, weight * rng.poisson(1.0, len(weight)), bins=bins, smooth=smooth)
        decorrelated = apply_table(table, test[SCORE], test["mass"])
        for keep in KEEP_FRACTIONS:
            efficiencies[keep].append(bin_efficiency(test, kept(decorrelated, test, keep)))
    return {keep: np.var(np.array(values), axis=0, ddof=1) for keep, values in efficiencies.items()}


def flatness(decorrelated: np.ndarray, test: dict, noise: dict | None = None, flat_cut_toys: int = FLAT_CUT_TOYS) -> dict:
    """Cut shape against flat for cuts keeping ``KEEP_FRACTIONS`` of the test QCD's weight; with the
    calibration's ``noise`` also the chi2 against flat with that variance added, its chi2(ndf) p-value,
    and the plain chi2 that test and calibration noise together lead one to expect."""
    out = {}
    for keep in KEEP_FRACTIONS:
        ratio = shape_ratio(test["mass"], kept(decorrelated, test, keep), test["weight"], flat_cut_toys=flat_cut_toys)
        entry = {k: ratio[k] for k in ("efficiency", "chi2", "ndf", "p_value_flat", "ratio", "ratio_error", "used_in_chi2")}
        if noise is not None:
            eps, used = ratio["efficiency"], np.array(ratio["used_in_chi2"])
            finite = np.isfinite(test["mass"])
            total = np.histogram(test["mass"][finite], bins=SHAPE_BINS, weights=test["weight"][finite])[0]
            s2 = np.histogram(test["mass"][finite], bins=SHAPE_BINS, weights=test["weight"][finite] ** 2)[0]
            with np.errstate(invalid="ignore", divide="ignore"):
                test_variance = eps * (1 - eps) * s2 / total**2
                deviation = (np.array(ratio["ratio"], dtype=float) * eps - eps) ** 2
            combined = float((deviation / (test_variance + noise[keep]))[used].sum())
            entry.update(
                calibration_to_test_variance=_floats(np.where(used, noise[keep] / test_variance, np.nan)),
                expected_chi2=float((1 + noise[keep] / test_variance)[used].sum() - 1),
                chi2_with_calibration_noise=combined,
                p_chi2_with_calibration_noise=float(stats.chi2.sf(combined, ratio["ndf"])),
                p_chi2_ndf=float(stats.chi2.sf(ratio["chi2"], ratio["ndf"])),
            )
        out[f"keep_{keep:g}"] = entry
    return out


def joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def fold_groups(files: list[str], folds: int, repeat: int) -> list[list[int]]:
    """File indices of each fold: repeat 0 takes every K-th file, later repeats a seeded permutation first."""
    order = np.arange(len(files)) if repeat == 0 else np.random.default_rng(repeat).permutation(len(files))
    return [sorted(order[i::folds].tolist()) for i in range(folds)]


def cross_validate(args: argparse.Namespace, model: AbcAssignment, started: float) -> None:
    """Each (bins, smooth) table made on all groups of files but one and tested on that one; chi2 summed.
    With ``--repeats`` the files are split again in other seeded ways and the sums averaged: on 45 files
    one table's sum ranged from 235 to 330 over four splits, more than close variants differ by."""
    per_file = [scored([path], model) for path in args.calibration]
    splits = [fold_groups(args.calibration, args.folds, r) for r in range(args.repeats)]
    results = {
        "command": shlex.join([sys.executable, *sys.argv]), "model": args.model, "folds": args.folds, "repeats": args.repeats,
        "files": [{"file": path, "selected": len(s["weight"]), "effective": effective(s["weight"])} for path, s in zip(args.calibration, per_file)],
        "splits": splits,
        "variants": {},
    }
    for bins in args.bins:
        for smooth in args.smooth:
            sums = []
            for split in splits:
                groups = [joined([per_file[i] for i in group]) for group in split]
                total = 0.0
                for i, test in enumerate(groups):
                    calibration = joined([g for j, g in enumerate(groups) if j != i])
                    usable = np.isfinite(calibration["mass"]) & np.isfinite(calibration[SCORE])
                    table = calibration_table(
                        calibration[SCORE][usable], calibration["mass"][usable], calibration["weight"][usable], bins=bins, smooth=smooth
                    )
                    total += sum(c["chi2"] for c in flatness(apply_table(table, test[SCORE], test["mass"]), test, flat_cut_toys=0).values())
                sums.append(total)
            results["variants"][f"bins_{bins}_smooth_{smooth}"] = {"chi2_sum_per_split": sums, "chi2_sum_mean": float(np.mean(sums))}
    results["wall_seconds"] = time.perf_counter() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    for name, variant in results["variants"].items():
        cells = "  ".join(f"{c:.1f}" for c in variant["chi2_sum_per_split"])
        print(f"{name:>22}  chi2 of both cuts summed over {args.folds} folds: mean {variant['chi2_sum_mean']:.1f} over "
              f"{args.repeats} splits ({cells})")


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    model = AbcAssignment(model=args.model, name="pairhunt_abc", threads=args.threads, device="cpu")
    if args.folds:
        cross_validate(args, model, started)
        return
    calibration, test = scored(args.calibration, model), scored(args.test, model)
    usable = np.isfinite(calibration["mass"]) & np.isfinite(calibration[SCORE])
    results = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "model": args.model,
        "calibration": {"files": args.calibration, "selected": int(usable.sum()), "effective": effective(calibration["weight"][usable])},
        "test": {"files": args.test, "selected": len(test["weight"]), "effective": effective(test["weight"])},
        "variants": {"graph": flatness(test[DECORRELATED], test)},
    }
    for bins in args.bins:
        for smooth in args.smooth:
            table = calibration_table(
                calibration[SCORE][usable], calibration["mass"][usable], calibration["weight"][usable], bins=bins, smooth=smooth
            )
            name = f"bins_{bins}" + (f"_smooth_{smooth}" if smooth else "")
            noise = None
            if args.calibration_replicas:
                noise = calibration_noise(calibration, usable, test, bins, smooth, args.calibration_replicas, args.bootstrap_seed)
            results["variants"][name] = flatness(apply_table(table, test[SCORE], test["mass"]), test, noise)
    results["wall_seconds"] = time.perf_counter() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"calibration: {results['calibration']['selected']} selected ({results['calibration']['effective']:.0f} effective); "
          f"test: {results['test']['selected']} ({results['test']['effective']:.0f} effective)")
    for name, cuts in results["variants"].items():
        cells = [f"{k}: {c['chi2']:.1f}/{c['ndf']}, p = {c['p_value_flat']:.3f}" for k, c in cuts.items()]
        cells += [
            f"{k} with calibration noise: expected {c['expected_chi2']:.1f}, chi2 {c['chi2_with_calibration_noise']:.1f}/{c['ndf']}, "
            f"p = {c['p_chi2_with_calibration_noise']:.3f} (plain chi2(ndf) p = {c['p_chi2_ndf']:.3f})"
            for k, c in cuts.items() if "expected_chi2" in c
        ]
        print(f"{name:>22}  " + "   ".join(cells))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/pair_abc.onnx")
    parser.add_argument("--calibration", nargs="+", required=True, help="weighted QCD files the table is made from")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--test", nargs="+", help="other weighted QCD files the cut shape is measured on")
    where.add_argument("--folds", type=int, help="cross-validate on the calibration files alone, split by file into this many groups")
    parser.add_argument("--bins", nargs="+", type=int, default=[30, 60, 120, 240], help="average-mass bin counts to try")
    parser.add_argument("--smooth", nargs="+", type=int, default=[0], help="smoothing half-widths in bins (0: none)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="with --folds: split the files this many ways (the first every K-th file, then seeded permutations)")
    parser.add_argument("--calibration-replicas", type=int, default=0,
                        help="Poisson-bootstrap replicas of the calibration sample that measure the table's own noise (0: none)")
    parser.add_argument("--bootstrap-seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if args.folds is not None and args.folds < 2:
        parser.error("--folds must be at least 2")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


if __name__ == "__main__":
    main()
