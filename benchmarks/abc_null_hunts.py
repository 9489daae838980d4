"""Does the bump hunt find bumps that are not there? Background-only pseudo-data per method.

A method that sculpts QCD into a shape the dijet function cannot follow makes the hunt claim
excesses in background alone. Here each pseudo-dataset keeps QCD events by weight from a
generated QCD sample, each at most once (hit-or-miss, ``keep_by_weight``; mean ``--events``,
below the sample's effective entries so the template's own fluctuations stay small); every method reconstructs the same drawn events;
each spectrum is bump-hunted with its global significance. A well-behaved method claims a global
Z >= 2 in about 2.3 % of the pseudo-datasets, and should in at most 10 %.

Methods: pairhunt's ABC (ONNX), the same after a cut on its mass-decorrelated score, the
published ABC model (``--reference-dir``, as in ``abc_reference.py``, whose event selection and
reconstruction this script reuses) and six-jet minimal mass asymmetry.

    python benchmarks/abc_null_hunts.py --model models/pair_abc.onnx \\
        --reference-dir /work/reference/unsupervised-search --background qcd_test400.root \\
        --events 1500 --datasets 20 --output benchmarks/results/abc_null_hunts.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pairhunt.assign.abc import AbcAssignment
from pairhunt.bumphunt import Spectrum, bump_hunt
from pairhunt.bumphunt.pseudodata import keep_by_weight
from pairhunt.errors import PairhuntError
from pairhunt.topology import load_topology

DECORRELATED = "pairhunt_abc.anomaly_score_decorrelated"
EDGES = np.linspace(0.0, 3000.0, 76)  # the pair_abc topology's mass axis


def reference_benchmark():
    """``abc_reference.py`` beside this file, imported as a module (benchmarks/ is no package)."""
    path = Path(__file__).with_name("abc_reference.py")
    spec = importlib.util.spec_from_file_location("abc_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["abc_reference"] = module
    spec.loader.exec_module(module)
    return module


def hunted_masses(events, score_cut: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per hunt: the average mass of every selected event and whether the event enters the hunt."""
    finite = {name: np.isfinite(mass) for name, mass in events.mass.items()}
    hunts = {name: (events.mass[name], finite[name]) for name in ("pairhunt_abc", "reference_abc", "mass_asymmetry_6")}
    if DECORRELATED in events.scores:
        keep = finite["pairhunt_abc"] & (events.scores[DECORRELATED] >= score_cut)
        hunts[f"pairhunt_abc_score{score_cut:g}"] = (events.mass["pairhunt_abc"], keep)
    return hunts


def null_hunt(mass: np.ndarray, keep: np.ndarray, rows: np.ndarray, resolution: float, pseudo_experiments: int, seed: int) -> dict:
    """The bump hunt of the drawn events' spectrum: best window, local and global significance."""
    values = np.histogram(mass[rows][keep[rows]], bins=EDGES)[0].astype(np.float64)
    hunt = bump_hunt(Spectrum(EDGES, values, values.copy()), resolution, pseudo_experiments=pseudo_experiments, seed=seed)
    best = hunt.scan.best_window()
    return {
        "events": int(values.sum()),
        "window_gev": [best["low_gev"], best["high_gev"]],
        "local_significance": best["local_significance"],
        "global_significance": hunt.global_.to_dict()["global_significance"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/pair_abc.onnx")
    parser.add_argument("--reference-dir", type=Path, required=True, help="work tree of badeaa3/unsupervised-search")
    parser.add_argument("--background", nargs="+", required=True, help="weighted QCD ROOT files (one generator setting)")
    parser.add_argument("--events", type=float, default=1500.0, help="mean QCD events per pseudo-dataset")
    parser.add_argument("--datasets", type=int, default=20, help="background-only pseudo-datasets")
    parser.add_argument("--pseudo-experiments", type=int, default=100, help="for each global significance")
    parser.add_argument("--score-cut", type=float, default=0.5, help="on the mass-decorrelated score")
    parser.add_argument("--resolution", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/abc_null_hunts.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    bench = reference_benchmark()
    topology = load_topology(bench.TOPOLOGY)
    pairhunt = AbcAssignment(model=args.model, name=bench.PAIRHUNT, threads=args.threads, device="cpu")
    encoder, _ = bench.load_reference(args.reference_dir.resolve())
    events = bench.select(bench.Sample("qcd", args.background), topology, list(pairhunt.required_features(topology)))
    bench.reconstruct(events, pairhunt, bench.batch_major(encoder), topology, 512)
    effective = float(events.weight.sum() ** 2 / (events.weight**2).sum())
    if args.events >= effective:
        raise PairhuntError(f"--events {args.events:g} is not below the template's {effective:.0f} effective entries")
    rng = np.random.default_rng(args.seed)
    hunts = hunted_masses(events, args.score_cut)
    results = {name: [] for name in hunts}
    for dataset in range(args.datasets):
        rows = keep_by_weight(events.weight, args.events, rng)  # every event at most once
        for name, (mass, keep) in hunts.items():
            results[name].append(null_hunt(mass, keep, rows, args.resolution, args.pseudo_experiments, args.seed + dataset))
        print(f"dataset {dataset + 1}/{args.datasets}: " + ", ".join(f"{n} {r[-1]['global_significance']:.2f}" for n, r in results.items()), flush=True)
    summary = {
        name: {
            "global_z_at_least_2": sum(r["global_significance"] >= 2 for r in rows),
            "datasets": len(rows),
            "median_local_z": float(np.median([r["local_significance"] for r in rows])),
        }
        for name, rows in results.items()
    }
    output = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "template": {"files": args.background, "selected_events": int(len(events.weight)), "effective_events": effective},
        "summary": summary,
        "hunts": results,
        "wall_seconds": time.perf_counter() - started,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(output, indent=2) + "\n")
    print("\n| method | global Z >= 2 | median local Z |\n| --- | --- | --- |")
    for name, s in summary.items():
        print(f"| {name} | {s['global_z_at_least_2']} of {s['datasets']} | {s['median_local_z']:.2f} |")


if __name__ == "__main__":
    main()
