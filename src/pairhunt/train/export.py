"""Export a trained run (SPA-NET or ABC) to ONNX with a dynamic jet axis and the pairhunt
contract in its metadata; a k-fold run to a model set, one ONNX file per fold in a directory.

The dynamo exporter (``torch.onnx.export(..., dynamo=True)``) keeps the jet axis symbolic;
torch's legacy exporter would freeze it at the traced size. Normalisation lives in the graph.
A model set rather than one graph holding every fold: each event runs through exactly one
model (one graph would compute every fold for every event and select), and every fold file is
an ordinary model that any ONNX tool opens alone, its fold rule in its contract.

``precision="float16"`` converts the exported graph to half precision (``pairhunt.precision``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from pairhunt.contract import GLOBALS_INPUT, JETS_INPUT, MASK_INPUT, METADATA_KEY, PRECISIONS, ModelContract, global_feature_definitions
from pairhunt.errors import PairhuntError
from pairhunt.model_set import load_model_set
from pairhunt.precision import check_half_precision_kind, half_precision
from pairhunt.train.folds import fold_runs
from pairhunt.train.trainer import load_run

OPSET = 18


class _Exportable(torch.nn.Module):
    """Positional inputs and a fixed tuple of outputs, as ONNX wants them."""

    def __init__(self, model: torch.nn.Module, output_names: list[str]):
        super().__init__()
        self.model = model
        self.output_names = output_names

    def forward(self, jets, mask, globals_=None):
        outputs = self.model(jets, mask) if globals_ is None else self.model(jets, mask, globals_)
        return tuple(outputs[name] for name in self.output_names)


def example_inputs(n_features: int, n_globals: int = 0, batch: int = 3, n_jets: int = 10) -> tuple[torch.Tensor, ...]:
    """Tracing inputs: random jets, one event with two padded jets, globals when the model has them."""
    jets = torch.randn(batch, n_jets, n_features)
    mask = torch.ones(batch, n_jets, dtype=torch.bool)
    mask[0, n_jets - 2 :] = False
    return (jets, mask, torch.randn(batch, n_globals)) if n_globals else (jets, mask)


def export_run(run_dir: str | Path, output: str | Path, checkpoint: str = "best.pt", precision: str = "float32") -> ModelContract:
    """Write ``output`` from a run directory: an .onnx file, or for a k-fold run a model set
    directory; returns the contract (for a set, the one its folds share)."""
    folds = fold_runs(run_dir)
    if not folds:
        return export_model(run_dir, output, checkpoint, precision)
    output = Path(output)
    if output.suffix == ".onnx":
        raise PairhuntError(f"{run_dir} is a {len(folds)}-fold run: it exports to a model set directory; give -o without .onnx")
    names = [f"{fold.name}.onnx" for fold in folds]
    stale = sorted(p.name for p in output.glob("*.onnx") if p.name not in names)
    if stale:
        raise PairhuntError(f"{output} holds other ONNX files ({', '.join(stale)}); a model set directory holds only its folds")
    for fold, name in zip(folds, names):
        export_model(fold, output / name, checkpoint, precision)
    return load_model_set(output).contract


def export_model(run_dir: str | Path, output: str | Path, checkpoint: str = "best.pt", precision: str = "float32") -> ModelContract:
    """Write ``output`` (.onnx) from one (fold) run directory; returns the contract written into it."""
    import onnx

    if precision not in PRECISIONS:
        raise PairhuntError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    model, topology, meta = load_run(run_dir, checkpoint)
    if precision == "float16":
        check_half_precision_kind(meta["kind"], run_dir)
    if meta["kind"] == "abc" and not model.calibration.ready:
        raise PairhuntError(f"{run_dir}: no mass calibration ({run_dir}/calibration.json); finish `pairhunt train abc` first")
    n_globals = len(meta.get("global_normalisation", {}).get("mean", []))
    has_globals = getattr(model, "has_globals", False)
    args = example_inputs(len(meta["features"]), n_globals if has_globals else 0)
    with torch.no_grad():
        names = list(model(*args).keys())
    wrapper = _Exportable(model, names).eval()
    batch, jets = torch.export.Dim("batch", min=1, max=1_000_000), torch.export.Dim("jets", min=2, max=64)
    shapes = [{0: batch, 1: jets}, {0: batch, 1: jets}] + ([{0: batch}] if has_globals else [])
    input_names = [JETS_INPUT, MASK_INPUT] + ([GLOBALS_INPUT] if has_globals else [])
    program = torch.onnx.export(
        wrapper, args, dynamo=True, dynamic_shapes=tuple(shapes), input_names=input_names,
        output_names=names, opset_version=OPSET, verbose=False,
    )
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(output))
    contract = ModelContract(
        kind=meta["kind"],
        topology=meta["topology"],
        features=meta["features"],
        normalisation=meta["normalisation"],
        max_jets=topology.jets.selection.keep,
        inputs=input_names,
        outputs=names,
        global_features=list(global_feature_definitions(topology)),
        fold_rule=meta.get("fold_rule"),
        regression_stats={name: list(stats) for name, stats in meta.get("regression_stats", {}).items()},
        precision=precision,
    )
    proto = onnx.load(str(output))
    if precision == "float16":
        proto = half_precision(proto)
    onnx.helper.set_model_props(proto, {METADATA_KEY: contract.to_json()})
    onnx.save(proto, str(output))
    return contract

