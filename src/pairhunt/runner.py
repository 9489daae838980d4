"""Run a processor over a fileset with coffea's ``processor.Runner``, locally or on Dask.

Files are probed first (cheap: metadata only) so that every file ends up in the report as
processed, empty, or skipped with the reason; an all-empty fileset gives empty histograms.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uproot
from coffea import processor
from coffea.nanoevents import NanoAODSchema

from pairhunt.errors import PairhuntError

EXECUTORS = ("iterative", "futures", "dask")
TREE = "Events"


@dataclass
class FileReport:
    """What happened to each file of the fileset."""

    entries: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"entries": self.entries, "skipped": self.skipped}


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
                reason = f"{type(error).__name__}: {error}".splitlines()[0]
                if not skipbadfiles:
                    raise PairhuntError(f"cannot read {filename}: {reason}") from error
                report.skipped[filename] = reason
                continue
            if report.entries[filename] > 0:
                readable.setdefault(dataset, {"files": {}})["files"][filename] = tree
    return readable, report


@contextmanager
def executor_for(name: str, workers: int, scheduler: str | None, progress: bool) -> Iterator[processor.ExecutorBase]:
    """A coffea executor; for ``dask`` a client to ``scheduler`` or a LocalCluster of ``workers`` processes."""
    if name == "iterative":
        yield processor.IterativeExecutor(status=progress)
    elif name == "futures":
        yield processor.FuturesExecutor(workers=workers, status=progress)
    elif name == "dask":
        from distributed import Client, LocalCluster

        if scheduler:
            client = Client(scheduler)
            cluster = None
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
        try:
            yield processor.DaskExecutor(client=client, status=progress)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    else:
        raise PairhuntError(f"unknown executor {name!r}; choose one of {EXECUTORS}")


def _pairhunt_cause(error: BaseException) -> PairhuntError | None:
    """coffea wraps worker exceptions; dig out ours so the user sees its message."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, PairhuntError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


@dataclass
class RunResult:
    output: dict
    report: FileReport
    seconds: float

    @property
    def events(self) -> int:
        return sum(c["events"]["all events"] for c in self.output["cutflow"].values())


def run_fileset(
    fileset: dict[str, dict],
    processor_instance,
    executor: str = "iterative",
    workers: int = 2,
    scheduler: str | None = None,
    chunksize: int = 100_000,
    maxchunks: int | None = None,
    skipbadfiles: bool = True,
    progress: bool = True,
) -> RunResult:
    """Run ``processor_instance`` over ``fileset`` (normalised, see :func:`load_fileset`)."""
    if chunksize < 1 or workers < 1 or (maxchunks is not None and maxchunks < 1):
        raise PairhuntError("--chunksize, --workers and --maxchunks must be positive")
    start = time.perf_counter()
    readable, report = probe(fileset, skipbadfiles)
    output = processor_instance.empty_output()
    if readable:
        with executor_for(executor, workers, scheduler, progress) as exe:
            runner = processor.Runner(
                executor=exe,
                schema=NanoAODSchema,
                chunksize=chunksize,
                maxchunks=maxchunks,
                skipbadfiles=True if skipbadfiles else False,
            )
            try:
                result = runner(readable, processor_instance, treename=TREE)
            except Exception as error:
                raise _pairhunt_cause(error) or error
        output = processor.accumulate([output, result])
    for dataset in fileset:
        output["cutflow"].setdefault(dataset, {"events": {"all events": 0}, "sumw": {"all events": 0.0}})
    processed = {f for files in output["files"].values() for f in files}
    for spec in readable.values() if maxchunks is None else ():
        for filename in spec["files"]:
            if filename not in processed:
                report.skipped[filename] = "failed while processing (skipped by coffea's skipbadfiles)"
    return RunResult(output=output, report=report, seconds=time.perf_counter() - start)
