"""The ABC model in the processor: hard category per jet, parent candidates, anomaly score.

Each jet goes to the category of highest probability: parent A (0), parent B (1) or ISR (none).
A parent takes as many jets as the model gives it, so candidates are built with free
multiplicity. The per-event score rides along for the score histograms: the mass-decorrelated
anomaly score when the model has it (a percentile in [0, 1]: a cut at x keeps a fraction 1 - x of
the background at every mass), the raw autoencoder error otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pairhunt.assign.base import JetAssignment
from pairhunt.assign.onnx import OnnxModel
from pairhunt.contract import ANOMALY_SCORE, ANOMALY_SCORE_DECORRELATED, CATEGORY_PROBABILITIES
from pairhunt.inputs import JetInputs
from pairhunt.topology import Topology

PARENT_CATEGORIES = 2  # categories 0 and 1 are the parents; the last is ISR


def hard_assignment(probabilities: np.ndarray, mask: np.ndarray) -> JetAssignment:
    """Argmax category per real jet; ISR and padding get -1. Product slot = rank within the parent."""
    category = np.argmax(np.nan_to_num(probabilities, nan=-1.0), axis=-1)
    parent = np.where(mask & (category < PARENT_CATEGORIES), category, -1)
    product = np.full(parent.shape, -1, dtype=np.int64)
    for p in range(PARENT_CATEGORIES):
        member = parent == p
        product = np.where(member, np.cumsum(member, axis=1) - 1, product)
    return JetAssignment(parent=parent.astype(np.int8), product=product.astype(np.int8), fixed_multiplicity=False)


@dataclass
class AbcAssignment(OnnxModel):
    """Assign jets with an exported ABC model; ``score`` is its anomaly score."""

    kind = "abc"
    name: str = "abc"

    def unassigned(self, jets: JetInputs) -> JetAssignment:
        empty = super().unassigned(jets)
        empty.fixed_multiplicity = False
        empty.score = np.full(jets.n_events, np.nan)
        return empty

    def decode(self, outputs: dict[str, np.ndarray], jets: JetInputs, topology: Topology) -> JetAssignment:
        assignment = hard_assignment(self.output(outputs, CATEGORY_PROBABILITIES), jets.mask)
        score = ANOMALY_SCORE_DECORRELATED if ANOMALY_SCORE_DECORRELATED in outputs else ANOMALY_SCORE
        assignment.score = self.output(outputs, score).astype(np.float64)
        return assignment
