"""Throughput of the shipped ONNX model: the model alone (onnxruntime vs torch eager) and the
processor end to end (model vs chi2) while the number of jets grows, with the time split, and the
processor's assignment time (features + model + decode) over the bare session's on the same events.

    python benchmarks/model_throughput.py --sample TEST.root --model models/ttbar_allhad.onnx \
        --run-dir RUN_DIR --output benchmarks/results/model_throughput.json

One thread everywhere (events/s per core). ``--run-dir`` (the training run) enables the torch
eager comparison.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pairhunt.contract import JETS_INPUT, MASK_INPUT
from pairhunt.cutflow import Cutflow
from pairhunt.assign.decoding import decode_greedy
from pairhunt.inputs import select_jets
from pairhunt.assign.registry import make_method
from pairhunt.assign.onnx import cached_session
from pairhunt.processors import PairProcessor
from pairhunt.runner import normalise_files, run_fileset
from pairhunt.topology import load_topology

JET_COUNTS = range(6, 13)


def padded_batch(features: np.ndarray, mask: np.ndarray, n_jets: int, size: int = 4096):
    """``size`` events of real features padded or cut to ``n_jets`` (all jets marked real)."""
    rows = np.arange(size) % len(features)
    jets = np.zeros((size, n_jets, features.shape[2]), dtype=np.float32)
    width = min(n_jets, features.shape[1])
    jets[:, :width] = features[rows, :width]
    for extra in range(width, n_jets):  # more jets than the sample has: repeat real ones
        jets[:, extra] = features[rows, extra % width]
    return jets, np.ones((size, n_jets), dtype=bool)


def rate(function, events: int, repeat: int = 3) -> float:
    function()
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    return repeat * events / (time.perf_counter() - start)


def model_only(model_path: Path, events, run_dir: str | None) -> list[dict]:
    session = cached_session(model_path, threads=1, device="cpu")
    torch_model = None
    if run_dir:
        import torch

        from pairhunt.train.trainer import load_run

        torch.set_num_threads(1)
        torch_model = load_run(run_dir)[0]
    rows = []
    for n in JET_COUNTS:
        jets, mask = padded_batch(events.feature_matrix(session_features(model_path)), events.mask, n)
        row = {"jets": n}
        batches = [slice(s, s + 1024) for s in range(0, len(jets), 1024)]
        row["onnxruntime_events_per_s"] = round(rate(lambda: [session.run(None, {JETS_INPUT: jets[b], MASK_INPUT: mask[b]}) for b in batches], len(jets)))
        outputs = [session.run(None, {JETS_INPUT: jets[b], MASK_INPUT: mask[b]}) for b in batches]
        scores = [np.concatenate([o[p] for o in outputs]) for p in range(2)]
        row["decode_events_per_s"] = round(rate(lambda: decode_greedy(scores, mask), len(jets)))
        if torch_model is not None:
            import torch

            with torch.no_grad():
                tj, tm = torch.as_tensor(jets), torch.as_tensor(mask)
                row["torch_eager_events_per_s"] = round(rate(lambda: [torch_model(tj[b], tm[b]) for b in batches], len(jets)))
        rows.append(row)
        print(json.dumps(row))
    return rows


def session_features(model_path: Path) -> list[str]:
    from pairhunt.assign.onnx import read_contract

    return read_contract(model_path).features


def bare_session_seconds(events, topology, model_path: Path) -> float:
    """Seconds of ``InferenceSession.run`` alone (batches of 1,024) on the processor's inputs."""
    session = cached_session(model_path, threads=1, device="cpu")
    features = session_features(model_path)
    inputs, _ = select_jets(events, topology.jets, Cutflow(np.ones(len(events))), features)
    x, mask = inputs.feature_matrix(features), inputs.mask
    batches = [slice(s, s + 1024) for s in range(0, len(x), 1024)]
    return len(x) / rate(lambda: [session.run(None, {JETS_INPUT: x[b], MASK_INPUT: mask[b]}) for b in batches], len(x))


def end_to_end(sample: Path, model_path: Path, events) -> list[dict]:
    fileset = {"ttbar": normalise_files([str(sample.resolve())])}
    rows = []
    for n in JET_COUNTS:
        topology = load_topology("ttbar_allhad").with_selection(keep=n)
        for method in (f"spanet={model_path}", "chi2"):
            processor = PairProcessor(topology, [make_method(method, device="cpu")])
            start = time.perf_counter()
            result = run_fileset(fileset, processor, executor="iterative", progress=False)
            seconds = time.perf_counter() - start
            timing = result.output["timing"]
            row = {
                "jets": n,
                "method": method.split("=")[0],
                "events": result.events,
                "events_per_s": round(result.events / seconds),
                "time_split_s": {"total": round(seconds, 2), **{k: round(v, 2) for k, v in timing.items()}},
            }
            if method.startswith("spanet"):
                assignment = sum(timing[f"{step}:spanet"] for step in ("features", "model", "decode"))
                bare = bare_session_seconds(events, topology, model_path)
                row["assignment_over_bare_session"] = round(assignment / bare, 2)
            rows.append(row)
            print(json.dumps(row))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", required=True, help="generated ttbar file")
    parser.add_argument("--model", default="models/ttbar_allhad.onnx")
    parser.add_argument("--run-dir", help="training run of the model, for torch eager")
    parser.add_argument("--max-events", type=int, default=20_000)
    parser.add_argument("--output", default="benchmarks/results/model_throughput.json")
    args = parser.parse_args()

    import uproot
    import awkward as ak

    with uproot.open(args.sample) as handle:
        raw = handle["Events"].arrays([f"Jet_{k}" for k in ("pt", "eta", "phi", "mass", "btag")], entry_stop=args.max_events)
    events = ak.zip({"Jet": ak.zip({k[4:]: raw[k] for k in raw.fields})}, depth_limit=1)
    topology = load_topology("ttbar_allhad").with_selection(keep=12)
    inputs, _ = select_jets(events, topology.jets, Cutflow(np.ones(len(events))), [f.name for f in topology.jets.features])
    model_path = Path(args.model)
    results = {
        "model_only": model_only(model_path, inputs, args.run_dir),
        "end_to_end": end_to_end(Path(args.sample), model_path, events),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
