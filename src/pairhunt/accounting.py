"""Where every entry of every file went: processed, in a failed chunk, not processed, or skipped."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pairhunt.chunks import ChunkResult


@dataclass
class FileReport:
    """What happened to each file of the fileset.

    Per file with entries: ``entries == processed + failed + not_processed``, where failed
    events are those of ``failed_chunks`` and not processed ones lie beyond ``--maxchunks`` or
    in chunks a stopped run never reached. Files that could not be opened are ``skipped``.
    """

    entries: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    processed: dict[str, int] = field(default_factory=dict)
    failed_chunks: list[dict] = field(default_factory=list)

    def account(self, results: Iterable[ChunkResult]) -> None:
        """Count the chunk results (in canonical chunk order) into processed and failed."""
        self.processed = {name: 0 for name in self.entries}
        self.failed_chunks = []
        for result in sorted(results, key=lambda r: r.chunk):
            chunk = result.chunk
            if result.processed:
                self.processed[chunk.filename] += chunk.events
            else:
                self.failed_chunks.append({**chunk.as_dict(), "events": chunk.events, "error": result.error})

    @property
    def failed_events(self) -> int:
        return sum(c["events"] for c in self.failed_chunks)

    @property
    def not_processed(self) -> dict[str, int]:
        """Entries neither processed nor in a failed chunk, for the files that have some."""
        failed: dict[str, int] = {}
        for c in self.failed_chunks:
            failed[c["file"]] = failed.get(c["file"], 0) + c["events"]
        rest = {name: n - self.processed.get(name, 0) - failed.get(name, 0) for name, n in self.entries.items()}
        return {name: n for name, n in rest.items() if n}

    def as_dict(self) -> dict:
        return {
            "entries": self.entries,
            "processed": self.processed,
            "failed_chunks": self.failed_chunks,
            "not_processed": self.not_processed,
            "skipped": self.skipped,
        }


def dataset_warnings(fileset: dict[str, dict], report: FileReport) -> list[str]:
    """Datasets that contribute no events although the user named them."""
    warnings = []
    for dataset, spec in fileset.items():
        files = list(spec["files"])
        if not files:
            warnings.append(f"dataset {dataset!r} lists no files")
        elif all(f in report.skipped for f in files):
            warnings.append(f"dataset {dataset!r}: every file was skipped")
        elif sum(report.entries.get(f, 0) for f in files) == 0:
            warnings.append(f"dataset {dataset!r} has no events")
    return warnings

