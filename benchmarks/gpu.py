"""GPU benchmark of the SPA-NET path: model alone and end to end, CPU against CUDA, one script.

Self-contained for a GPU node without a package registry (``../shared/gpu/README.md``):

1. builds a large file (``--events``, default 1M) by tiling a small NanoAOD-like file (event
   numbers stay unique), so that nothing big travels to the node;
2. model alone: ``InferenceSession.run`` on padded inputs of the file's selected events, per
   provider and batch size (one intra-op thread on CPU: events/s per core), and (``--jets``) at
   the fastest batch while the number of jets N grows;
3. agreement: the assignments of CPU and CUDA (TF32 on and off) on the same events; computing
   them first also compiles pairhunt's numba kernels into their cache before the workers start;
4. end to end: ``pairhunt run --method spanet=MODEL --no-events`` on the large file with the
   futures executor and 1, 8, 16 worker processes (``--workers``, ``--cpu-workers``), per device,
   optionally once more on a larger file (``--large-events``) to show the start-up's share, and
   (``--dask``) on a Dask cluster kept running between runs, as on an analysis facility: the
   first run starts and warms the workers, the next ones find them warm (the larger file, if
   any, then runs on the warm cluster too); ``--no-futures`` keeps only the Dask rows.

Results are written after every row, so a run stopped by a time limit keeps what it measured.

Without CUDA (no GPU, or onnxruntime without the CUDA provider) every CUDA row is skipped with
one line saying why, and the CPU rows still run: on a laptop

    python benchmarks/gpu.py --events 100000 --workers 1 2 --output benchmarks/results/gpu_cpu.json

On a GPU node (``../shared/gpu/README.md``), leaving out the slow one-worker CPU row:

    python3 benchmarks/gpu.py --cpu-workers 8 16 --large-events 4000000 --dask --workdir /tmp/gpu --output $OUT/gpu.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from pairhunt.contract import JETS_INPUT, MASK_INPUT, assignment_output
from pairhunt.cutflow import Cutflow
from pairhunt.assign.decoding import decode_greedy
from pairhunt.generate.nanoaod import NanoAODWriter
from pairhunt.inputs import select_jets
from pairhunt.assign.onnx import CUDA, create_session, read_contract, resolve_model_path

from model_throughput import JET_COUNTS, padded_batch  # the CPU benchmark's N scan, beside this script


def tile(small: Path, output: Path, n_events: int) -> int:
    """Write ``n_events`` (rounded up to whole copies) of ``small`` into ``output``; returns the count.

    An ``output`` already holding at least ``n_events`` (an earlier run in the same ``--workdir``) is kept."""
    if output.exists():
        with uproot.open(output) as file:
            if file["Events"].num_entries >= n_events:
                return file["Events"].num_entries
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


def gpu_name() -> str | None:
    """The GPU as nvidia-smi names it (None without one)."""
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True, text=True)
    except OSError:
        return None
    return listed.stdout.strip() or None


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
    warnings.filterwarnings("ignore", message="Missing cross-reference index")  # a generated file has no GenPart
    events = NanoEventsFactory.from_root({str(path): "Events"}, schemaclass=NanoAODSchema, entry_stop=limit, mode="eager").events()
    jets, _ = select_jets(events, topology.jets, Cutflow(np.ones(len(events))), list(contract.features))
    return contract, jets


def session_rate(model: Path, contract, device: str, x: np.ndarray, mask: np.ndarray, batch: int) -> int:
    """events/s of a fresh session over ``x`` in batches, after one warm-up batch."""
    session = create_session(model, threads=1, device=device)
    session.run(contract.outputs, {JETS_INPUT: x[:batch], MASK_INPUT: mask[:batch]})  # warm-up
    start = time.perf_counter()
    for first in range(0, len(x), batch):
        session.run(contract.outputs, {JETS_INPUT: x[first : first + batch], MASK_INPUT: mask[first : first + batch]})
    return round(len(x) / (time.perf_counter() - start))


def model_alone(model: Path, contract, jets, device: str, batch: int) -> dict:
    """events/s of the bare session at one batch size (inputs tiled to at least 4 batches)."""
    features = jets.feature_matrix(contract.features)
    index = np.arange(max(4 * batch, len(features))) % len(features)
    rate = session_rate(model, contract, device, features[index], jets.mask[index], batch)
    return {"device": device, "batch": batch, "events_per_s": rate}


def model_alone_jets(model: Path, contract, jets, device: str, batch: int, n_jets: int) -> dict:
    """events/s of the bare session at ``n_jets`` jets per event (real jets cut or repeated, all
    marked real: the cost of a full N-jet event)."""
    x, mask = padded_batch(jets.feature_matrix(contract.features), jets.mask, n_jets, size=max(4 * batch, 16_384))
    return {"device": device, "batch": batch, "jets": n_jets, "events_per_s": session_rate(model, contract, device, x, mask, batch)}


def assignments(model: Path, contract, jets, device: str, tf32: bool = True) -> np.ndarray:
    """The greedy-decoded assignments of the selected events on ``device``."""
    session = create_session(model, threads=1, device=device, tf32=tf32)
    features = jets.feature_matrix(contract.features)
    outputs = {name: [] for name in contract.outputs}
    for first in range(0, len(features), 8192):
        rows = slice(first, first + 8192)
        for name, value in zip(contract.outputs, session.run(contract.outputs, {JETS_INPUT: features[rows], MASK_INPUT: jets.mask[rows]})):
            outputs[name].append(value)
    parents = contract.model_topology.parents
    return decode_greedy([np.concatenate(outputs[assignment_output(p)]) for p in parents], jets.mask)


def pairhunt_command() -> str:
    """The ``pairhunt`` beside this Python (a venv), else the one on PATH (``pip --target`` installs)."""
    beside = Path(sys.executable).with_name("pairhunt")
    return str(beside) if beside.exists() else shutil.which("pairhunt") or "pairhunt"


def end_to_end(
    big: Path, model: str, topology: str, device: str, workers: int, chunksize: int, workdir: Path, scheduler: str | None = None, label: str = "futures"
) -> dict:
    """One ``pairhunt run`` on ``big``; events/s (wall time of the Runner) and the time split summed
    over workers, from its summary.json. With ``scheduler``, on that Dask cluster's ``workers``
    (already running: no pool start, and no warm-up once a run has warmed them), else in a new
    futures pool (pool start and warm-up included)."""
    fileset = workdir / f"fileset-{big.stem}.json"
    fileset.write_text(json.dumps({"tiled": [str(big)]}))
    out = workdir / f"run-{big.stem}-{device}-{workers}-{label}"
    executor = ["--executor", "dask", "--scheduler", scheduler] if scheduler else ["--executor", "futures", "--workers", str(workers)]
    command = [
        pairhunt_command(), "run", str(fileset), "-o", str(out), "--overwrite", "--topology", topology,
        "--method", f"spanet={model}", "--device", device, *executor, "--chunksize", str(chunksize), "--no-events", "--no-progress",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    return {
        "device": device,
        "executor": label,
        "workers": workers,
        "chunksize": chunksize,
        "events": summary["events"],
        "wall_s_with_startup": round(wall, 2),
        "runner_wall_s": summary["wall_time_s"],
        "events_per_s": summary["events_per_s"],
        "timing_s": {step: round(seconds, 3) for step, seconds in summary["timing_s"].items()},
    }


@contextmanager
def dask_cluster(workers: int) -> Iterator[str]:
    """A local Dask cluster of ``workers`` one-thread processes, as an analysis facility keeps
    running between jobs; yields its scheduler address."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


