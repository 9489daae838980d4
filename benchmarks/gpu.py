"""GPU benchmark of the SPA-NET path: model alone and end to end, CPU against CUDA, one script.

Self-contained for a GPU node without a package registry (``../shared/gpu/README.md``):

1. builds a large file (``--events``, default 1M) by tiling a small NanoAOD-like file (event
   numbers stay unique), so that nothing big travels to the node;
2. model alone: ``InferenceSession.run`` on padded inputs of the file's selected events, per
   provider and batch size (one intra-op thread on CPU: events/s per core);
3. end to end: ``pairhunt run --method spanet=MODEL --no-events`` on the large file with the
   futures executor and 1, 8, 16 worker processes (``--workers``), per device;
4. agreement: the assignments of CPU and CUDA on the same events (fraction that differ).

Without CUDA (no GPU, or onnxruntime without the CUDA provider) every CUDA row is skipped with
one line saying why, and the CPU rows still run: on a laptop

    python benchmarks/gpu.py --events 100000 --workers 1 2 --output benchmarks/results/gpu_cpu.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from pairhunt.contract import assignment_output
from pairhunt.cutflow import Cutflow
from pairhunt.decoding import decode_greedy
from pairhunt.generate.nanoaod import NanoAODWriter
from pairhunt.inputs import select_jets
from pairhunt.onnx_assignment import CUDA, create_session, read_contract, resolve_model_path
from pairhunt.topology import load_topology


def tile(small: Path, output: Path, n_events: int) -> int:
    """Write ``n_events`` (rounded up to whole copies) of ``small`` into ``output``; returns the count."""
    with uproot.open(small) as file:
        events = file["Events"].arrays(how="zip")
    counters = [f for f in events.fields if f.startswith("n") and f[1:] in events.fields]
    events = events[[f for f in events.fields if f not in counters]]
    copies = math.ceil(n_events / len(events))
    with NanoAODWriter(output) as writer:
        for copy in range(copies):
            block = events
            if "event" in events.fields:
                block = ak.with_field(events, events.event + copy * (int(ak.max(events.event)) + 1), "event")
            writer.write(block)
    return copies * len(events)


def cuda_unavailable_reason() -> str | None:
    """None when onnxruntime can run on CUDA here, else why not (one line)."""
    import onnxruntime as ort

    if CUDA not in ort.get_available_providers():
        return f"onnxruntime {ort.__version__} has no CUDA provider (install onnxruntime-gpu on a GPU node)"
    return None


def selected_inputs(path: Path, model: Path, limit: int):
    """Features, mask and jets of the first ``limit`` events of ``path`` passing the model's selection."""
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    contract = read_contract(model)
    topology = contract.model_topology
    events = NanoEventsFactory.from_root({str(path): "Events"}, schemaclass=NanoAODSchema, entry_stop=limit, mode="eager").events()
    jets, _ = select_jets(events, topology.jets, Cutflow(np.ones(len(events))), list(contract.features))
    return contract, jets


def model_alone(model: Path, contract, jets, device: str, batch_sizes: list[int]) -> list[dict]:
    """events/s of the bare session per batch size (inputs tiled to at least 4 batches)."""
    session = create_session(model, threads=1, device=device)
    features = jets.feature_matrix(contract.features)
    rows = []
    for batch in batch_sizes:
        index = np.arange(max(4 * batch, len(features))) % len(features)
        x, mask = features[index], jets.mask[index]
        session.run(contract.outputs, {"jets": x[:batch], "mask": mask[:batch]})  # warm-up
        start = time.perf_counter()
        for first in range(0, len(x), batch):
            session.run(contract.outputs, {"jets": x[first : first + batch], "mask": mask[first : first + batch]})
        seconds = time.perf_counter() - start
        rows.append({"device": device, "batch": batch, "events_per_s": round(len(x) / seconds)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def assignments(model: Path, contract, jets, device: str) -> np.ndarray:
    session = create_session(model, threads=1, device=device)
    features = jets.feature_matrix(contract.features)
    outputs = {name: [] for name in contract.outputs}
    for first in range(0, len(features), 8192):
        rows = slice(first, first + 8192)
        for name, value in zip(contract.outputs, session.run(contract.outputs, {"jets": features[rows], "mask": jets.mask[rows]})):
            outputs[name].append(value)
    parents = contract.model_topology.parents
    return decode_greedy([np.concatenate(outputs[assignment_output(p)]) for p in parents], jets.mask)


def end_to_end(big: Path, model: str, topology: str, device: str, workers: int, chunksize: int, workdir: Path) -> dict:
    """One ``pairhunt run`` on the big file; events/s and the time split from its summary.json."""
    fileset = workdir / "fileset.json"
    fileset.write_text(json.dumps({"tiled": [str(big)]}))
    out = workdir / f"run-{device}-{workers}"
    command = [
        str(Path(sys.executable).with_name("pairhunt")), "run", str(fileset), "-o", str(out), "--overwrite", "--topology", topology,
        "--method", f"spanet={model}", "--device", device, "--executor", "futures", "--workers", str(workers),
        "--chunksize", str(chunksize), "--no-events", "--no-progress",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    row = {
        "device": device,
        "workers": workers,
        "chunksize": chunksize,
        "events": summary["events"],
        "wall_s_with_startup": round(wall, 2),
        "events_per_s": summary["events_per_s"],
        "timing_s": summary["timing_s"],
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", default="benchmarks/data/ttbar_bench.root", help="small file to tile")
    parser.add_argument("--model", default="ttbar_allhad")
    parser.add_argument("--topology", default="ttbar_allhad")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1024, 8192, 65536])
    parser.add_argument("--chunksize", type=int, default=25_000, help="events per chunk: enough chunks for every worker")
    parser.add_argument("--agreement-events", type=int, default=20_000)
    parser.add_argument("--workdir", help="where the tiled file and runs go (default: a temporary directory)")
    parser.add_argument("--output", default="benchmarks/results/gpu.json")
    args = parser.parse_args()

    model = resolve_model_path(args.model)
    reason = cuda_unavailable_reason()
    devices = ["cpu"] if reason else ["cpu", "cuda"]
    if reason:
        print(f"CUDA rows skipped: {reason}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(args.workdir or scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        big = workdir / "tiled.root"
        start = time.perf_counter()
        n_events = tile(Path(args.sample), big, args.events)
        print(f"tiled {args.sample} to {n_events} events in {time.perf_counter() - start:.1f} s", flush=True)
        contract, jets = selected_inputs(big, model, args.agreement_events)
        result = {
            "command": " ".join(["python", *sys.argv]),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "cuda_skipped": reason},
            "events": n_events,
            "model_alone": [row for d in devices for row in model_alone(model, contract, jets, d, args.batch_sizes)],
            "end_to_end": [
                end_to_end(big, args.model, args.topology, d, w, args.chunksize, workdir) for d in devices for w in args.workers
            ],
        }
        if not reason:
            cpu, cuda = assignments(model, contract, jets, "cpu"), assignments(model, contract, jets, "cuda")
            differ = (cpu != cuda).any(axis=(1, 2))
            result["agreement"] = {"events": int(len(differ)), "assignments_differing": int(differ.sum())}
            print(json.dumps(result["agreement"]), flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
