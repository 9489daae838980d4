"""coffea's dask-awkward mode: a processor written for chunks of concrete events, on lazy events.

With ``NanoEventsFactory.from_root(..., mode="dask")`` or ``coffea.dataset_tools.apply_to_fileset``
a processor's ``process`` receives a dask-awkward collection. pairhunt's per-event work (padding,
numba kernels, onnxruntime sessions) needs concrete arrays, so each partition becomes one delayed
task that runs the very code a coffea ``Runner`` chunk runs, on a lazy projection of only the
branches the processor reads (dask-awkward then reads no other column); the outputs are summed in
partition order. Building the graph reads no data and calls nothing on typetracers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from coffea.processor import accumulate
from coffea.util import _isinstance

from pairhunt.errors import PairhuntError
from pairhunt.inputs import KINEMATICS, collection_fields

if TYPE_CHECKING:
    from pairhunt.chunks import Chunk, ChunkResult, GuardedProcessor

# events.metadata key: per partition, the chunk it is ({dataset, filename, entrystart, entrystop});
# without it partitions are named by dataset and index
PARTITIONS = "partitions"


def is_lazy(events: Any) -> bool:
    """Events of coffea's dask mode (a dask-awkward collection)."""
    return _isinstance(events, "dask_awkward.lib.core.Array")


def project(events, branches: Mapping[str, Sequence[str] | None]):
    """Only ``branches`` of lazy ``events``: ``{collection: fields}``, ``None`` for an event-level
    branch. What the file lacks is left out, so the processor names it as it does in Runner mode."""
    import dask_awkward as dak

    columns = {}
    for name, fields in branches.items():
        if name not in events.fields:
            continue
        if fields is None:
            columns[name] = events[name]
            continue
        collection = read_collection(events, name)
        present = [f for f in dict.fromkeys(fields) if f in collection.fields]
        if present:
            columns[name] = dak.zip({f: collection[f] for f in present})
    return dak.zip(columns, depth_limit=1)


def read_collection(events, name: str):
    """``events[name]``; a collection whose behaviour cannot be built (NanoAOD's jets need all four
    kinematics) is one line naming the missing branches and the files, as in Runner mode."""
    try:
        return events[name]
    except ValueError as error:
        fields = collection_fields(events._meta, name)
        missing = ", ".join(f"{name}_{k}" for k in KINEMATICS if k not in fields) or name
        files = ", ".join(dict.fromkeys(m["filename"] for m in partition_metadata(events)))
        raise PairhuntError(f"{files}: missing branch(es) {missing}") from error


def partition_metadata(events) -> list[dict]:
    """Per partition, the metadata coffea gives a Runner chunk (dataset, filename, entry range)."""
    metadata = dict(getattr(events, "metadata", None) or {})
    dataset = metadata.get("dataset", "events")
    if PARTITIONS in metadata:
        return [{**metadata, **part} for part in metadata[PARTITIONS]]
    divisions = events.divisions if events.known_divisions else [0] * (events.npartitions + 1)
    return [
        {**metadata, "dataset": dataset, "filename": f"{dataset} partition {i}", "entrystart": int(start), "entrystop": int(stop)}
        for i, (start, stop) in enumerate(zip(divisions[:-1], divisions[1:]))
    ]


def process_partitions(process_chunk: Callable[[Any, dict], dict], events, branches: Mapping[str, Sequence[str] | None], empty: dict):
    """A delayed output: ``process_chunk(partition, metadata)`` per partition, summed in order
    onto ``empty`` (the output of no events, what a dataset without entries gives)."""
    import dask

    parts = project(events, branches).to_delayed()
    outputs = [dask.delayed(process_chunk)(part, meta) for part, meta in zip(parts, partition_metadata(events))]
    return dask.delayed(accumulate)(outputs, empty)