class Results(dict):
    """The benchmark's results, rewritten to ``path`` (and printed) with every row added."""

    def __init__(self, path: Path, **fields):
        super().__init__(fields)
        self.path = path

    def add(self, section: str, row: dict) -> None:
        self.setdefault(section, []).append(row)
        print(json.dumps({section: row}), flush=True)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", default="benchmarks/data/ttbar_bench.root", help="small file to tile")
    parser.add_argument("--model", default="ttbar_allhad")
    parser.add_argument("--topology", default="ttbar_allhad")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--large-events", type=int, help="also run the largest worker count on a file this large")
    parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], default=["cpu", "cuda"], help="devices of the model-alone and end-to-end rows")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--cpu-workers", type=int, nargs="+", help="worker counts of the CPU rows (default: --workers)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1024, 8192, 65536])
    parser.add_argument("--cpu-batch-sizes", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument("--dask", action="store_true", help="also run on a Dask cluster of the largest worker count kept running between runs: once cold, then --warm-runs times warm")
    parser.add_argument("--no-futures", action="store_true", help="skip the futures-executor rows (with --dask: only the cluster's)")
    parser.add_argument("--warm-runs", type=int, default=2, help="runs on the warm Dask cluster after the cold one")
    parser.add_argument("--jets", type=int, nargs="*", help=f"model alone at these jet counts N, at each device's fastest batch (no values: {JET_COUNTS.start}..{JET_COUNTS.stop - 1})")
    parser.add_argument("--chunksize", type=int, default=25_000, help="events per chunk: enough chunks for every worker")
    parser.add_argument("--agreement-events", type=int, default=20_000)
    parser.add_argument("--agreement-model", help="model whose CPU assignments the CUDA ones are compared with (default: --model; "
                        "e.g. the float32 original of a float16 model)")
    parser.add_argument("--workdir", help="where the tiled files and runs go (default: a temporary directory); a tiled file there is reused")
    parser.add_argument("--output", default="benchmarks/results/gpu.json")
    args = parser.parse_args()

    import onnxruntime

    model = resolve_model_path(args.model)
    reason = cuda_unavailable_reason()
    devices = [d for d in args.devices if d == "cpu" or not reason]
    if reason:
        print(f"CUDA rows skipped: {reason}", flush=True)
    workers = {"cpu": args.cpu_workers or args.workers, "cuda": args.workers}
    batches = {"cpu": args.cpu_batch_sizes, "cuda": args.batch_sizes}
    results = Results(
        Path(args.output),
        command=" ".join(["python", *sys.argv]),
        machine={"cpus": os.cpu_count(), "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
                 "gpu": gpu_name(), "cuda_skipped": reason},
    )
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(args.workdir or scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        big = workdir / "tiled.root"
        start = time.perf_counter()
        results["events"] = tile(Path(args.sample), big, args.events)
        print(f"tiled {args.sample} to {results['events']} events in {time.perf_counter() - start:.1f} s", flush=True)
        contract, jets = selected_inputs(big, model, args.agreement_events)
        for device in devices:
            rows = [model_alone(model, contract, jets, device, batch) for batch in batches[device]]
            for row in rows:
                results.add("model_alone", row)
            fastest = max(rows, key=lambda row: row["events_per_s"])["batch"]
            for n_jets in (args.jets or JET_COUNTS) if args.jets is not None else ():
                results.add("model_alone_jets", model_alone_jets(model, contract, jets, device, fastest, n_jets))
        cpu = assignments(resolve_model_path(args.agreement_model) if args.agreement_model else model, contract, jets, "cpu")
        for tf32 in (True, False) if "cuda" in devices else ():
            differ = (assignments(model, contract, jets, "cuda", tf32) != cpu).any(axis=(1, 2))
            results.add("agreement", {"tf32": tf32, "events": int(len(differ)), "assignments_differing_from_cpu": int(differ.sum())})
        large = None
        if args.large_events:
            large = workdir / "tiled_large.root"
            results["large_events"] = tile(Path(args.sample), large, args.large_events)
        for device in devices if not args.no_futures else ():
            for n in workers[device]:
                results.add("end_to_end", end_to_end(big, args.model, args.topology, device, n, args.chunksize, workdir))
        if large and not args.no_futures:
            for device in devices[-1:]:
                results.add("end_to_end", end_to_end(large, args.model, args.topology, device, max(workers[device]), args.chunksize, workdir))
        if args.dask:
            for device in devices:
                n = max(workers[device])
                with dask_cluster(n) as scheduler:
                    for label in ("dask-cold", *["dask-warm"] * args.warm_runs):
                        results.add("end_to_end", end_to_end(big, args.model, args.topology, device, n, args.chunksize, workdir, scheduler, label))
                    if large:
                        results.add("end_to_end", end_to_end(large, args.model, args.topology, device, n, args.chunksize, workdir, scheduler, "dask-warm"))


if __name__ == "__main__":
    main()
