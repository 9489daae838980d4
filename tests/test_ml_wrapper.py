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
from pairhunt.onnx_assignment import CPU, resolve_model_path


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