def fileset_of_chunks(chunks: Sequence[Chunk], treename: str) -> dict:
    """The ``apply_to_fileset`` fileset whose partitions are exactly ``chunks`` (files as steps),
    each dataset's metadata naming its partitions' chunks in the order dask-awkward makes them."""
    fileset: dict[str, dict] = {}
    for chunk in chunks:
        files = fileset.setdefault(chunk.dataset, {"files": {}})["files"]
        files.setdefault(chunk.filename, {"object_path": treename, "steps": []})["steps"].append([chunk.entrystart, chunk.entrystop])
    for dataset, spec in fileset.items():
        spec["metadata"] = {
            "dataset": dataset,
            PARTITIONS: [
                {"filename": name, "treename": treename, "entrystart": start, "entrystop": stop}
                for name, file in spec["files"].items()
                for start, stop in file["steps"]
            ],
        }
    return fileset


def compute(outputs: Any, executor: str, workers: int, scheduler: str | None, progress: bool) -> Any:
    """Compute delayed ``outputs`` where a Runner with ``executor`` would run: one process
    (``iterative``), a pool of ``workers`` processes (``futures``), a Dask cluster (``dask``)."""
    import dask

    if executor == "dask":
        from pairhunt.executors import dask_client

        with dask_client(workers, scheduler) as client:
            return client.gather(client.compute(outputs))
    keywords = {"scheduler": "sync"} if executor == "iterative" else {"scheduler": "processes", "num_workers": workers}
    with progress_bar(progress):
        (result,) = dask.compute(outputs, **keywords)
    return result


@contextmanager
def progress_bar(show: bool) -> Iterator[None]:
    """dask's text progress bar for the local schedulers, when asked for."""
    if not show:
        yield
        return
    from dask.diagnostics import ProgressBar

    with ProgressBar():
        yield


def run_chunks(chunks: Sequence[Chunk], guarded: GuardedProcessor, treename: str, executor: str, workers: int, scheduler: str | None, progress: bool) -> dict[Chunk, ChunkResult]:
    """The ``guarded`` processor over ``chunks`` the way an analysis facility's dask-awkward job
    runs: ``apply_to_fileset`` on ``mode="dask"`` events whose partitions are the chunks, then one
    compute. A partition uproot cannot read is a failed chunk with uproot's error, as in Runner mode."""
    try:
        from coffea.dataset_tools import apply_to_fileset
    except ImportError as error:
        raise PairhuntError(f"dask-awkward mode needs the 'dask' extra: pip install 'pairhunt[dask]' ({error})") from error
    from coffea.nanoevents import NanoAODSchema

    fileset = fileset_of_chunks(chunks, treename)
    # a partition uproot cannot read comes back empty instead of failing the whole compute; the
    # guarded processor then fails its chunk with the reason (uproot's own report lies in another graph)
    read_errors = {"allow_read_errors_with_report": (Exception,)}
    lazy, _ = apply_to_fileset(guarded, fileset, schemaclass=NanoAODSchema, uproot_options=read_errors)
    return accumulate(compute(lazy, executor, workers, scheduler, progress).values())["chunks"]


def read_error(metadata: dict, branches: Mapping[str, Sequence[str] | None]) -> str:
    """Why uproot cannot read the chunk ``metadata`` names: its ``branches`` read again, eagerly."""
    import uproot

    from pairhunt.chunks import describe  # chunks imports this module

    names = {name if fields is None else f"{name}_{field}" for name, fields in branches.items() for field in (fields or [None])}
    names |= {f"n{name}" for name, fields in branches.items() if fields is not None}
    try:
        with uproot.open(metadata["filename"]) as handle:
            handle[metadata["treename"]].arrays(
                filter_name=lambda branch: branch in names, entry_start=metadata["entrystart"], entry_stop=metadata["entrystop"]
            )
    except Exception as error:  # noqa: BLE001 - the reason is what is asked for
        return describe(error)
    return "OSError: uproot returned the chunk empty, and reading it again worked"
