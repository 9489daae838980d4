"""Compare with SPANet's own code (PyPI package ``spanet``) on pairhunt's generated events.

SPANet lives in its own virtual environment. spanet 2.1.1 needs pytorch-lightning 1.8
(``pytorch_lightning.profiler``, ``_RICH_AVAILABLE``), setuptools < 81 (``pkg_resources``) and the
numpy aliases removed in numpy 1.24 (``np.int``, ``np.object``: restored by a sitecustomize.py in
that venv, nothing of SPANet is changed); its data loader needs at least one worker process:

    python -m venv spanet-venv
    spanet-venv/bin/pip install torch==2.13.0 spanet==2.1.1 h5py "pytorch-lightning==1.8.6" "setuptools>=77.0.3,<81"
    printf 'import numpy\nfor n, t in (("int", int), ("float", float), ("bool", bool), ("object", object), ("str", str), ("complex", complex)):\n    hasattr(numpy, n) or setattr(numpy, n, t)\n' \
        > "$(spanet-venv/bin/python -c 'import site; print(site.getsitepackages()[0])')/sitecustomize.py"
    # 1. pairhunt's events in SPANet's HDF5 layout (raw pt, eta, phi, mass, btag; jet targets)
    python benchmarks/spanet_reference.py convert ttbar_train.root train.h5 --min-jets 4
    python benchmarks/spanet_reference.py convert ttbar_test.root test.h5
    # 2. SPANet's training and prediction (its CLI, its defaults but for the options file)
    spanet-venv/bin/python -m spanet.train -ef examples/spanet/full_hadronic_ttbar.yaml \
        -of benchmarks/spanet_reference_options.json -tf train.h5 -l spanet_logs -n ttbar --gpus 0
    spanet-venv/bin/python -m spanet.predict spanet_logs/ttbar/version_0 predicted.h5 -tf test.h5
    # 3. score both with pairhunt's definitions
    python benchmarks/spanet_reference.py score test.h5 predicted.h5 --output benchmarks/results/spanet_reference

On SPANet's own example file, the 80/20 split of ``benchmarks/spanet_example.py`` (same seed, same
events) replaces step 1:

    python benchmarks/spanet_reference.py split-example ../shared/data/spanet_examples/full_hadronic_ttbar_example.h5 \
        example_train.h5 example_test.h5 --seed 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np

from pairhunt.evaluate import markdown_table, summarise
from pairhunt.slot_matching import best_correct, canonical, reconstructable
from pairhunt.topology import load_topology
from pairhunt.train.data import from_nanoaod

TOPOLOGY = "ttbar_allhad"
PRODUCTS = ("q1", "q2", "b")


def convert(source: str, output: str, min_jets: int | None) -> None:
    """Generated ROOT file -> SPANet HDF5 (INPUTS/Source/*, TARGETS/t1|t2/q1,q2,b)."""
    topology = load_topology(TOPOLOGY)
    data = from_nanoaod([source], topology, min_jets=min_jets)
    jets = data.kinematics
    with h5py.File(output, "w") as handle:
        inputs = handle.create_group("INPUTS/Source")
        inputs["MASK"] = jets.mask
        for name in ("pt", "eta", "phi", "mass"):
            inputs[name] = getattr(jets, name).astype(np.float32)
        inputs["btag"] = jets.features["btag"].astype(np.float32)
        for p, parent in enumerate(("t1", "t2")):
            for k, product in enumerate(PRODUCTS):
                handle[f"TARGETS/{parent}/{product}"] = data.targets[:, p, k]
    print(f"wrote {output}: {len(data)} events")


def split_example(source: str, train: str, test: str, seed: int) -> None:
    """SPANet's example file split as ``TrainingData.split(0.8, seed)`` splits it, every dataset copied."""
    with h5py.File(source) as handle:
        n_events = len(handle["INPUTS/Source/MASK"])
        order = np.random.default_rng(seed).permutation(n_events)
        cut = int(round(0.8 * n_events))
        for output, rows in ((train, np.sort(order[:cut])), (test, np.sort(order[cut:]))):
            with h5py.File(output, "w") as out:
                handle.visititems(lambda name, item: _copy_rows(out, name, item, rows))
            print(f"wrote {output}: {len(rows)} events")


def _copy_rows(out: h5py.File, name: str, item, rows: np.ndarray) -> None:
    if isinstance(item, h5py.Dataset):
        out[name] = np.asarray(item)[rows]


def slots(handle: h5py.File) -> np.ndarray:
    """``[events, 2, 3]`` jet per slot; spanet 2.1.1 on Python 3.11 names the group ``SpecialKey.Targets``."""
    group = handle["TARGETS"] if "TARGETS" in handle else handle["SpecialKey.Targets"]
    return np.stack([np.stack([np.asarray(group[f"{t}/{q}"]) for q in PRODUCTS], axis=1) for t in ("t1", "t2")], axis=1)


def score(test: str, predicted: str, output: str, title: str) -> None:
    """pairhunt's efficiency table of SPANet's predictions on the test file."""
    topology = load_topology(TOPOLOGY)
    with h5py.File(test) as t, h5py.File(predicted) as p:
        truth, prediction = slots(t), slots(p)
        multiplicity = np.asarray(t["INPUTS/Source/MASK"]).sum(axis=1)
    recon = reconstructable(truth, topology)
    selected = multiplicity >= topology.n_assigned
    best = best_correct(canonical(prediction, topology), canonical(truth, topology), recon, topology)
    cells = summarise(multiplicity[selected], recon[selected], best[selected], topology)
    report = {"test_events": int(selected.sum()), "methods": {"spanet_reference": cells}}
    Path(output + ".json").write_text(json.dumps(report, indent=2) + "\n")
    entry = {"methods": report["methods"], "evaluated_events": int(selected.sum()), "join": {}}
    markdown = markdown_table(title, entry, list(cells))
    Path(output + ".md").write_text(markdown)
    print(markdown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    c = commands.add_parser("convert")
    c.add_argument("source")
    c.add_argument("output")
    c.add_argument("--min-jets", type=int)
    e = commands.add_parser("split-example")
    e.add_argument("source")
    e.add_argument("train")
    e.add_argument("test")
    e.add_argument("--seed", type=int, default=1)
    s = commands.add_parser("score")
    s.add_argument("test")
    s.add_argument("predicted")
    s.add_argument("--output", default="benchmarks/results/spanet_reference")
    s.add_argument("--title", default="SPANet 2.1.1 on pairhunt's ttbar test set")
    args = parser.parse_args()
    if args.command == "convert":
        convert(args.source, args.output, args.min_jets)
    elif args.command == "split-example":
        split_example(args.source, args.train, args.test, args.seed)
    else:
        score(args.test, args.predicted, args.output, args.title)


if __name__ == "__main__":
    main()
