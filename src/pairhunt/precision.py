"""Half-precision SPA-NET models: float16 weights and arithmetic, float32 inputs and outputs, so
the processor feeds and reads them unchanged.

Why: on a GPU half precision halves the weight and activation traffic; CPUs have few float16
kernels and run such a model slower. The measured efficiency cost and speeds are in
docs/benchmarks.md. ABC models stay float32: their mass calibration needs the range.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pairhunt.contract import METADATA_KEY, ModelContract
from pairhunt.errors import PairhuntError


def check_half_precision_kind(kind: str, source: str | Path) -> None:
    """Raise unless a model of ``kind`` may be exported in float16."""
    if kind != "spanet":
        raise PairhuntError(f"{source}: only SPA-NET models export in float16; an {kind.upper()} model's mass calibration needs float32")


def half_precision(proto):
    """``proto`` computing in float16 with float32 inputs and outputs (casts at the edges);
    constants beyond float16's range are clipped to it (the -1e9 that masks forbidden
    assignments becomes -65504, still far below any allowed log-probability)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(proto, keep_io_types=True)


def convert_to_float16(source: str | Path, output: str | Path) -> ModelContract:
    """Write a float16 copy of the exported float32 SPA-NET model ``source`` to ``output``;
    returns its contract (``precision`` float16, everything else unchanged)."""
    import onnx

    from pairhunt.assign.onnx import read_contract

    contract = read_contract(Path(source))
    check_half_precision_kind(contract.kind, source)
    if contract.precision != "float32":
        raise PairhuntError(f"{source} is already a {contract.precision} model")
    contract = dataclasses.replace(contract, precision="float16")
    proto = half_precision(onnx.load(str(source)))
    onnx.helper.set_model_props(proto, {METADATA_KEY: contract.to_json()})
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(output))
    return contract
