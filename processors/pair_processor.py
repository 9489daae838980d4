"""The pairhunt coffea processor: select jets, assign them with each method, fill histograms.

One processor instance carries a topology and a list of assignment methods (baselines, ONNX
models). Per chunk it returns a dict of ``hist.Hist`` (axes: dataset, method, ...), a cutflow
per dataset that accounts for every event read, the events seen per file, and the time spent
per stage. With an ``output_dir`` it also writes one parquet file of per-event results per chunk,
listed in the output under ``written``; an error writing it is an :class:`OutputError`, which
stops the run instead of being taken for a bad input file.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import awkward as ak
import numpy as np
from coffea import processor
from coffea.nanoevents import NanoAODSchema

from pairhunt.assign.base import AssignmentMethod
from pairhunt.candidates import build_candidates
from pairhunt.chunks import describe
from pairhunt.cutflow import Cutflow
from pairhunt.detection import histogrammed
from pairhunt.errors import OutputError, PairhuntError
from pairhunt.event_table import KEYS, EventTable
from pairhunt.inputs import branches_read, event_level_features, object_counts, select_jets
from pairhunt.lazy import is_lazy, process_partitions
from pairhunt.processors.histograms import book, regression
from pairhunt.topology import Topology, load_topology

# NanoAODSchema warns once per chunk about every cross-reference branch a file lacks
# (Jet_genJetIdx, ...): pairhunt's generated files and many skims lack them. Silence it here,
# where it would otherwise flood every worker's log.
warnings.filterwarnings("ignore", message=r".*Missing cross-reference.*")
warnings.filterwarnings("ignore", message=r".*missing cross-reference.*")
# A file without run/luminosityBlock/event would make NanoAODSchema raise before the processor runs
# (a traceback, whatever the methods). Read it instead: only what needs the event number (k-fold
# models) refuses such a file, with one line naming the branch; the per-event table lacks the keys.
NanoAODSchema.error_missing_event_ids = False
warnings.filterwarnings("ignore", message=r"Missing event_ids.*")


# the per-event generator weight, 1 where a file has none
WEIGHT_BRANCH = "genWeight"

# methods already warmed up in this process (a worker runs many chunks)
_WARMED: set[str] = set()


def warm_up_once(methods: Sequence[AssignmentMethod]) -> float:
    """Warm up the methods this process has not warmed up yet; the seconds it took.

    Sessions and compiled code cost about a second per worker process: reported once as
    ``warm-up`` in the timing instead of inflating the first chunk's assignment time.
    """
    start = time.perf_counter()
    cold = [method for method in methods if repr(method) not in _WARMED]
    for method in cold:
        method.warm_up()
        _WARMED.add(repr(method))
    return time.perf_counter() - start if cold else 0.0


class PairProcessor(processor.ProcessorABC):
    """Reconstruct two (or more) parents from jets with several assignment methods."""

    def __init__(
        self,
        topology: Topology | str,
        methods: Sequence[AssignmentMethod],
        output_dir: str | Path | None = None,
    ):
        self.topology = load_topology(topology) if isinstance(topology, str) else topology
        self.methods = list(methods)
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise PairhuntError(f"assignment method names must be unique, got {names}")
        self.output_dir = None if output_dir is None else str(output_dir)

    def empty_output(self) -> dict:
        """The accumulator of a run that saw no events (an empty file, say)."""
        return {"hists": book(self.topology), "cutflow": {}, "files": {}, "timing": {}}

    def branches(self) -> dict[str, list[str] | None]:
        """The NanoAOD branches :meth:`process` reads (what coffea's dask mode projects)."""
        return branches_read(self.topology, (WEIGHT_BRANCH, *KEYS))

    def process(self, events) -> dict:
        """Histograms, cutflow, file accounting and timing of a chunk of events; on coffea's
        dask-awkward events (``mode="dask"``, ``apply_to_fileset``), the same per partition, delayed."""
        if is_lazy(events):
            return process_partitions(self.process_chunk, events, self.branches(), self.empty_output())
        return self.process_chunk(events, events.metadata)

    def process_chunk(self, events, metadata: dict) -> dict:
        """The output of one chunk of concrete events (``metadata``: dataset, filename)."""
        dataset = metadata["dataset"]
        filename = metadata.get("filename", "<events>")
        topology = self.topology
        output = self.empty_output()
        timing: dict[str, float] = {}
        warm_up_seconds = warm_up_once(self.methods)
        if warm_up_seconds:
            timing["warm-up"] = warm_up_seconds
        start = time.perf_counter()

        weights = ak.to_numpy(events[WEIGHT_BRANCH]).astype(np.float64) if WEIGHT_BRANCH in events.fields else np.ones(len(events))
        cutflow = Cutflow(weights)
        features = sorted({f for m in self.methods for f in m.required_features(topology)})
        jets, selected = select_jets(events, topology.jets, cutflow, features, filename)
        jets.globals = event_level_features(events, topology.inputs, selected, filename)
        weight = weights[selected]
        timing["read+select"] = time.perf_counter() - start

        hists = output["hists"]
        hists["n_jets"].fill(dataset=dataset, n_jets=jets.multiplicity, weight=weight)
        table = EventTable(events, selected, jets, object_counts(events, topology.jets), weights) if self.output_dir else None
        for method in self.methods:
            tick = time.perf_counter()
            assignment = method.assign(jets, topology)
            tock = time.perf_counter()
            n_products = topology.products_per_parent if assignment.fixed_multiplicity else None
            candidates = build_candidates(jets, assignment, topology.n_parents, n_products)
            built = time.perf_counter()
            filled = histogrammed(candidates, assignment, method.name, topology.parents, cutflow, selected)
            self._fill(hists, dataset, method.name, filled, assignment.score, weight)
            self._fill_classifications(hists["classification"], dataset, method.name, assignment.heads, weight)
            self._fill_regressions(hists, dataset, method.name, assignment, weight)
            if table is not None:
                table.add_method(method.name, assignment, candidates, topology.parents)
            # ONNX models split their time (features, model, decode); baselines report one step
            for step, seconds in (assignment.timing or {"assign": tock - tick}).items():
                timing[f"{step}:{method.name}"] = seconds
            timing[f"candidates:{method.name}"] = built - tock
            timing[f"fill:{method.name}"] = time.perf_counter() - built

        if table is not None:
            output["written"] = [self._write(table, dataset, metadata)]
        output["cutflow"] = {dataset: cutflow.as_dict()}
        output["files"] = {dataset: {filename: len(events)}}
        output["timing"] = timing
        return output

    def _write(self, table: EventTable, dataset: str, metadata: dict) -> str:
        try:
            return str(table.write(self.output_dir, dataset, metadata))
        except OSError as error:
            raise OutputError(f"cannot write per-event results under {self.output_dir}: {describe(error)}") from error

    @staticmethod
    def _fill(hists, dataset, method, candidates, score, weight) -> None:
        mass, pt = candidates.mass, candidates.pt
        for parent in range(mass.shape[1]):
            ok = np.isfinite(mass[:, parent])
            common = {"dataset": dataset, "method": method, "parent": parent, "weight": weight[ok]}
            hists["mass"].fill(mass=mass[ok, parent], **common)
            hists["candidate_pt"].fill(pt=pt[ok, parent], **common)
        average = candidates.mass_average
        ok = np.isfinite(average)
        hists["mass_average"].fill(dataset=dataset, method=method, mass=average[ok], weight=weight[ok])
        if mass.shape[1] >= 2:
            both = np.isfinite(mass[:, 0]) & np.isfinite(mass[:, 1])
            hists["m1_m2"].fill(
                dataset=dataset, method=method, m1=mass[both, 0], m2=mass[both, 1], weight=weight[both]
            )
        if score is not None:
            ok_score = ok & np.isfinite(score)
            hists["score"].fill(dataset=dataset, method=method, score=score[ok_score], weight=weight[ok_score])
            hists["mass_score"].fill(
                dataset=dataset, method=method, mass=average[ok_score], score=score[ok_score], weight=weight[ok_score]
            )

    @staticmethod
    def _fill_classifications(histogram, dataset, method, heads: dict[str, np.ndarray], weight) -> None:
        """The most probable class of every classification head (events the model saw)."""
        for target, probabilities in heads.items():
            if probabilities.ndim != 2:  # a regression head (_fill_regressions)
                continue
            seen = np.isfinite(probabilities).all(axis=1)
            category = np.argmax(np.where(seen[:, None], probabilities, 0.0), axis=1)
            histogram.fill(dataset=dataset, method=method, target=target, category=category[seen], weight=weight[seen])

    @staticmethod
    def _fill_regressions(hists, dataset, method, assignment, weight) -> None:
        """Each regression head's values in its own histogram (``regression_<target>``), over the
        span its model gives (training mean +- 5 standard deviations; beyond: the flow bins)."""
        for name, (start, stop) in assignment.head_ranges.items():
            if name not in hists:
                hists[name] = regression(name, start, stop)
            values = assignment.heads[name]
            seen = np.isfinite(values)
            hists[name].fill(dataset=dataset, method=method, value=values[seen], weight=weight[seen])

    def postprocess(self, accumulator):
        return accumulator
