"""Generate a sample: Pythia8 in blocks of events with derived seeds, written in block order.

A file depends only on (sample, events, seed, block size), never on the number of worker
processes: every block has its own Pythia instance seeded from ``(seed, block)``, and blocks
are written in order.
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np

from pairhunt.atomic import atomic_path
from pairhunt.errors import PairhuntError
from pairhunt.generate.detector import DetectorConfig
from pairhunt.generate.nanoaod import LABELLED_COLLECTIONS, NanoAODWriter, build_events
from pairhunt.generate.samples import COMMON_SETTINGS, Sample

MB_TO_PB = 1e9
MAX_PYTHIA_SEED = 900_000_000


@dataclass(frozen=True)
class Request:
    """What to generate; everything that determines the output file."""

    sample: Sample
    n_events: int
    seed: int = 1
    block_size: int = 1000
    detector: DetectorConfig = field(default_factory=DetectorConfig)

    def __post_init__(self):
        if self.n_events <= 0:
            raise PairhuntError(f"number of events must be positive, got {self.n_events}")
        if self.block_size <= 0:
            raise PairhuntError(f"block size must be positive, got {self.block_size}")
        if not 0 <= self.seed < 2**63:
            raise PairhuntError(f"seed must be a non-negative integer, got {self.seed}")

    def blocks(self) -> list[tuple[int, int]]:
        """``(block index, events in block)`` covering ``n_events``."""
        full, rest = divmod(self.n_events, self.block_size)
        sizes = [self.block_size] * full + ([rest] if rest else [])
        return list(enumerate(sizes))


@dataclass
class BlockResult:
    events: ak.Array
    counters: dict[str, int]
    sigma_mb: float
    sigma_err_mb: float


def block_seeds(seed: int, block: int) -> tuple[int, np.random.Generator]:
    """Pythia seed and numpy generator (detector smearing, tagging) of one block."""
    sequence = np.random.SeedSequence([seed, block])
    pythia_seed = int(sequence.generate_state(1, np.uint64)[0] % MAX_PYTHIA_SEED) + 1
    return pythia_seed, np.random.default_rng(sequence.spawn(1)[0])


def _init_pythia(sample: Sample, seed: int, slha_dir: str):
    import pythia8mc  # optional dependency (extra "generate")

    pythia = pythia8mc.Pythia("", False)
    settings = list(COMMON_SETTINGS) + list(sample.settings) + [f"Random:seed = {seed}"]
    if sample.slha is not None:
        slha = Path(slha_dir) / f"{sample.name}.slha"
        slha.write_text(sample.slha)
        settings.append(f"SLHA:file = {slha}")
    for line in settings:
        if not pythia.readString(line):
            raise PairhuntError(f"Pythia rejected setting {line!r}")
    if not pythia.init():
        values = ", ".join(f"{k} {v:g}" for k, v in sample.parameters.items())
        raise PairhuntError(
            f"Pythia failed to initialise sample {sample.name!r} ({values}): are these values possible at 13 TeV?"
        )
    return pythia


def generate_block(request: Request, block: tuple[int, int]) -> BlockResult:
    """Generate, reconstruct and label one block of events."""
    index, size = block
    pythia_seed, rng = block_seeds(request.seed, index)
    with tempfile.TemporaryDirectory() as slha_dir:
        pythia = _init_pythia(request.sample, pythia_seed, slha_dir)
    batch = pythia.nextBatch(size, "skip")
    info = pythia.infoPython()
    first_event = index * request.block_size + 1
    events, counters = build_events(batch, request.sample, rng, request.detector, first_event, index + 1)
    return BlockResult(events, counters, info.sigmaGen(), info.sigmaErr())


def _generate_block_star(args):
    return generate_block(*args)


def summarise(request: Request, results: list[BlockResult], seconds: float, output: Path) -> dict:
    """Events, cross-section, truth-matching fractions and jet multiplicity of a file."""
    n_events = sum(len(r.events) for r in results)
    generated = sum(r.counters["events"] for r in results)
    sigma = sum(r.sigma_mb * r.counters["events"] for r in results) / max(generated, 1)
    n_jets = np.concatenate([ak.to_numpy(ak.num(r.events.Jet)) for r in results])
    weights = np.concatenate([ak.to_numpy(r.events.genWeight) for r in results])
    summary = {
        "sample": request.sample.name,
        "parameters": request.sample.parameters,
        "output": str(output),
        "seed": request.seed,
        "events": n_events,
        "dropped_truth_incomplete": sum(r.counters["truth_incomplete"] for r in results),
        "cross_section_pb": sigma * MB_TO_PB,
        "sum_genWeight": float(weights.sum()),
        "seconds": round(seconds, 2),
        "events_per_second": round(n_events / seconds, 1) if seconds > 0 else None,
        "jet_multiplicity": {
            str(k) if k < 12 else ">=12": int(v)
            for k, v in enumerate(np.bincount(np.minimum(n_jets, 12), minlength=13))
        },
    }
    if request.sample.decay is not None:
        per_parent = np.array(request.sample.products_per_parent)
        matched = np.zeros((n_events, 2), dtype=np.int64)
        for collection in [c for c in LABELLED_COLLECTIONS if c in results[0].events.fields]:
            objects = [r.events[collection] for r in results]
            parent_label = np.concatenate([ak.to_numpy(ak.flatten(o.truthParent)) for o in objects])
            event_of_object = np.repeat(np.arange(n_events), np.concatenate([ak.to_numpy(ak.num(o)) for o in objects]))
            has_parent = parent_label >= 0
            np.add.at(matched, (event_of_object[has_parent], parent_label[has_parent]), 1)
        for kind in ("quarks", "leptons"):
            total = sum(r.counters[kind] for r in results)
            if total:
                summary[f"matched_{kind[:-1]}_fraction"] = sum(r.counters[f"{kind}_matched"] for r in results) / total
        summary["fully_matched_parent_fraction"] = float((matched == per_parent).mean()) if n_events else 0.0
        summary["complete_event_fraction"] = float((matched == per_parent).all(axis=1).mean()) if n_events else 0.0
    return summary


def generate(
    request: Request,
    output: str | Path,
    workers: int = 1,
    progress: bool = True,
) -> dict:
    """Generate ``request`` into the ROOT file ``output``; returns and writes its summary.

    The file appears under its name only once complete: a failure leaves no partial file.
    The summary goes to ``<output stem>.summary.json`` next to the file.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if workers < 1:
        raise PairhuntError(f"--workers must be at least 1, got {workers}")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    blocks = request.blocks()
    start = time.perf_counter()
    results: list[BlockResult] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with atomic_path(output) as partial, NanoAODWriter(partial) as writer, Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(f"generating {request.sample.name}", total=request.n_events)
        if workers == 1:
            block_results = (generate_block(request, b) for b in blocks)
            pool = None
        else:
            pool = multiprocessing.get_context("spawn").Pool(min(workers, len(blocks)))
            block_results = pool.imap(_generate_block_star, [(request, b) for b in blocks])
        try:
            for (_, size), result in zip(blocks, block_results):
                writer.write(result.events)
                # keep only what the summary needs, not every event of a large file
                result.events = result.events[[f for f in result.events.fields if f in (*LABELLED_COLLECTIONS, "genWeight")]]
                results.append(result)
                bar.advance(task, size)
        finally:
            if pool is not None:
                pool.terminate()
    summary = summarise(request, results, time.perf_counter() - start, output)
    output.with_suffix(".summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
