"""The output directory of ``pairhunt run``: filled in ``OUT/.incomplete``, moved into place at the end.

``OUT/summary.json``, written last, marks a complete run. While a run goes on, and after it
stopped (interrupted, chunks failed, an error), everything is in ``OUT/.incomplete``: ``run.json``
(the options that determine the results), the chunk store (``files.json``, ``chunks/``),
``events/`` and, once it stopped, a partial ``summary.json``. ``--resume`` finishes such a run;
``--overwrite`` starts over; without either a non-empty ``OUT`` is refused, so that the files of
two runs never mix.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pairhunt.atomic import write_text_atomically
from pairhunt.chunks import describe
from pairhunt.errors import OutputError, PairhuntError
from pairhunt.outputs import write_hists, write_summary
from pairhunt.store import ChunkStore

STAGING = ".incomplete"
RESULTS = ("hists", "events")


def require_complete(run_dir: str | Path) -> None:
    """Refuse to read a run that has not finished: its files are a part of its events."""
    staging = Path(run_dir) / STAGING
    if staging.is_dir():
        raise PairhuntError(
            f"{run_dir} holds an unfinished run (see {staging / 'summary.json'}); finish it with `pairhunt run --resume`"
        )


def require_finished(run_dir: str | Path) -> None:
    """Refuse anything but a finished run: ``summary.json`` is written last."""
    require_complete(run_dir)
    if not (Path(run_dir) / "summary.json").is_file():
        raise PairhuntError(f"{run_dir} is not a finished pairhunt run (no summary.json)")


class RunDirectory:
    """``root`` (``OUT``) and its staging directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.staging = self.root / STAGING

    def prepare(self, config: dict, overwrite: bool = False, resume: bool = False) -> ChunkStore:
        """The store of this run, after refusing or cleaning what ``root`` already holds.

        ``config`` holds what determines the results; a run resumes only with the same.
        """
        config = json.loads(json.dumps(config))  # as it reads back from run.json
        if self.root.exists() and not self.root.is_dir():
            raise PairhuntError(f"output {self.root} exists and is not a directory")
        contents = sorted(self.root.iterdir()) if self.root.is_dir() else []
        if resume and (self.staging / "run.json").is_file():
            self._check_resumable(config)
        elif contents:
            if resume:
                done = "a complete run" if (self.root / "summary.json").is_file() else "no pairhunt run"
                raise PairhuntError(f"nothing to resume in {self.root}: it holds {done}")
            if not overwrite:
                raise PairhuntError(f"{self.root} is not empty; pass --overwrite to replace its run or --resume to finish it")
            self._clean(contents)
        try:
            self.staging.mkdir(parents=True, exist_ok=True)
            write_text_atomically(self.staging / "run.json", json.dumps(config, indent=1) + "\n")
        except OSError as error:
            raise OutputError(f"cannot write to {self.root}: {describe(error)}") from error
        return ChunkStore(self.staging)

    def _check_resumable(self, config: dict) -> None:
        previous = json.loads((self.staging / "run.json").read_text())
        changed = [key for key in sorted(set(config) | set(previous)) if config.get(key) != previous.get(key)]
        if changed:
            raise PairhuntError(
                f"cannot resume {self.root}: its run was made with another {', '.join(changed)}; "
                "give the same options, or --overwrite to start over"
            )

    def _clean(self, contents: list[Path]) -> None:
        names = {p.name for p in contents}
        if not names & {"summary.json", STAGING}:
            raise PairhuntError(f"{self.root} is not empty and holds no pairhunt run; --overwrite replaces only runs")
        for path in contents:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    def stop(self, summary: dict) -> Path | None:
        """Write the partial summary of a stopped run; None when even that cannot be written."""
        try:
            return write_summary(summary, self.staging / "summary.json")
        except OSError:
            return None

    def finish(self, output: dict, summary: dict, store: ChunkStore) -> dict[str, Path]:
        """Write the histograms, move the results into ``root``, write ``summary.json`` last."""
        try:
            write_hists(output, self.staging / "hists")
            recorded = store.recorded_files()
            for path in (self.staging / "events").rglob("*"):
                if path.is_file() and path not in recorded:
                    path.unlink()  # a chunk's table written before a crash, never recorded
            for name in RESULTS:
                target = self.root / name
                if target.exists():
                    shutil.rmtree(target)
                if (self.staging / name).exists():
                    (self.staging / name).rename(target)
            paths = {"accumulator": self.root / "hists" / "hists.coffea", "root": self.root / "hists" / "hists.root"}
            paths["summary"] = write_summary(summary, self.root / "summary.json")
            shutil.rmtree(self.staging)
        except OSError as error:
            raise OutputError(f"cannot move the results into {self.root}: {describe(error)}") from error
        return paths
