"""Chunks of a run, and the processor wrapper that reports every chunk as processed or failed.

coffea's Runner retries a chunk whose reading raises and, with ``skipbadfiles``, drops it with a
warning: the events of a truncated basket vanish from a run that exits 0. Wrapped in
:class:`GuardedProcessor`, a processor instead returns, per chunk, either its output or the error
that stopped it, keyed by the chunk, so that every entry of every file is accounted for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from coffea import processor

from pairhunt.errors import PairhuntError
from pairhunt.lazy import is_lazy, process_partitions, read_error

if TYPE_CHECKING:
    from pairhunt.store import ChunkStore


@dataclass(frozen=True, order=True)
class Chunk:
    """An entry range of one file of a dataset; the order is the canonical merge order."""

    dataset: str
    filename: str
    entrystart: int
    entrystop: int

    @classmethod
    def from_metadata(cls, metadata: dict) -> Chunk:
        """The chunk whose events carry ``metadata`` (coffea sets dataset, filename, entry range)."""
        return cls(metadata["dataset"], metadata["filename"], int(metadata["entrystart"]), int(metadata["entrystop"]))

    @classmethod
    def from_item(cls, item) -> Chunk:
        """The chunk of a coffea ``WorkItem``."""
        return cls(item.dataset, item.filename, int(item.entrystart), int(item.entrystop))

    @property
    def events(self) -> int:
        return self.entrystop - self.entrystart

    @property
    def name(self) -> str:
        """A file name unique to the chunk: file stem, hash of (dataset, path), entry range."""
        tag = hashlib.sha1(f"{self.dataset}\0{self.filename}".encode()).hexdigest()[:10]
        stem = Path(self.filename).name.removesuffix(".root")
        return f"{stem}-{tag}-{self.entrystart}-{self.entrystop}"

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "file": self.filename, "entry_start": self.entrystart, "entry_stop": self.entrystop}

    @classmethod
    def from_dict(cls, data: dict) -> Chunk:
        return cls(data["dataset"], data["file"], int(data["entry_start"]), int(data["entry_stop"]))


@dataclass
class ChunkResult:
    """What became of a chunk: processed (``error`` None) or failed with the error.

    ``output`` is the processor's accumulator until a :class:`~pairhunt.store.ChunkStore` holds
    it on disk; ``written`` lists the files the processor wrote for the chunk.
    """

    chunk: Chunk
    error: str | None = None
    output: dict | None = None
    written: tuple[str, ...] = ()

    @property
    def processed(self) -> bool:
        return self.error is None


def describe(error: BaseException) -> str:
    """``module.Type: message`` on one line (uproot's messages span several)."""
    kind = type(error)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return " ".join(f"{name}: {error}".split())


class GuardedProcessor(processor.ProcessorABC):
    """Run the wrapped processor on one chunk and return ``{"chunks": {chunk: ChunkResult}}``.

    An exception while reading or processing the chunk (decompression error, truncated basket)
    fails the chunk, not the run. A :class:`PairhuntError` (a missing branch, a model that does
    not fit the topology, an :class:`~pairhunt.errors.OutputError`) concerns every chunk and
    stops the run. With a ``store`` the chunk's output is saved by the worker that made it.

    The wrapped processor may return ``"written"``: the paths of the files it wrote for the
    chunk; they move from the accumulator into the chunk's manifest entry.
    """

    def __init__(self, inner: processor.ProcessorABC, store: ChunkStore | None = None):
        self.inner = inner
        self.store = store

    def process(self, events) -> dict:
        if is_lazy(events):  # coffea's dask-awkward mode: each partition is a chunk
            return process_partitions(self.process_chunk, events, self.inner.branches(), {"chunks": {}})
        return self.process_chunk(events, events.metadata)

    def process_chunk(self, events, metadata: dict) -> dict:
        """The wrapped processor's output for one chunk of concrete events, or its error."""
        chunk = Chunk.from_metadata(metadata)
        result = None
        try:
            if len(events) != chunk.events:  # dask-awkward mode: uproot returns an unreadable partition empty
                result = ChunkResult(chunk, error=read_error(metadata, self.inner.branches()))
            else:
                output = self.inner.process_chunk(events, metadata)
        except PairhuntError:
            raise
        except Exception as error:  # noqa: BLE001 - every other failure is this chunk's, reported with it
            result = ChunkResult(chunk, error=describe(error))
        if result is None:
            written = tuple(str(p) for p in output.pop("written", ()))
            result = ChunkResult(chunk, output=output, written=written)
        if self.store is not None:
            self.store.save(result)
            result = replace(result, output=None)
        return {"chunks": {chunk: result}}

    def postprocess(self, accumulator):
        return accumulator
