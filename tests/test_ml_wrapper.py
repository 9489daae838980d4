"""pairhunt.ml.OnnxWrapper: a shipped model through coffea's ml_tools interface on real NanoAOD."""

from __future__ import annotations

import pickle

import awkward as ak
import numpy as np
import onnxruntime as ort
import pytest
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

from pairhunt.cutflow import Cutflow
from pairhunt.errors import PairhuntError
from pairhunt.inputs import select_jets
from pairhunt.ml import OnnxWrapper
from pairhunt.assign.onnx import CPU, resolve_model_path


@pytest.fixture(scope="module")
def events(shared_nanoaod):
    path = shared_nanoaod / "nano_tt_v15.root"
    return NanoEventsFactory.from_root({str(path): "Events"}, schemaclass=NanoAODSchema, mode="eager").events()


@pytest.mark.parametrize("model", ["ttbar_allhad", "pair_abc"])
def test_outputs_are_the_processors_on_the_events_it_selects(events, model):
    wrapper = OnnxWrapper(model, batch_size=64)  # several batches
    contract = wrapper.contract
    jets, selected = select_jets(events, contract.model_topology.jets, Cutflow(np.ones(len(events))), contract.features)
    assert 0 < selected.sum() < len(events)
    session = ort.InferenceSession(str(resolve_model_path(model)), providers=[CPU])
    expected = dict(zip(contract.outputs, session.run(contract.outputs, {"jets": jets.feature_matrix(contract.features), "mask": jets.mask})))
    outputs = wrapper(events.Jet)
    assert set(outputs) == set(contract.outputs)
    for name, values in outputs.items():
        assert len(values) == len(events)  # every event, the analysis cuts on them
        np.testing.assert_allclose(ak.to_numpy(values)[selected], expected[name], rtol=1e-5, atol=1e-5)
    kept = wrapper.kept_jets(events.Jet)[selected]
    np.testing.assert_array_equal(ak.to_numpy(ak.fill_none(ak.pad_none(kept.pt, 10, clip=True), 0.0)), jets.pt.astype(np.float32))


def test_pickles_without_its_session_and_refuses_what_it_cannot_feed(events, tmp_path):
    wrapper = OnnxWrapper("ttbar_allhad")
    wrapper(events.Jet[:5])
    assert wrapper._session is not None and pickle.loads(pickle.dumps(wrapper))._session is None
    with pytest.raises(PairhuntError, match=r"takes jets \[events, 10, 6\]"):
        wrapper(np.zeros((3, 8, 6), np.float32), np.ones((3, 8), bool))
    with pytest.raises(PairhuntError, match="none of the branches"):
        wrapper(events.Jet[["pt", "eta", "phi", "mass"]])
    with pytest.raises(PairhuntError, match="batch size"):
        OnnxWrapper("ttbar_allhad", batch_size=0)


def test_a_model_with_event_level_inputs_takes_their_collection(generated, events, tmp_path):
    """MET as a global input: the wrapper feeds it from the collection the analysis passes (here
    NanoAOD v15's PFMET), like the processor builds it from the topology's."""
    pytest.importorskip("torch", reason="needs the 'train' extra")
    import dataclasses

    from pairhunt.inputs import event_level_features
    from pairhunt.topology import Feature, Input, load_topology
    from pairhunt.train.data import from_nanoaod
    from pairhunt.train.export import export_run
    from pairhunt.train.loop import TrainConfig
    from pairhunt.train.config import ModelConfig
    from pairhunt.train.trainer import Trainer

    met = Input("MET", "MET", "global", (Feature("met_log_pt", ("pt",), "log1p"), Feature("met_cos_phi", ("phi",), "cos")))
    topology = load_topology("ttbar_allhad")
    topology = dataclasses.replace(topology, inputs=(*topology.inputs, met))
    small = ModelConfig(dim=16, heads=2, encoder_layers=1, branch_layers=1, tensor_dim=8)
    Trainer(topology, from_nanoaod([generated["ttbar"]], topology), tmp_path, small, TrainConfig(epochs=1, batch_size=64)).fit(progress=False)
    export_run(tmp_path, tmp_path / "met.onnx")
    wrapper = OnnxWrapper(tmp_path / "met.onnx")
    with pytest.raises(PairhuntError, match=r"pass their collection as well, e.g. model\(events.Jet, events.MET\)"):
        wrapper(events.Jet)
    outputs = wrapper(events.Jet, events.PFMET)

    contract = wrapper.contract
    jets, selected = select_jets(events, contract.model_topology.jets, Cutflow(np.ones(len(events))), contract.features)
    renamed = dataclasses.replace(met, collection="PFMET")
    jets.globals = event_level_features(events, [renamed], selected, "v15")
    session = ort.InferenceSession(str(tmp_path / "met.onnx"), providers=[CPU])
    feeds = {"jets": jets.feature_matrix(contract.features), "mask": jets.mask, "globals": jets.global_matrix(contract.global_features)}
    expected = session.run(["assignment_t1"], feeds)[0]
    np.testing.assert_allclose(ak.to_numpy(outputs["assignment_t1"])[selected], expected, rtol=1e-5, atol=1e-5)
