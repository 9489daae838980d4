"""`pairhunt ensemble`: exported SPA-NET models averaged in one ONNX graph, each output by its rule,
refused when the members cannot be averaged, and run by the processor like any model."""

from __future__ import annotations

import dataclasses
import json

import awkward as ak
import numpy as np
import onnxruntime as ort
import pytest
from scipy.special import logsumexp

torch = pytest.importorskip("torch", reason="needs the 'train' extra")
onnx = pytest.importorskip("onnx", reason="needs the 'train' extra")

from pairhunt.assign.decoding import decode_greedy  # noqa: E402
from pairhunt.assign.onnx import CPU, read_contract, resolve_model_path as model_path  # noqa: E402
from pairhunt.cli import main  # noqa: E402
from pairhunt.contract import METADATA_KEY, FoldRule  # noqa: E402
from pairhunt.ensemble import compose_ensemble, ensemble_contract  # noqa: E402
from pairhunt.errors import PairhuntError  # noqa: E402
from pairhunt.topology import load_topology  # noqa: E402
from pairhunt.train.config import ModelConfig  # noqa: E402
from pairhunt.train.data import from_nanoaod  # noqa: E402
from pairhunt.train.export import export_run  # noqa: E402
from pairhunt.train.trainer import Trainer, TrainConfig  # noqa: E402

SMALL = ModelConfig(dim=32, heads=4, encoder_layers=1, branch_layers=1, tensor_dim=16)
OUTPUTS = ("assignment_t1", "detection_t1", "detection", "regression_x", "classification_y")


@pytest.fixture(scope="module")
def members(generated, tmp_path_factory):
    """Two small ttbar models of different seeds and options (the second with the tuple-mass score), exported."""
    data = from_nanoaod([generated["ttbar"]], load_topology("ttbar_allhad"))
    paths = []
    for seed, config in ((3, SMALL), (4, dataclasses.replace(SMALL, tuple_mass=8))):
        run_dir = tmp_path_factory.mktemp(f"member{seed}")
        Trainer(load_topology("ttbar_allhad"), data, run_dir, config, TrainConfig(epochs=1, batch_size=64, seed=seed)).fit(progress=False)
        export_run(run_dir, run_dir / "model.onnx")
        paths.append(run_dir / "model.onnx")
    return data, paths


def run_session(path, jets, mask) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=[CPU])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, {"jets": jets, "mask": mask})))


def padded(data, n_jets: int, events: int = 41):
    jets = np.zeros((events, n_jets, data.features.shape[2]), dtype=np.float32)
    mask = np.zeros((events, n_jets), dtype=bool)
    width = min(n_jets, data.features.shape[1])
    jets[:, :width], mask[:, :width] = data.features[:events, :width], data.mask[:events, :width]
    return jets, mask


