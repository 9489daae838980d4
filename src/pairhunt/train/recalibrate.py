"""Remake the mass calibration of an exported ABC model on new background, without its checkpoints.

Why: ``anomaly_score_decorrelated`` reads a calibration table made after training; a larger
calibration sample or a smoothed table should not need the training run, which may be gone or no
longer reproducible. The exported graph is cut after its category probabilities and anomaly score
(nothing upstream of them changes), and a new calibration stage, pairhunt's own
:class:`MassCalibration` on the average mass of the hard assignment, exported alone, is joined
to it under the same output name. :func:`recalibrate` checks on the calibration events, before it
writes, that the first outputs are bitwise the old file's and the new one is the stage's.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pairhunt.assign.onnx import read_contract
from pairhunt.atomic import atomic_path
from pairhunt.contract import ANOMALY_SCORE, ANOMALY_SCORE_DECORRELATED, CATEGORY_PROBABILITIES, JETS_INPUT, MASK_INPUT, ModelContract
from pairhunt.errors import PairhuntError
from pairhunt.train.abc_model import MassCalibration, average_mass, hard_categories
from pairhunt.train.abc_trainer import calibration_table, normalised_weights
from pairhunt.train.data import TrainingData
from pairhunt.train.export import OPSET
from pairhunt.train.pairwise import four_momenta, kinematic_index

STAGE_PREFIX = "calibration_"
BATCH = 4096
# The joined stage against torch: float32 rounding of the mass moves an event's interpolation between
# two bin centres by (rounding / their distance), which with 480 narrow bins reached 1.5e-4 on
# 380k events; it can never move the score by a whole quantile step (1 / points). A wrong table or
# mass moves many events by far more.
TOLERANCE = 1e-4
ROUNDED_SHARE = 1e-3  # the largest share of events allowed beyond TOLERANCE


class CalibrationStage(nn.Module):
    """The decorrelated score from an ABC graph's outputs: average mass of the argmax assignment
    (ISR jets left out, as the model computes it), then the calibration table."""

    def __init__(self, features: list[str], table: dict | None = None):
        super().__init__()
        self.index = kinematic_index(features)
        self.calibration = MassCalibration()
        if table is not None:
            self.calibration.set(torch.tensor(table["centres"]), torch.tensor(table["quantiles"]), torch.tensor(table["high_mass_power"]))

    def mass(self, probabilities: torch.Tensor, jets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        p4 = four_momenta(jets * mask.unsqueeze(-1).to(jets.dtype), self.index)
        return average_mass(hard_categories(probabilities, mask), p4)

    def forward(self, score: torch.Tensor, probabilities: torch.Tensor, jets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.calibration(score, self.mass(probabilities, jets, mask))


@dataclass
class Recalibration:
    """What :func:`recalibrate` made and measured."""

    table: dict
    events: int
    effective_events: float
    changed_fraction: float  # events whose decorrelated score moved by more than one table step


def abc_contract(path: str | Path) -> ModelContract:
    """The contract of an exported ABC model with a decorrelated score; a clear error otherwise."""
    contract = read_contract(Path(path))
    if contract.kind != "abc" or ANOMALY_SCORE_DECORRELATED not in contract.outputs:
        raise PairhuntError(f"{path} is a {contract.kind} model without '{ANOMALY_SCORE_DECORRELATED}': only ABC models are recalibrated")
    if contract.inputs != [JETS_INPUT, MASK_INPUT]:
        raise PairhuntError(f"{path}: an ABC model reads {[JETS_INPUT, MASK_INPUT]}, this one {contract.inputs}")
    return contract


def model_outputs(model, data: TrainingData, names: list[str]) -> dict[str, np.ndarray]:
    """``names`` of an ONNX model (path or proto) on ``data``, in batches, on the CPU."""
    import onnxruntime as ort

    source = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    parts = [
        session.run(names, {JETS_INPUT: data.features[start : start + BATCH].astype(np.float32), MASK_INPUT: data.mask[start : start + BATCH]})
        for start in range(0, len(data), BATCH)
    ]
    return {name: np.concatenate([part[i] for part in parts]) for i, name in enumerate(names)}


def stage_graph(features: list[str], table: dict):
    """:class:`CalibrationStage` with ``table`` as an ONNX model, its names prefixed ``STAGE_PREFIX``."""
    import onnx

    stage = CalibrationStage(features, table).eval()
    n_jets = 10
    args = (torch.rand(4), torch.rand(4, n_jets, 3), torch.randn(4, n_jets, len(features)), torch.ones(4, n_jets, dtype=torch.bool))
    batch, jets = torch.export.Dim("batch", min=1, max=1_000_000), torch.export.Dim("jets", min=2, max=64)
    names = ["score", "probabilities", "jets", "mask"]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will not be used, since it shares the same shape constraints")
        warnings.filterwarnings("ignore", category=FutureWarning)  # torch's own deprecations inside the exporter
        path = Path(tmp) / "stage.onnx"
        torch.onnx.export(
            stage, args, dynamo=True, dynamic_shapes=({0: batch}, {0: batch, 1: jets}, {0: batch, 1: jets}, {0: batch, 1: jets}),
            input_names=names, output_names=[ANOMALY_SCORE_DECORRELATED], opset_version=OPSET, verbose=False,
        ).save(str(path))
        return onnx.compose.add_prefix(onnx.load(str(path)), STAGE_PREFIX)


def with_calibration(model, features: list[str], table: dict):
    """The ONNX model (proto) ``model`` with its calibration stage rebuilt from ``table``."""
    import onnx
    from onnx.utils import Extractor

    outputs = [o.name for o in model.graph.output]
    if outputs != [CATEGORY_PROBABILITIES, ANOMALY_SCORE, ANOMALY_SCORE_DECORRELATED]:
        raise PairhuntError(f"unexpected ABC graph outputs {outputs}")
    body = Extractor(model).extract_model([JETS_INPUT, MASK_INPUT], [CATEGORY_PROBABILITIES, ANOMALY_SCORE])
    stage = stage_graph(features, table)
    wired = {
        f"{STAGE_PREFIX}score": ANOMALY_SCORE, f"{STAGE_PREFIX}probabilities": CATEGORY_PROBABILITIES,
        f"{STAGE_PREFIX}jets": JETS_INPUT, f"{STAGE_PREFIX}mask": MASK_INPUT,
        f"{STAGE_PREFIX}{ANOMALY_SCORE_DECORRELATED}": ANOMALY_SCORE_DECORRELATED,
    }
    for node in stage.graph.node:
        node.input[:] = [wired.get(name, name) for name in node.input]
        node.output[:] = [wired.get(name, name) for name in node.output]
    body.graph.node.extend(stage.graph.node)
    body.graph.initializer.extend(stage.graph.initializer)
    body.graph.value_info.extend(v for v in stage.graph.value_info if v.name not in wired)
    decorrelated = next(o for o in model.graph.output if o.name == ANOMALY_SCORE_DECORRELATED)
    body.graph.output.append(decorrelated)
    known = {(o.domain, o.version) for o in body.opset_import}
    body.opset_import.extend(o for o in stage.opset_import if (o.domain, o.version) not in known)
    body.ir_version = model.ir_version
    onnx.helper.set_model_props(body, {p.key: p.value for p in model.metadata_props})
    onnx.checker.check_model(body)
    return body


def recalibrate(
    model_path: str | Path, data: TrainingData, output: str | Path, bins: int | None = None, smooth: int | None = None
) -> Recalibration:
    """Write ``output``: the ABC model at ``model_path`` calibrated on background ``data``."""
    import onnx

    contract = abc_contract(model_path)
    try:  # before the work, not after it
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PairhuntError(f"cannot write {output}: {error}") from None
    old = model_outputs(model_path, data, [CATEGORY_PROBABILITIES, ANOMALY_SCORE, ANOMALY_SCORE_DECORRELATED])
    jets, mask = torch.as_tensor(data.features, dtype=torch.float32), torch.as_tensor(data.mask)
    mass = CalibrationStage(contract.features).mass(torch.as_tensor(old[CATEGORY_PROBABILITIES]), jets, mask)
    weights = normalised_weights(data).astype(np.float64)
    table = calibration_table(old[ANOMALY_SCORE].astype(np.float64), mass.numpy().astype(np.float64), weights, bins=bins, smooth=smooth)
    model = with_calibration(onnx.load(str(model_path)), contract.features, table)
    new = model_outputs(model, data, [CATEGORY_PROBABILITIES, ANOMALY_SCORE, ANOMALY_SCORE_DECORRELATED])
    for name in (CATEGORY_PROBABILITIES, ANOMALY_SCORE):
        if not np.array_equal(new[name], old[name]):
            raise PairhuntError(f"recalibrating {model_path} changed '{name}': the graph was not cut where the calibration starts")
    with torch.no_grad():
        expected = CalibrationStage(contract.features, table)(torch.as_tensor(old[ANOMALY_SCORE]), torch.as_tensor(old[CATEGORY_PROBABILITIES]), jets, mask)
    difference = np.abs(new[ANOMALY_SCORE_DECORRELATED] - expected.numpy())
    step = 1.0 / len(table["quantiles"][0])
    if difference.max() >= step or np.mean(difference > TOLERANCE) > ROUNDED_SHARE:
        raise PairhuntError(
            f"the joined calibration stage differs from pairhunt's on the calibration events (up to {difference.max():.2g}, "
            f"{np.mean(difference > TOLERANCE):.2%} of them by more than {TOLERANCE:g}): it was not joined as built"
        )
    with atomic_path(output) as tmp:
        onnx.save(model, str(tmp))
    changed = float(np.mean(np.abs(new[ANOMALY_SCORE_DECORRELATED] - old[ANOMALY_SCORE_DECORRELATED]) > step))
    return Recalibration(table, len(data), float(weights.sum() ** 2 / (weights**2).sum()), changed)
