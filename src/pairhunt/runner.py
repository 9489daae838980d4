"""Run a processor over a fileset with coffea's ``processor.Runner``, locally or on Dask.

Files are probed first (cheap: metadata only) so that every file ends up in the report as
processed, empty, or skipped with the reason. coffea's preprocessing cuts the files into chunks
(the same chunk size gives the same chunks); every chunk comes back processed or failed with its
error (:mod:`pairhunt.chunks`), and the outputs are summed in chunk order, so that the executor,
the order in which chunks finish and a resumed run all give bit-identical histograms.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

import uproot
from coffea import processor
from coffea.nanoevents import NanoAODSchema
from coffea.processor.executor import WorkItem

from pairhunt.accounting import FileReport
from pairhunt.chunks import Chunk, ChunkResult, GuardedProcessor, describe
from pairhunt.errors import PairhuntError, failure_reason, pairhunt_cause, unreadable
from pairhunt.executors import IterativeExecutor, WorkerLost, executor_for
from pairhunt.lazy import run_chunks
from pairhunt.store import ChunkStore

TREE = "Events"
# how chunks are run: coffea's processor.Runner, or its dask-awkward mode (apply_to_fileset)
MODES = ("runner", "dask-awkward")


def load_fileset(path: str | Path) -> dict[str, dict]:
    """Read a fileset in coffea's JSON forms, normalised to ``{dataset: {"files": {path: tree}}}``.

    Accepted: ``{dataset: [file, ...]}``, ``{dataset: {"files": [file, ...], "treename": ...}}``
    and ``{dataset: {"files": {file: tree}}}``. Relative paths are relative to the JSON file.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise PairhuntError(f"cannot read fileset {path}: {error}") from error
    if not isinstance(raw, dict) or not raw:
        raise PairhuntError(f"fileset {path} must map dataset names to files")
    return {dataset: normalise_files(spec, base=path.parent) for dataset, spec in raw.items()}


def normalise_files(spec, base: Path = Path(".")) -> dict:
    """One dataset's entry -> ``{"files": {path: tree}}`` with absolute local paths."""
    if isinstance(spec, (list, tuple)):
        spec = {"files": list(spec)}
    files = spec.get("files") if isinstance(spec, dict) else None
    if files is None:
        raise PairhuntError(f"dataset entry {spec!r} has no files")
    tree = spec.get("treename", TREE)
    if isinstance(files, (list, tuple)):
        files = {f: tree for f in files}

    def resolve(name: str) -> str:
        return name if "://" in name or Path(name).is_absolute() else str((base / name).resolve())

    return {"files": {resolve(f): t for f, t in files.items()}}


def probe(fileset: dict[str, dict], skipbadfiles: bool) -> tuple[dict[str, dict], FileReport]:
    """Open every file's tree; keep files with entries, report empty and unreadable ones."""
    report = FileReport()
    readable: dict[str, dict] = {}
    for dataset, spec in fileset.items():
        for filename, tree in spec["files"].items():
            try:
                with uproot.open(filename) as handle:
                    report.entries[filename] = int(handle[tree].num_entries)
            except Exception as error:  # noqa: BLE001 - any failure to open is reported per file
                if not skipbadfiles:
                    raise unreadable(filename, error) from error
                report.skipped[filename] = failure_reason(error)
                continue
            if report.entries[filename] > 0:
                readable.setdefault(dataset, {"files": {}})["files"][filename] = tree
    return readable, report


@dataclass
class RunResult:
    output: dict
    report: FileReport
    seconds: float
    resumed_events: int = 0  # processed by an earlier, stopped run whose store this one resumed

    @property
    def events(self) -> int:
        return sum(c["events"]["all events"] for c in self.output["cutflow"].values())


class PartialRun(PairhuntError):
    """Chunks failed and a partial result was not allowed; ``result`` holds what was processed."""

    def __init__(self, result: RunResult):
        self.result = result
        failed = result.report.failed_chunks
        first = failed[0]
        super().__init__(
            f"{len(failed)} chunk(s) with {result.report.failed_events} events failed, first "
            f"{first['file']} entries {first['entry_start']}-{first['entry_stop']}: {first['error']}"
        )


