"""The histograms a pairhunt processor fills: named, labelled axes, weighted storage."""

from __future__ import annotations

import hist

from pairhunt.topology import Topology

PT_AXIS = (60, 0.0, 1500.0)
SCORE_AXIS = (50, 0.0, 5.0)
MAX_JETS_AXIS = 16
REGRESSION_BINS = 100


def _dataset_method():
    return hist.Hist.new.StrCat([], name="dataset", label="Dataset", growth=True).StrCat(
        [], name="method", label="Assignment method", growth=True
    )


def regression(output: str, start: float, stop: float) -> hist.Hist:
    """The values of one regression head (its output ``regression_<target>``), by dataset and method."""
    return _dataset_method().Reg(REGRESSION_BINS, start, stop, name="value", label=f"Model output {output}").Weight()


def book(topology: Topology) -> dict[str, hist.Hist]:
    """Empty histograms for one topology; filled per dataset and assignment method."""
    bins, start, stop = topology.mass_axis
    n_parents = topology.n_parents
    return {
        "mass": _dataset_method()
        .IntCat(list(range(n_parents)), name="parent", label="Parent index")
        .Reg(bins, start, stop, name="mass", label="Parent candidate mass [GeV]")
        .Weight(),
        "mass_average": _dataset_method().Reg(bins, start, stop, name="mass", label="Average parent mass [GeV]").Weight(),
        "m1_m2": _dataset_method()
        .Reg(bins // 2, start, stop, name="m1", label="Mass of parent 0 [GeV]")
        .Reg(bins // 2, start, stop, name="m2", label="Mass of parent 1 [GeV]")
        .Weight(),
        "candidate_pt": _dataset_method()
        .IntCat(list(range(n_parents)), name="parent", label="Parent index")
        .Reg(*PT_AXIS, name="pt", label="Parent candidate $p_T$ [GeV]")
        .Weight(),
        "score": _dataset_method().Reg(*SCORE_AXIS, name="score", label="Anomaly score").Weight(),
        "mass_score": _dataset_method()
        .Reg(bins, start, stop, name="mass", label="Average parent mass [GeV]")
        .Reg(*SCORE_AXIS, name="score", label="Anomaly score")
        .Weight(),
        "classification": _dataset_method()
        .StrCat([], name="target", label="Classification head", growth=True)
        .IntCat([], name="category", label="Most probable class", growth=True)
        .Weight(),
        "n_jets": hist.Hist.new.StrCat([], name="dataset", label="Dataset", growth=True)
        .Integer(0, MAX_JETS_AXIS, name="n_jets", label="Selected jets per event", overflow=True)
        .Weight(),
    }
