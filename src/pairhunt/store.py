"""Per-chunk results of a run on disk, so that a stopped run resumes where it stopped.

Under the store's root (``OUT/.incomplete`` for ``pairhunt run``):

- ``files.json``: the probed files (entries per file, skipped files), written first;
- ``chunks/NAME.coffea``: the accumulator of a processed chunk;
- ``chunks/NAME.json``: the chunk's manifest entry (dataset, file, entry range, status, error,
  and the sha256 of every file it produced), written last: an entry exists only for a chunk
  that finished, and a processed chunk whose files do not match their checksums is run again.

Workers write the chunk files themselves, so the root must be on a filesystem they share.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from coffea.util import load, save

from pairhunt.accounting import FileReport
from pairhunt.atomic import TMP_SUFFIX, atomic_path, sha256, write_text_atomically
from pairhunt.chunks import Chunk, ChunkResult, describe
from pairhunt.errors import OutputError

PROCESSED, FAILED = "processed", "failed"


class ChunkStore:
    """The chunk results of one run under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def chunk_dir(self) -> Path:
        return self.root / "chunks"

    def _entry_path(self, chunk: Chunk) -> Path:
        return self.chunk_dir / f"{chunk.name}.json"

    def _output_path(self, chunk: Chunk) -> Path:
        return self.chunk_dir / f"{chunk.name}.coffea"

    # --- worker side -------------------------------------------------------------------------

    def save(self, result: ChunkResult) -> None:
        """Write the chunk's accumulator, then its manifest entry."""
        chunk = result.chunk
        entry = {**chunk.as_dict(), "status": PROCESSED if result.processed else FAILED, "error": result.error, "outputs": {}}
        try:
            if result.output is not None:
                path = self._output_path(chunk)
                with atomic_path(path) as tmp:
                    save(result.output, tmp)
                files = [path, *map(Path, result.written)]
                entry["outputs"] = {os.path.relpath(f, self.root): sha256(f) for f in files}
            write_text_atomically(self._entry_path(chunk), json.dumps(entry, indent=1) + "\n")
        except OSError as error:
            raise OutputError(f"cannot save chunk {chunk.name} in {self.root}: {describe(error)}") from error

    # --- main process ------------------------------------------------------------------------

    def begin(self, plan: list[Chunk], report: FileReport) -> None:
        """Record the probed files; forget chunks outside ``plan``, processed chunks whose files
        changed, and temporary files of writes that never finished."""
        self.chunk_dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.root.rglob(f".*{TMP_SUFFIX}"):
            tmp.unlink()
        planned = set(plan)
        for chunk, entry in self._entries().items():
            if chunk not in planned or (entry["status"] == PROCESSED and not self._intact(entry)):
                self._forget(chunk, entry)
        data = {"entries": report.entries, "skipped": report.skipped}
        write_text_atomically(self.root / "files.json", json.dumps(data, indent=1) + "\n")

    def report(self) -> FileReport:
        """The probed files and the chunks finished so far (an empty report before :meth:`begin`)."""
        path = self.root / "files.json"
        if not path.is_file():
            return FileReport()
        data = json.loads(path.read_text())
        report = FileReport(entries=data["entries"], skipped=data["skipped"])
        report.account(self.results().values())
        return report

    def results(self) -> dict[Chunk, ChunkResult]:
        """Every chunk with a manifest entry; outputs stay on disk (:meth:`load_output`)."""
        return {chunk: ChunkResult(chunk, error=entry["error"]) for chunk, entry in self._entries().items()}

    def processed(self) -> set[Chunk]:
        return {chunk for chunk, result in self.results().items() if result.processed}

    def load_output(self, chunk: Chunk) -> dict:
        return load(self._output_path(chunk))

    def recorded_files(self) -> set[Path]:
        """Every file a manifest entry lists, as a path under the root."""
        return {self.root / name for entry in self._entries().values() for name in entry["outputs"]}

    def _entries(self) -> dict[Chunk, dict]:
        entries = {}
        for path in sorted(self.chunk_dir.glob("*.json")):
            entry = json.loads(path.read_text())
            entries[Chunk.from_dict(entry)] = entry
        return entries

    def _intact(self, entry: dict) -> bool:
        files = {self.root / name: digest for name, digest in entry["outputs"].items()}
        return all(path.is_file() and sha256(path) == digest for path, digest in files.items())

    def _forget(self, chunk: Chunk, entry: dict) -> None:
        self._entry_path(chunk).unlink()
        for name in entry["outputs"]:
            (self.root / name).unlink(missing_ok=True)
