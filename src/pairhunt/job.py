"""One processing job: methods, processor, Runner and run directory, ending in ``summary.json``.

``pairhunt run`` and ``pairhunt demo`` both run through :func:`run_job`, so a demo's run
directory is the same as any run's: filled in ``OUT/.incomplete``, ``summary.json`` written
last with its status, topology, methods, accounting and timing; a stopped job leaves a partial
summary that says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from pairhunt.accounting import FileReport, dataset_warnings
from pairhunt.assign.base import AssignmentMethod
from pairhunt.errors import PairhuntError
from pairhunt.interrupt import Interrupted, RunInterrupted, interruptible
from pairhunt.rundir import RunDirectory
from pairhunt.runner import PartialRun, RunResult, run_fileset
from pairhunt.topology import Topology


@dataclass(frozen=True)
class JobOptions:
    """What a job runs and how (``pairhunt run``'s options)."""

    topology: Topology
    methods: Sequence[str]
    executor: str = "iterative"
    mode: str = "runner"  # or dask-awkward (coffea's dask mode), same chunks and outputs
    workers: int = 2
    scheduler: str | None = None
    chunksize: int = 100_000
    maxchunks: int | None = None
    events: bool = True  # per-event parquet tables
    detection_cut: float | None = None
    top_k: int | None = None
    device: str = "auto"
    tf32: bool = True
    onnx_threads: int = 1
    onnx_batch_size: int | None = None
    skipbadfiles: bool = True
    allow_partial: bool = False
    progress: bool = True

    def config(self, fileset: dict) -> dict:
        """What determines a job's results: a stopped job resumes only with the same."""
        return {
            "fileset": fileset,
            "topology": self.topology.to_dict(),
            "methods": list(self.methods),
            "chunksize": self.chunksize,
            "maxchunks": self.maxchunks,
            "events": self.events,
            "detection_cut": self.detection_cut,
            "top_k": self.top_k,
            "device": self.device,
            "tf32": self.tf32,
        }

    def summary(
        self,
        report: FileReport,
        status: str,
        reason: str | None = None,
        result: RunResult | None = None,
        warnings: Sequence[str] = (),
    ) -> dict:
        """``summary.json``: ``status`` complete, partial (failed chunks allowed) or incomplete (stopped).

        Without the ``result`` of the job (interrupted), only the file accounting is known.
        """
        events = sum(report.processed.values())
        summary = {"status": status, **({"reason": reason} if reason else {})}
        summary.update(
            topology=self.topology.name,
            topology_definition=self.topology.to_dict(),  # `pairhunt evaluate` rebuilds a topology YAML of the user's from it
            methods=list(self.methods),
            detection_cut=self.detection_cut,
            top_k=self.top_k,
            device=self.device,
            tf32=self.tf32,
            executor=self.executor,
            mode=self.mode,
            workers=self.workers,
            chunksize=self.chunksize,
            maxchunks=self.maxchunks,
            events=events,
            events_failed=report.failed_events,
        )
        if result is not None:
            summary["events_resumed"] = result.resumed_events
            summary["wall_time_s"] = round(result.seconds, 3)
            new_events = events - result.resumed_events
            summary["events_per_s"] = round(new_events / result.seconds, 1) if result.seconds > 0 else None
            summary["cutflow"] = result.output["cutflow"]
            summary["timing_s"] = result.output["timing"]
        summary["files"] = report.as_dict()
        summary["warnings"] = list(warnings)
        return summary


@dataclass
class Job:
    """A finished job: the Runner's result, its summary, the files written and the warnings."""

    result: RunResult
    summary: dict
    paths: dict[str, Path]
    warnings: list[str] = field(default_factory=list)


def assignment_methods(options: JobOptions) -> list[AssignmentMethod]:
    """The assignment methods of the job, refusing options no method can use."""
    from pairhunt.assign.onnx import OnnxAssignment, select_providers
    from pairhunt.assign.registry import make_method

    session = {
        "threads": options.onnx_threads, "device": options.device, "tf32": options.tf32,
        "batch_size": options.onnx_batch_size,
    }
    methods = [make_method(n, detection_cut=options.detection_cut, top_k=options.top_k, **session) for n in options.methods]
    if options.device == "cuda":  # refused here, in one line, rather than by every worker
        import onnxruntime

        select_providers(onnxruntime.get_available_providers(), "cuda")
    for option, value in (("--detection-cut", options.detection_cut), ("--top-k", options.top_k)):
        if value is not None and not any(isinstance(m, OnnxAssignment) for m in methods):
            raise PairhuntError(f"{option} needs a SPA-NET model method (--method NAME=MODEL)")
    return methods


def run_job(options: JobOptions, fileset: dict, output: str | Path, overwrite: bool = False, resume: bool = False) -> Job:
    """Run the processor over ``fileset`` into the run directory ``output``.

    Raises :class:`~pairhunt.interrupt.RunInterrupted` on SIGINT/SIGTERM and :class:`PairhuntError` when chunks failed
    without ``allow_partial`` or the job cannot go on; either way the partial summary is written.
    """
    from pairhunt.processors import PairProcessor

    methods = assignment_methods(options)
    rundir = RunDirectory(output)
    store = rundir.prepare(options.config(fileset), overwrite=overwrite, resume=resume)
    proc = PairProcessor(options.topology, methods, output_dir=rundir.staging if options.events else None)
    with interruptible():
        try:
            result = run_fileset(
                fileset,
                proc,
                executor=options.executor,
                workers=options.workers,
                scheduler=options.scheduler,
                chunksize=options.chunksize,
                maxchunks=options.maxchunks,
                skipbadfiles=options.skipbadfiles,
                progress=options.progress,
                store=store,
                allow_partial=options.allow_partial,
                mode=options.mode,
            )
        except Interrupted as interrupt:
            report = store.report()
            path = rundir.stop(options.summary(report, "incomplete", f"interrupted by {interrupt.name}"))
            raise RunInterrupted(
                f"interrupted by {interrupt.name} after {sum(report.processed.values())} of "
                f"{sum(report.entries.values())} events; partial summary {path}",
                interrupt.exit_code,
            ) from interrupt
        except PartialRun as stopped:
            path = rundir.stop(options.summary(stopped.result.report, "incomplete", str(stopped), stopped.result))
            raise PairhuntError(
                f"{stopped}; partial summary {path}; --resume retries the failed chunks, --allow-partial accepts the loss"
            ) from stopped
        except PairhuntError as error:
            with suppress(OSError):  # the error may be the disk's
                rundir.stop(options.summary(store.report(), "incomplete", str(error)))
            raise
        warnings = dataset_warnings(fileset, result.report)
        status = "partial" if result.report.failed_chunks else "complete"
        summary = options.summary(result.report, status, result=result, warnings=warnings)
        paths = rundir.finish(result.output, summary, store)
    return Job(result, summary, paths, warnings)