def aligned_mean(alone: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """numpy's version of the ensemble rule: each member's t1/t2 swapped per event where that
    overlaps more with the first member's, then the mean probability (log) and mean detection."""
    names = ("assignment_t1", "assignment_t2", "detection_t1", "detection_t2")
    reference = [np.exp(alone[0][n].astype(np.float64)) for n in names[:2]]
    aligned = []
    for out in alone:
        p1, p2 = (np.exp(out[n].astype(np.float64)) for n in names[:2])
        same = (reference[0] * p1).sum(axis=(1, 2, 3)) + (reference[1] * p2).sum(axis=(1, 2, 3))
        swapped = (reference[0] * p2).sum(axis=(1, 2, 3)) + (reference[1] * p1).sum(axis=(1, 2, 3))
        flip = swapped > same
        pick = lambda a, b, rank: np.where(flip.reshape(-1, *[1] * (rank - 1)), out[b], out[a])  # noqa: E731
        aligned.append({
            "assignment_t1": pick("assignment_t1", "assignment_t2", 4), "assignment_t2": pick("assignment_t2", "assignment_t1", 4),
            "detection_t1": pick("detection_t1", "detection_t2", 1), "detection_t2": pick("detection_t2", "detection_t1", 1),
        })
    mean = {n: logsumexp([a[n].astype(np.float64) for a in aligned], axis=0) - np.log(len(aligned)) for n in names[:2]}
    mean.update({n: np.mean([a[n] for a in aligned], axis=0) for n in names[2:]})
    return mean


@pytest.mark.parametrize("n_jets", [6, 11])
def test_trained_members_average_to_the_mean_probability_of_aligned_parents(members, tmp_path, n_jets):
    data, paths = members
    ensemble = tmp_path / "ensemble.onnx"
    contract = compose_ensemble(paths, ensemble)
    assert [m["source"] for m in contract.members] == ["model.onnx", "model.onnx"]
    assert read_contract(ensemble).members == contract.members and contract.outputs == read_contract(paths[0]).outputs
    jets, mask = padded(data, n_jets)
    alone = [run_session(p, jets, mask) for p in paths]
    together = run_session(ensemble, jets, mask)
    expected = aligned_mean(alone)
    for name in ("assignment_t1", "assignment_t2"):
        allowed = alone[0][name] > -1e8  # padded jets and repeated jets stay forbidden, finite
        np.testing.assert_allclose(together[name][allowed], expected[name][allowed], atol=2e-5, err_msg=name)
        assert np.all(together[name][~allowed] < -1e8) and np.isfinite(together[name]).all()
    for name in ("detection_t1", "detection_t2"):
        np.testing.assert_allclose(together[name], expected[name], atol=1e-6, err_msg=name)
    # the mean of two models differs from either: both members really run
    assert not np.allclose(together["assignment_t1"], alone[0]["assignment_t1"], atol=1e-3)
    assert not np.allclose(together["assignment_t1"], alone[1]["assignment_t1"], atol=1e-3)


def relabelled(source, output):
    """``source`` with its two tops' labels exchanged: the same model, as a member trained with
    the other labelling would be."""
    from onnx import compose, helper

    proto = onnx.load(str(source))
    inner = compose.add_prefix(proto, "inner/").graph
    swap = {"assignment_t1": "assignment_t2", "assignment_t2": "assignment_t1", "detection_t1": "detection_t2", "detection_t2": "detection_t1"}
    nodes = [helper.make_node("Identity", [i.name], ["inner/" + i.name]) for i in proto.graph.input] + list(inner.node)
    nodes += [helper.make_node("Identity", ["inner/" + other], [name]) for name, other in swap.items()]
    nodes += [
        helper.make_node("Constant", [], ["columns"], value_ints=[1, 0]),
        helper.make_node("Gather", ["inner/detection", "columns"], ["detection"], axis=1),
    ]
    graph = helper.make_graph(nodes, "relabelled", proto.graph.input, proto.graph.output, initializer=inner.initializer)
    model = helper.make_model(graph, opset_imports=proto.opset_import)
    model.ir_version = proto.ir_version
    helper.set_model_props(model, {p.key: p.value for p in proto.metadata_props})
    onnx.save(model, str(output))
    return output


def test_a_member_with_the_tops_labelled_the_other_way_is_aligned(members, tmp_path):
    data, paths = members
    swapped = relabelled(paths[0], tmp_path / "swapped.onnx")
    jets, mask = padded(data, 10)
    original, other = run_session(paths[0], jets, mask), run_session(swapped, jets, mask)
    np.testing.assert_array_equal(other["assignment_t1"], original["assignment_t2"])
    compose_ensemble([paths[0], swapped], tmp_path / "ensemble.onnx")
    together = run_session(tmp_path / "ensemble.onnx", jets, mask)
    for name, value in original.items():  # the same model twice, whatever its labels: itself
        np.testing.assert_allclose(together[name], value, atol=2e-5, err_msg=name)


def toy_model(path, scale: float, offset: float):
    """An ONNX model with every kind of output a SPA-NET model has, each ``scale * sum_f(jets) + offset``
    (``[B, N]``), carrying a ttbar contract that lists those outputs (tops not interchangeable: no alignment)."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Constant", [], ["axes"], value_ints=[2]),
        helper.make_node("ReduceSum", ["jets", "axes"], ["summed"], keepdims=0),
        helper.make_node("Constant", [], ["scale"], value_float=scale),
        helper.make_node("Constant", [], ["offset"], value_float=offset),
        helper.make_node("Mul", ["summed", "scale"], ["scaled"]),
    ]
    nodes += [helper.make_node("Add", ["scaled", "offset"], [name]) for name in OUTPUTS]
    graph = helper.make_graph(
        nodes, "toy",
        [helper.make_tensor_value_info("jets", TensorProto.FLOAT, ["B", "N", 6]), helper.make_tensor_value_info("mask", TensorProto.BOOL, ["B", "N"])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["B", "N"]) for name in OUTPUTS],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 10
    shipped = read_contract(model_path("ttbar_allhad"))
    unaligned = {**shipped.topology, "permutations": {**shipped.topology["permutations"], "event": []}}  # one top head
    contract = dataclasses.replace(shipped, outputs=list(OUTPUTS), topology=unaligned)
    helper.set_model_props(proto, {METADATA_KEY: contract.to_json()})
    onnx.save(proto, str(path))
    return path


def test_each_output_kind_is_averaged_by_its_rule(tmp_path):
    paths = [toy_model(tmp_path / "a.onnx", 0.3, -2.0), toy_model(tmp_path / "b.onnx", -0.7, 0.5)]
    compose_ensemble(paths, tmp_path / "ensemble.onnx")
    rng = np.random.default_rng(5)
    jets, mask = rng.normal(size=(7, 5, 6)).astype(np.float32), np.ones((7, 5), dtype=bool)
    a, b = (run_session(p, jets, mask) for p in paths)
    out = run_session(tmp_path / "ensemble.onnx", jets, mask)
    sigmoid = lambda x: 1 / (1 + np.exp(-x.astype(np.float64)))  # noqa: E731
    softmax = lambda x: np.exp(x - x.max(axis=-1, keepdims=True)) / np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True)  # noqa: E731
    mean_p = (sigmoid(a["detection"]) + sigmoid(b["detection"])) / 2
    expected = {
        "assignment_t1": np.log((np.exp(a["assignment_t1"].astype(np.float64)) + np.exp(b["assignment_t1"])) / 2),
        "detection_t1": (a["detection_t1"] + b["detection_t1"]) / 2,
        "detection": np.log(mean_p / (1 - mean_p)),
        "regression_x": (a["regression_x"] + b["regression_x"]) / 2,
        "classification_y": np.log((softmax(a["classification_y"]) + softmax(b["classification_y"])) / 2),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(out[name], value, atol=2e-4, err_msg=name)
    np.testing.assert_allclose(softmax(out["classification_y"]), np.exp(expected["classification_y"]), atol=1e-5)


def test_models_that_cannot_be_averaged_are_refused(tmp_path):
    shipped = read_contract(model_path("ttbar_allhad"))
    ok = ["a.onnx", "b.onnx"]
    assert len(ensemble_contract([shipped, shipped], ok).members) == 2
    cases = {
        "at least two": ([shipped], ok[:1]),
        "not a SPA-NET model": ([shipped, read_contract(model_path("pair_abc"))], ok),
        "fold 1 of a k-fold set": ([shipped, dataclasses.replace(shipped, fold_rule=FoldRule(2, 1))], ok),
        "differ in features": ([shipped, dataclasses.replace(shipped, features=shipped.features[:-1])], ok),
        "differ in max_jets": ([shipped, dataclasses.replace(shipped, max_jets=12)], ok),
        "differ in precision": ([shipped, dataclasses.replace(shipped, precision="float16")], ok),
    }
    for message, (contracts, sources) in cases.items():
        with pytest.raises(PairhuntError, match=message):
            ensemble_contract(contracts, sources)
    with pytest.raises(PairhuntError, match="more than once"):
        compose_ensemble([model_path("ttbar_allhad")] * 2, tmp_path / "twice.onnx")
    assert not (tmp_path / "twice.onnx").exists()


def test_cli_ensemble_runs_in_the_processor_and_decodes_the_averaged_probabilities(members, generated, tmp_path, capsys):
    data, paths = members
    ensemble = tmp_path / "ensemble.onnx"
    assert main(["ensemble", *map(str, paths), "-o", str(ensemble)]) == 0
    assert "ensemble of 2 spanet models" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["ensemble", str(paths[0]), str(model_path("pair_abc")), "-o", str(tmp_path / "bad.onnx")])
    assert refused.value.code == 2 and "not a SPA-NET model" in capsys.readouterr().err
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"ttbar": [str(generated["ttbar"])]}))
    out = tmp_path / "out"
    assert main(["run", str(fileset), "-o", str(out), "--method", f"ens={ensemble}", "--no-progress", "--workers", "1"]) == 0
    table = ak.concatenate([ak.from_parquet(f) for f in sorted((out / "events" / "ttbar").glob("*.parquet"))])
    selected = table[table.selected]
    assert len(selected) > 0 and np.isfinite(ak.to_numpy(selected["ens_mavg"])).all()
    # the assignment is the greedy decoding of the members' aligned mean probabilities
    jets, mask = padded(data, data.features.shape[1], events=len(data.features))
    mean = aligned_mean([run_session(p, jets, mask) for p in paths])
    together = run_session(ensemble, jets, mask)
    expected = decode_greedy([mean["assignment_t1"], mean["assignment_t2"]], mask)
    got = decode_greedy([together["assignment_t1"], together["assignment_t2"]], mask)
    assert (expected == got).all(axis=(1, 2)).mean() > 0.99  # float32 graph, float64 numpy: only near-ties may differ
