"""The detection cut of SPA-NET models in the processor: which candidates reach the histograms.

A parent candidate is histogrammed when the model's detection probability for its parent exceeds
the cut; the average mass and m1-m2 need every parent's. Nothing is dropped silently: the
cutflow counts, per method, the selected events that pass for each parent and for every parent
(steps that branch off the selection, not ANDed into it), and the per-event table keeps every
event with its probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pairhunt.assign.base import JetAssignment
from pairhunt.candidates import Candidates
from pairhunt.contract import detection_output
from pairhunt.cutflow import Cutflow


def cut_steps(method: str, parents: Sequence[str], cut: float) -> list[str]:
    """Cutflow step names: one per parent, then every parent."""
    return [f"{method}: {detection_output(p)} > {cut:g}" for p in parents] + [f"{method}: every detection > {cut:g}"]


def histogrammed(
    candidates: Candidates, assignment: JetAssignment, method: str, parents: Sequence[str], cutflow: Cutflow, selected: np.ndarray
) -> Candidates:
    """The candidates a method fills into the histograms; a detection cut is counted in ``cutflow``.

    ``selected`` marks the chunk's events that passed the selection (the rows of ``candidates``).
    """
    if assignment.detection_cut is None:
        return candidates
    passing = assignment.detection > assignment.detection_cut  # NaN (no jets) fails
    columns = [passing[:, p] for p in range(len(parents))] + [passing.all(axis=1)]
    for step, column in zip(cut_steps(method, parents, assignment.detection_cut), columns):
        every_event = np.zeros(len(selected), dtype=bool)
        every_event[selected] = column
        cutflow.count(step, every_event)
    return candidates.keeping(passing)