def plan_chunks(readable: dict[str, dict], chunksize: int, maxchunks: int | None, progress: bool) -> list[WorkItem]:
    """coffea's ``WorkItem`` chunks of the readable files, in fileset order."""
    if not readable:
        return []
    runner = processor.Runner(
        executor=IterativeExecutor(status=progress),
        schema=NanoAODSchema,
        chunksize=chunksize,
        maxchunks=maxchunks,
        metadata_cache={},  # never chunk by the entry count of a file that has since changed
    )
    return list(runner.preprocess(readable, treename=TREE))


def merge_outputs(
    processor_instance: processor.ProcessorABC, results: dict[Chunk, ChunkResult], store: ChunkStore | None
) -> dict:
    """The processed chunks' outputs summed in chunk order, whatever order they finished in."""
    output = processor_instance.empty_output()
    for chunk in sorted(results):
        result = results[chunk]
        if result.processed:
            chunk_output = result.output if result.output is not None else store.load_output(chunk)
            output = processor.accumulate([chunk_output], output)
    return processor_instance.postprocess(output)


def run_fileset(
    fileset: dict[str, dict],
    processor_instance: processor.ProcessorABC,
    executor: str = "iterative",
    workers: int = 2,
    scheduler: str | None = None,
    chunksize: int = 100_000,
    maxchunks: int | None = None,
    skipbadfiles: bool = True,
    progress: bool = True,
    store: ChunkStore | None = None,
    allow_partial: bool = False,
    mode: str = "runner",
) -> RunResult:
    """Run ``processor_instance`` over ``fileset`` (normalised, see :func:`load_fileset`).

    ``mode`` ``runner`` runs coffea's ``processor.Runner``; ``dask-awkward`` runs coffea's dask
    mode (``apply_to_fileset`` on lazy events, one partition per chunk) on the same chunks, with
    the same outputs.

    With a ``store``, each chunk's result is saved as it finishes and the chunks the store holds
    as processed are not run again (resume). A worker that dies fails the chunks not finished
    (without a store: the run). Failed chunks raise :class:`PartialRun` unless ``allow_partial``.
    """
    if chunksize < 1 or workers < 1 or (maxchunks is not None and maxchunks < 1):
        raise PairhuntError("--chunksize, --workers and --maxchunks must be positive")
    if mode not in MODES:
        raise PairhuntError(f"unknown mode {mode!r}; choose one of {MODES}")
    if executor == "dask":
        import distributed  # noqa: F401  # a library import (~1 s), like coffea's, is not part of the run's time
    start = time.perf_counter()
    readable, report = probe(fileset, skipbadfiles)
    items = plan_chunks(readable, chunksize, maxchunks, progress)
    plan = [Chunk.from_item(item) for item in items]
    done: set[Chunk] = set()
    if store is not None:
        store.begin(plan, report)
        done = store.processed()
        items = [item for item in items if Chunk.from_item(item) not in done]
    results: dict[Chunk, ChunkResult] = {}
    lost = None
    if items and mode == "dask-awkward":
        chunks = [Chunk.from_item(item) for item in items]
        guarded = GuardedProcessor(processor_instance, store)
        try:
            results = run_chunks(chunks, guarded, TREE, executor, workers, scheduler, progress)
        except Exception as error:
            raise pairhunt_cause(error) or error
    elif items:
        with executor_for(executor, workers, scheduler, progress) as exe:
            runner = processor.Runner(executor=exe, schema=NanoAODSchema)
            try:
                results = runner(items, GuardedProcessor(processor_instance, store), treename=TREE)["chunks"]
            except WorkerLost as error:
                if store is None:
                    raise PairhuntError(f"{error}: the run stopped") from error
                lost = describe(error)
            except Exception as error:
                raise pairhunt_cause(error) or error
    if store is not None:
        results = store.results()
    if lost is not None:
        for chunk in plan:
            results.setdefault(chunk, ChunkResult(chunk, error=f"not processed: {lost}"))
    report.account(results.values())
    output = merge_outputs(processor_instance, results, store)
    cutflow = output["cutflow"]
    empty = {"events": {"all events": 0}, "sumw": {"all events": 0.0}}
    output["cutflow"] = {dataset: cutflow.get(dataset, copy.deepcopy(empty)) for dataset in fileset}
    resumed = sum(chunk.events for chunk in done)
    result = RunResult(output=output, report=report, seconds=time.perf_counter() - start, resumed_events=resumed)
    if report.failed_chunks and not allow_partial:
        raise PartialRun(result)
    return result
