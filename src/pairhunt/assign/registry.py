"""Assignment methods by name, as the command line and configs give them."""

from __future__ import annotations

from pathlib import Path

from pairhunt.assign.base import AssignmentMethod
from pairhunt.assign.baselines import Chi2, MassAsymmetry
from pairhunt.errors import PairhuntError

BASELINES = {
    "chi2": lambda: Chi2(),
    "chi2_btag": lambda: Chi2(name="chi2_btag", btag_aware=True),
    "mass_asymmetry": lambda: MassAsymmetry(),
    "mass_asymmetry_6": lambda: MassAsymmetry(name="mass_asymmetry_6", max_jets=6),
}

DEFAULT_METHODS = {"ttbar_allhad": ("chi2",), "pair_3body": ("mass_asymmetry",), "pair_abc": ("mass_asymmetry",)}


def make_method(spec: str, **onnx_options) -> AssignmentMethod:
    """A method from its spec.

    ``chi2``, ``chi2_btag``, ``mass_asymmetry`` (all kept jets), ``mass_asymmetry_6`` (the
    leading six): the baselines; ``NAME=MODEL``: an ONNX model
    (a path, a k-fold model set directory or a model shipped in pairhunt.models, SPA-NET or ABC
    by its metadata) reported as NAME; ``path/model.onnx``: the same with the file's stem as name.
    ``onnx_options`` go to :func:`onnx_method` and are ignored by the baselines.
    """
    if spec in BASELINES:
        return BASELINES[spec]()
    name, _, model = spec.partition("=")
    if not model and spec.endswith(".onnx"):
        name, model = Path(spec).stem, spec
    if model:
        return onnx_method(model, name, **onnx_options)
    raise PairhuntError(f"unknown assignment method {spec!r}; choose from {sorted(BASELINES)}, NAME=MODEL or a .onnx file")


def onnx_method(
    model: str,
    name: str,
    threads: int = 1,
    detection_cut: float | None = None,
    device: str = "auto",
    tf32: bool = True,
    batch_size: int | None = None,
    top_k: int | None = None,
) -> AssignmentMethod:
    """The method for an exported model (or k-fold model set), chosen by the model kind in its contract.

    ``threads``, ``device``, ``tf32`` and ``batch_size`` set up its onnxruntime sessions
    (:class:`pairhunt.assign.onnx.OnnxModel`); ``detection_cut`` and ``top_k`` apply to
    SPA-NET models only (:mod:`pairhunt.detection`, :func:`pairhunt.assign.decoding.decode_top_k`).
    """
    from pairhunt.assign.abc import AbcAssignment
    from pairhunt.assign.onnx import OnnxAssignment, resolve_model_path
    from pairhunt.model_set import load_model_set

    kind = load_model_set(resolve_model_path(model)).contract.kind  # a file onnxruntime cannot load: one clear error
    session = {"threads": threads, "device": device, "tf32": tf32, "batch_size": batch_size}
    if kind == "spanet":
        return OnnxAssignment(model=model, name=name, detection_cut=detection_cut, top_k=top_k, **session)
    return AbcAssignment(model=model, name=name, **session)
