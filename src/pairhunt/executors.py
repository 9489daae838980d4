"""coffea executors that stop cleanly: iterative, a local process pool, and Dask.

They implement coffea's executor interface (``executor(items, function, accumulator)``) for
``processor.Runner``, and differ from coffea's own in what a stop costs:

- an interruption (Ctrl-C, SIGTERM) or a failing chunk cancels the pending chunks and stops the
  running ones at once, instead of letting the workers run to the end;
- a worker that dies (killed, out of memory) raises :class:`WorkerLost`, without a traceback
  printed on the way; Dask first re-runs the chunk on another worker, as it always does;
- the progress bar is shown only when asked for (coffea's futures executor ignores ``status``);
- no chunk is retried: a chunk that cannot be read is reported, by
  :class:`pairhunt.chunks.GuardedProcessor`, and read again by ``pairhunt run --resume``.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from coffea.processor import accumulate
from coffea.processor.executor import ExecutorBase
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pairhunt.errors import PairhuntError, pairhunt_cause
from pairhunt.interrupt import workers_ignore_ctrl_c

EXECUTORS = ("iterative", "futures", "dask")


class WorkerLost(RuntimeError):
    """A worker process died before returning its chunks."""


def call_unwrapped(function: Callable, item: Any) -> Any:
    """``function(item)`` in a worker; a PairhuntError that coffea wrapped is raised as itself,
    because only the wrapper, without its cause, would travel back to the main process."""
    try:
        return function(item)
    except Exception as error:
        cause = pairhunt_cause(error)
        if cause is None:
            raise
    raise cause  # outside the except block, so that its context does not loop back to the wrapper


@contextmanager
def progress_bar(show: bool, description: str, total: int) -> Iterator[Callable[[], None]]:
    """A rich bar (nothing at all when ``show`` is false); yields the function that advances it."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not show) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)


@dataclass
class IterativeExecutor(ExecutorBase):
    """One chunk after the other in this process."""

    def __call__(self, items: Iterable, function: Callable, accumulator: Any):
        items = list(items)
        with progress_bar(self.status, self.desc, len(items)) as advance:
            for item in items:
                accumulator = accumulate([function(item)], accumulator)
                advance()
        return accumulator, 0


@dataclass
class PoolExecutor(ExecutorBase):
    """Chunks in ``workers`` local processes (loky, as coffea's futures executor)."""

    workers: int = 1

    def __call__(self, items: Iterable, function: Callable, accumulator: Any):
        import loky

        items = list(items)
        pool = loky.ProcessPoolExecutor(max_workers=self.workers)
        try:
            futures = [pool.submit(call_unwrapped, function, item) for item in items]
            with progress_bar(self.status, self.desc, len(items)) as advance:
                for future in concurrent.futures.as_completed(futures):
                    accumulator = accumulate([future.result()], accumulator)
                    advance()
        except concurrent.futures.BrokenExecutor as error:
            pool.shutdown(wait=True, kill_workers=True)
            raise WorkerLost(f"a worker process died ({type(error).__name__}: {error})") from error
        except BaseException:
            pool.shutdown(wait=True, kill_workers=True)
            raise
        pool.shutdown(wait=True)
        return accumulator, 0


@dataclass
class DaskClientExecutor(ExecutorBase):
    """Chunks as tasks of a Dask ``client``; results gathered as they complete."""

    client: Any = None

    def __call__(self, items: Iterable, function: Callable, accumulator: Any):
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        items = list(items)
        futures = self.client.map(partial(call_unwrapped, function), items, pure=False)
        try:
            with progress_bar(self.status, self.desc, len(items)) as advance:
                for future in as_completed(futures):
                    accumulator = accumulate([future.result()], accumulator)
                    advance()
        except KilledWorker as error:
            raise WorkerLost(f"Dask workers died on every attempt at a chunk ({error})") from error
        finally:
            self.client.cancel(futures)
        return accumulator, 0


@contextmanager
def dask_client(workers: int, scheduler: str | None) -> Iterator[Any]:
    """A Dask client to ``scheduler`` (an analysis facility's) or to a LocalCluster of ``workers`` processes."""
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        cluster = None
    else:
        with workers_ignore_ctrl_c():
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,  # not a warning per task cancelled by a stop
            )
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextmanager
def executor_for(name: str, workers: int, scheduler: str | None, progress: bool) -> Iterator[ExecutorBase]:
    """The executor ``name``; for ``dask`` a client to ``scheduler`` or a LocalCluster of ``workers`` processes."""
    if name == "iterative":
        yield IterativeExecutor(status=progress)
    elif name == "futures":
        yield PoolExecutor(workers=workers, status=progress)
    elif name == "dask":
        with dask_client(workers, scheduler) as client:
            yield DaskClientExecutor(client=client, status=progress)
    else:
        raise PairhuntError(f"unknown executor {name!r}; choose one of {EXECUTORS}")
